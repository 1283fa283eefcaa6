"""Sphere geometry and transforms: gnomonic patches to and from HEALPix (projection), harmonic
transforms (sht), tilings, beam smoothing and the Gaussian small-scale baseline.
"""
