"""Data, the second stage: the datasets (catalog), their files fetched and verified (fetch, idx), a
folder of one's own images (folders, folder_images), their images as arrays (arrays), the lesson's
splits and their loaders (splits, loaders), and the extra training images made from them (pens,
outliers, kept by prepared). Imports only from images/.
"""
