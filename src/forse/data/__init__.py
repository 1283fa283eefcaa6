"""Sky and training data: the synthetic dust sky, masks, region-split training sets, FITS
input/output, units.
"""
