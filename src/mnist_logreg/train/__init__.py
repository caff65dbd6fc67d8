"""Training, the fourth stage: the lesson's fit and evaluate (loop), a whole run from data to its
folder (run), and data-parallel training under torchrun (distributed). Imports from images/,
data/ and model/.
"""
