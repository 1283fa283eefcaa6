"""Statistics and validation: Minkowski functionals, spectra, the validation summary and its HTML
report, sky statistics.
"""
