"""Training, the fourth stage: the lesson's fit and evaluate (loop), a whole run from data to its
folder (run), a copy of a run taught one writer's hand (tune), and data-parallel training under
torchrun (distributed). Imports from images/, data/ and model/.
"""
