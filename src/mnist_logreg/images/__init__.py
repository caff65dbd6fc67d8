"""Images, the first stage: how a photo, scan or drawing becomes a 28×28 input placed as the dataset
places its images (preprocess, layout), and the fixed transforms of those pixels the model reads
(inputs: pixel conversions, deskewing, pixel-pair features). Imports no other stage.
"""
