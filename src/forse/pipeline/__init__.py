"""The extension pipeline: extend() and its options, normalization of generated patches to
physical units, harmonic calibration, MPI, the PySM component.
"""
