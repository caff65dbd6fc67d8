"""Inference, the fifth stage: one image classified (classify), a written number read digit by digit
(segment, number), many files answered in worker processes (batch), and why the model answered as
it did (explain). Imports from images/, data/ and model/, never from train/.
"""
