# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # forse tutorial: sky → extend → validate → PySM
#
# A low-resolution dust map gets non-Gaussian 12′ small scales, is checked against the truth,
# and becomes a PySM 3 component with frequency scaling. Run it as a script
# (`python docs/tutorial.py`, as CI does) or as a notebook
# (`jupytext --to notebook docs/tutorial.py`). It needs `pip install "forse[pysm]"` and works at
# Nside 1024, the bundled models' smallest (their native Nside is 2048): 1–2 minutes and
# 4.3 GiB of memory on 2 cores.

# %%
import numpy as np

from forse import io, sky, smoothing

NSIDE, SEED = 1024, 1

# %% [markdown]
# ## 1. A low-resolution map
#
# The built-in synthetic sky stands in for Planck's 353 GHz dust (in uK_CMB). We draw it at 12′
# (the truth, seed 1: a sky the bundled models never saw) and bring it to exactly 80′: the kind
# of map a user has. The FITS header states its unit and reference frequency
# (`forse sky --nside 1024 --stokes TQU --fwhm 80` writes the same kind of file).

# %%
truth = sky.synthetic_dust(NSIDE, seed=SEED, stokes="TQU")
lowres = smoothing.resmooth(truth, 12.0, 80.0)
io.write_map("dust_80.fits", lowres, overwrite=True,
             header={"UNIT": "uK_CMB", "REFFREQ": 353.0, "COORDSYS": "G"})

# %% [markdown]
# ## 2. Extend it
#
# `extend` adds generated small scales (the Gaussian baseline it draws on the way is returned
# for the comparison below). The header written here is the one `forse extend dust_80.fits -o
# dust_12.fits --nside 1024` writes: unit, reference frequency, Q/U convention, the beams and
# the multipoles where the input hands over to the generated small scales.

# %%
from forse.extend import extend, output_header

out, baseline = extend(lowres, input_fwhm_arcmin=80.0, nside_out=NSIDE, seed=SEED,
                       return_baseline=True, progress=False)
head = output_header(seed=SEED, input_fwhm_arcmin=80.0, nside_out=NSIDE, pol_mode="ratio",
                     layout="regular", stochastic=None, stokes="TQU", unit="uK_CMB",
                     freq_ghz=353.0)
io.write_map("dust_12.fits", out, overwrite=True, header={**head, "COORDSYS": "G"})
_, h = io.read_map("dust_12.fits")
print({k: h[k] for k in ("UNIT", "REFFREQ", "POLCCONV", "INFWHM", "OUTFWHM", "ELLKEEP", "ELLGEN")})

# %% [markdown]
# ## 3. Validate it
#
# Against the truth and the Gaussian baseline: Minkowski functionals of the small scales,
# spectra, polarization, one-point statistics. In a notebook the result shows as a compact
# table; the full report is `validation/report.html`.

# %%
from forse.validate import validate

summary = validate(out, reference=truth, baseline=baseline, lowres=lowres,
                   out_dir="validation", reference_seed=SEED, lmax=1536, progress=False)
print(f"forse beats the Gaussian baseline on {summary['headline']['n_better']} of "
      f"{summary['headline']['n_rows']} rows")
summary

# %% [markdown]
# ## 4. A PySM 3 component
#
# `ForseDust` reads the extended map (unit and reference frequency from its header), brings
# it to PySM's uK_RJ and scales it with a modified black body (here PySM d0's spectral index
# 1.54 and 20 K; maps work too). PySM changes its Nside as for its own templates. For
# simulations, `forse.pysm.forse_dust(nside, input_map=..., seed=...)` extends a map once per
# seed and caches it (`FORSE_CACHE`, default `~/.cache/forse`).

# %%
import pysm3
import pysm3.units as u

from forse.pysm import ForseDust

dust = ForseDust("dust_12.fits", nside=256)
sim = pysm3.Sky(nside=256, component_objects=[dust], output_unit="uK_CMB")
at_353 = sim.get_emission(353 * u.GHz)
band_150 = sim.get_emission(np.linspace(130, 170, 9) * u.GHz)  # a top-hat band around 150 GHz
print(f"dust T rms: {at_353[0].std():.1f} at 353 GHz, {band_150[0].std():.2f} in the 150 GHz band")
