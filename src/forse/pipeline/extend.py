"""Full-sky extension: give a low-resolution HEALPix dust map non-Gaussian small scales.

Pipeline (``extend``): fill masked pixels, bring the input to the output Nside, fit its
beam-deconvolved spectra (``forse.smoothing.spectral_model``), draw the Gaussian small-scale
baseline (it sets the local amplitude of the generated small scales), tile the sphere, cut
low-resolution and baseline patches, run the generator batch by batch, normalize to physical
units, stitch the small scales with weights whose squares sum to one (``blend_window``), then in
harmonic space calibrate them to the extrapolated spectra (``forse.calibrate``) and add the
input's large scales deconvolved to the output beam: the output is a map at the output beam at
every multipole, the input below ``ell_transition[0]``, the calibrated small scales above
``ell_transition[1]``.

Polarization: Q/U are rotated into each patch's frame on the way in and back on the way out
(spin-2). Mode ``"ratio"`` applies the intensity's generated small-scale ratio to
the large-scale Q and U as well, ``Q + iU = (Q_L + iU_L) HR / T_L``: the polarization fraction
and angle are taken smooth below the input's resolution, so the polarized small scales follow the
intensity's clumps and filaments (only the T generator is used). ``"qu"`` runs the Q and U
generators on the Q and U patches (as ForSE); ``"p-angle"`` generates small scales of the
polarized intensity P with the T generator and rebuilds Q/U with the large-scale polarization
angle; ``"joint"`` (the default) takes the Q/U small scales of the joint T/Q/U generator
(``dust-TQU``: T, Q, U patches in, T, Q, U small scales out, trained on the truth's polarized
small scales), with one amplitude factor per patch for both (the generated E/B balance and
angles are kept), and the T small scales of the T generator (chosen on the tuning sky, seed 2:
the joint model's own T is the weaker, its Q/U beat the ratio mode's on 5 of 6 rows). The
harmonic calibration then sets TT, EE, BB and TE in every mode.
"""
from __future__ import annotations

import warnings

import healpy as hp
import numpy as np

from .. import _checks
from .._checks import nside_of
from .._dispatch import on_host, to_device
from .._log import Timings, peak_rss_gb  # noqa: F401 (forse.extend.Timings, as before)
from ..data import units
from ..sphere import projection, sht, tiling
from . import parallel
from .options import (  # noqa: F401 (defined in forse.options, imported from here too)
    BLEND_POWER,
    BLENDS,
    CALIBRATIONS,
    DEFAULT_POL_MODE,
    POL_MODES,
    ExtendOptions,
)
from .options import resolve as resolve_options

STAGES = ("read", "smooth", "project", "infer", "normalize", "backproject", "calibrate", "write")
# quadrature analysis of the small scales: a Jacobi step would add a full-sky residual (0.8 GB
# for Q/U at Nside 2048)
SS_ITER = 0


def _as_stack(m):
    a = np.asarray(m)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] not in (1, 3):
        raise ValueError(f"`m` must be a T map (npix,) or a TQU stack (3, npix), got shape {np.shape(m)}")
    if a.dtype.kind != "f":
        raise TypeError(f"`m` must be a floating-point map, got dtype {a.dtype}")
    nside_of(a.shape[1], "m")
    if a.dtype == np.float64:
        return a  # no copy: maps are large
    out = a.astype(np.float64)
    if not _checks.clean(a):
        out[_checks.unseen(a)] = hp.UNSEEN  # the float64 UNSEEN the rest of the chain tests for
    return out


#: The default output Nside (the bundled models' native one) and the share of negative
#: intensity pixels above which an input is probably not a dust intensity map.
NSIDE_OUT, NEGATIVE_SHARE = 2048, 0.05


def _output_nside(maps, nside_out) -> int:
    nside_in = hp.get_nside(maps[0])
    if nside_out is None:
        if nside_in != NSIDE_OUT:
            warnings.warn(f"`m` has Nside {nside_in}; the output has Nside {NSIDE_OUT} (the "
                          "default `nside_out`): pass nside_out to choose", UserWarning,
                          stacklevel=3)
        return NSIDE_OUT
    return _checks.nside(nside_out, "nside_out")


def _warn_negative(maps):
    """Dust intensity is positive: a map with many negative pixels (a difference map, a wrong
    sign, an offset removed) gets small scales modulated by a floor, mostly negative output."""
    t = maps[0]
    if _checks.clean(t):
        share = np.count_nonzero(t < 0) / t.size
    else:
        ok = ~_checks.bad_mask(t)
        share = np.count_nonzero(t[ok] < 0) / max(1, np.count_nonzero(ok))
    if share > NEGATIVE_SHARE:
        warnings.warn(f"`m`: {share:.0%} of the intensity pixels are negative (more than "
                      f"{NEGATIVE_SHARE:.0%}); forse expects a positive dust intensity map, and "
                      "its output there will be mostly negative", UserWarning, stacklevel=3)


def _fill_masked(maps, bad):
    """Replace masked pixels by a smooth continuation (the mean of their valid neighbours where
    they have some, as for an isolated spike; a low-Nside average for the rest of a hole), so
    that patches touching the mask stay finite; the mask is applied again to the output."""
    if not bad.any():
        return maps
    nside = hp.get_nside(maps[0])
    out = maps.copy()
    low = min(nside, 64)
    idx = np.flatnonzero(bad)
    nb = hp.get_all_neighbours(nside, idx) if idx.size <= 1 << 20 else None
    for k in range(len(maps)):
        work = np.where(bad, hp.UNSEEN, maps[k])
        coarse = hp.ud_grade(work, low, pess=False)
        hole = _checks.unseen(coarse)
        if hole.all():
            raise ValueError("`m` has no valid pixel (all UNSEEN or NaN)")
        coarse[hole] = np.mean(coarse[~hole])  # entire coarse pixels masked: global mean
        out[k, bad] = hp.ud_grade(coarse, nside)[bad]
        if nb is not None:
            ok = (nb >= 0) & ~bad[np.maximum(nb, 0)]
            cnt = ok.sum(axis=0)
            tot = np.where(ok, maps[k][np.maximum(nb, 0)], 0.0).sum(axis=0)
            edge = cnt > 0
            out[k, idx[edge]] = tot[edge] / cnt[edge]
    return out


#: A pixel is an isolated spike when it is farther than SPIKE_CANDIDATE robust sigmas from the
#: map's median and farther than SPIKE_FACTOR times its 8 neighbours' range from their median:
#: an input smoothed to its beam cannot jump like that from one pixel to the next (the Galactic
#: plane, hundreds of sigmas bright, is smooth at the pixel scale and is never flagged).
SPIKE_CANDIDATE, SPIKE_FACTOR = 50.0, 20.0


def _spikes(maps, bad):
    """Isolated extreme pixels of a beam-smoothed (k, npix) RING stack (e.g. one pixel at 1e30
    or at 1e6 times the map): a bool map. One such pixel would otherwise set the whole sky's
    spectral fit and, deconvolved, ring over the whole map."""
    nside = hp.get_nside(maps[0])
    out = np.zeros(maps.shape[1], dtype=bool)
    good = ~bad
    for m in maps:
        step = max(1, m.size // 1_000_000)  # a robust scale from ~1M pixels, no full copy
        v = m[::step][good[::step]]
        med = np.median(v)
        sigma = 1.4826 * np.median(np.abs(v - med))
        if not sigma > 0:
            continue
        with np.errstate(invalid="ignore"):
            # two comparisons, not |m - med|: no float temporaries of the full map
            far = m > med + SPIKE_CANDIDATE * sigma
            far |= m < med - SPIKE_CANDIDATE * sigma
            far &= good
            cand = np.flatnonzero(far)
            del far
            # cheap first cut with the two ring neighbours (pixel index -1, +1 in RING order)
            lo, hi = m[cand - 1], m[(cand + 1) % m.size]
            cand = cand[np.abs(m[cand] - 0.5 * (lo + hi)) > SPIKE_FACTOR * np.abs(hi - lo)]
        for c0 in range(0, cand.size, 1 << 20):
            c = cand[c0:c0 + (1 << 20)]
            nb = hp.get_all_neighbours(nside, c)
            safe = np.maximum(nb, 0)  # -1: no neighbour there
            vals = np.where((nb < 0) | bad[safe], np.nan, m[safe])
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods
                centre = np.nanmedian(vals, axis=0)
                spread = np.nanmax(vals, axis=0) - np.nanmin(vals, axis=0)
                jump = np.abs(m[c] - centre) > SPIKE_FACTOR * spread + 1e-12 * np.abs(centre)
            out[c[jump & np.isfinite(centre)]] = True
    return out


def _report_spikes(spikes):
    idx = np.flatnonzero(spikes)
    lon, lat = hp.pix2ang(hp.npix2nside(spikes.size), idx[:5], lonlat=True)
    where = ", ".join(f"(l={a:.2f}, b={b:.2f})" for a, b in zip(lon, lat))
    warnings.warn(f"`m`: {idx.size} isolated extreme pixel(s) masked as spikes, at {where}"
                  f"{' ...' if idx.size > 5 else ''} (more than {SPIKE_FACTOR:g}x their "
                  "neighbours' range away from them): they are UNSEEN in the output, and the "
                  "rest of the sky is extended as if they were missing", UserWarning, stacklevel=3)


def _beam_lmax(fwhm_arcmin, nside):
    """Multipole where the Gaussian beam has fallen to 1e-6 (nothing above matters)."""
    sigma = np.radians(fwhm_arcmin / 60.0) / np.sqrt(8 * np.log(2))
    return int(min(3 * nside - 1, np.ceil(np.sqrt(2 * np.log(1e6)) / sigma)))


def _change_nside(maps, nside_out, fwhm_arcmin):
    nside_in = hp.get_nside(maps[0])
    if nside_in == nside_out:
        return maps
    lmax = _beam_lmax(fwhm_arcmin, min(nside_in, nside_out))
    pol = len(maps) == 3
    return sht.alm2map(sht.map2alm(maps, lmax, iter=1, pol=pol), nside_out, lmax, pol=pol)


def _generator_input(lr, fwhm_in, card):
    """The maps the patches are cut from, at the beam the network was trained on: an input
    sharper than the card's ``fwhm_lr_arcmin`` is smoothed to it (the 3' stage takes the 12'
    map, its network 20' patches); the large scales and the Gaussian baseline keep the input's
    own beam. float32, replacing ``lr`` (no second map held)."""
    from ..sphere.smoothing import resmooth

    want = float(card.get("fwhm_lr_arcmin", fwhm_in))
    if want <= fwhm_in * (1 + 1e-6):
        return lr
    return resmooth(lr, fwhm_in, want, pol=len(lr) == 3).astype(np.float32)


def blend_window(npix, taper_fraction, power=BLEND_POWER):
    """Back-projection weights of one patch, ``(t(u) t(v))**power`` with ``t`` the quintic ramp of
    ``forse.projection`` over ``taper_fraction`` of the side. With ``blend="quadrature"`` the
    stitched small scales are ``sum w p / sqrt(sum w^2)``: independent patterns keep their
    variance everywhere, and a high power narrows the hand-over between two patches to the
    middle of their overlap, so that most pixels take one patch's pattern (the sum of several
    independent non-Gaussian patterns is more Gaussian than each)."""
    t = projection._taper_1d(np.arange(npix, dtype=np.float64), npix, taper_fraction)
    return np.outer(t, t) ** float(power)


def resolve_calibration(calibrate, pol_mode):
    """``"auto"`` -> ``"spectra"`` for every ``pol_mode``; other values as given.

    Chosen on the tuning sky (seed 2) of sky version 2, whose polarized small scales carry
    Planck's power-law EE, BB and TE: with ``"split"`` the ratio mode kept the polarized power
    of intensity-built small scales, 0.19-0.27 of the truth's above ell 300 (on version 1, whose
    polarized small scales were the intensity's, ``"split"`` had been the better choice)."""
    del pol_mode  # every mode takes the polarized spectra from the input's extrapolation
    return "spectra" if calibrate == "auto" else calibrate


def _sharp(model, pol):
    """The output's large scales as a float32 map: the input deconvolved to the output beam
    below the hand-over (``model["large_alm"]``)."""
    return np.atleast_2d(sht.alm2map(model["large_alm"], model["nside"], model["lfit"], pol=pol,
                                     dtype=np.float32))


def _calibrated_alm(ss, model, pol, calibrate):
    """Harmonic coefficients of the output from the stitched small scales ``ss`` ((1, npix) T
    or (3, npix) T, Q, U): the small scales, calibrated to the spectra extrapolated from the
    input (``forse.calibrate``; ``calibrate=None`` only filters them with the hand-over window),
    plus the input's large scales (``model["large_alm"]``, deconvolved to the output beam)."""
    from .calibrate import calibrate_alm, decorrelate

    lmax, lfit = model["lmax"], model["lfit"]
    alm = sht.map2alm(ss if pol else ss[0], lmax, iter=SS_ITER, pol=pol)
    if calibrate is not None:
        # intensity only: for Q/U built from the intensity's ratio the part correlated with the
        # large scales is the coherent one that carries their one-point shape (V0 drops ~0.04
        # on the tuning sky, seed 2, when it is removed)
        decorrelate(np.atleast_2d(alm)[:1], np.atleast_2d(model["large_alm"])[:1], lfit)
        calibrate_alm(alm, model["targets"], mode=calibrate,
                      handover=model["info"]["ell_transition"])
    else:
        fade = np.sqrt(np.clip(1.0 - model["window"] ** 2, 0.0, 1.0))
        for a in np.atleast_2d(alm):
            hp.almxfl(a, fade, inplace=True)
    ell, emm = hp.Alm.getlm(lfit)
    idx = hp.Alm.getidx(lmax, ell, emm)
    for a, large in zip(np.atleast_2d(alm), np.atleast_2d(model["large_alm"])):
        a[idx] += large
    return alm


def _small_scales(gens, lr, gauss, sharp, seed, stochastic, pol_mode, timings):
    """Generated small-scale patches for one batch, in physical units, relative to ``sharp``.

    gens: ``forse.gan.Generator`` by role ("T", "Q", "U", "TQU"); each rescales its inputs and
    normalizes its outputs as its own card says (``inputs``, ``run``, ``small_scales``).
    seed: one entropy list per patch ([seed, patch index]).
    lr, gauss, sharp: (B, k, n, n) with k = 1 (T), 2 (Q, U in the patch frame) or 3 (T, Q, U,
    ``pol_mode="ratio"`` or ``"joint"``). ``lr`` is the generator's input (the map at the input
    beam); ``sharp`` the output's large scales (the input deconvolved to the output beam): the
    small scales are the generated ratio times it, so that they are largest where the input's
    own finest resolved structure is (a dust clump brings its small scales with it)."""
    if lr.shape[1] != 2:  # T, or T, Q, U
        gen = gens["T"]
        with timings("infer"):
            x = gen.inputs(lr[:, 0])
            g = gen.run(x, seed, stochastic)
        with timings("normalize"):
            t = sharp[:, 0]
            t_amp = _t_amplitude(t)
            dt = gen.small_scales(g, t, gauss[:, 0], t_amp)
        if lr.shape[1] == 1:
            return dt[:, None]
        if pol_mode == "joint":  # Q, U of the joint generator, T of the T generator
            joint = gens["TQU"]
            with timings("infer"):
                g = joint.run(joint.inputs(lr, t_scaled=x), None, False)
            with timings("normalize"):
                qu = joint.small_scales(g, sharp, gauss, t_amp)
            return np.concatenate([dt[:, None], qu], axis=1)
        # polarization fraction and angle taken smooth below the input's resolution:
        # Q + iU = (Q_L + i U_L) * HR / T_L, the intensity's small-scale ratio for all three
        frac = dt / t_amp
        return np.stack([dt, sharp[:, 1] * frac, sharp[:, 2] * frac], axis=1)
    q, u = sharp[:, 0], sharp[:, 1]
    amp = np.sqrt(q * q + u * u) + 1e-12  # local large-scale P: positive, sets the modulation
    if pol_mode == "qu":
        out = []
        for k, name in ((0, "Q"), (1, "U")):
            gen = gens[name]
            with timings("infer"):
                g = gen.run(gen.inputs(lr[:, k]), [s + [k + 1] for s in seed], stochastic)
            with timings("normalize"):
                # Q crosses zero: modulate by the (positive) local large-scale P instead
                out.append(gen.small_scales(g, sharp[:, k], gauss[:, k], amp))
        return np.stack(out, axis=1)
    # p-angle: small scales of P from the T generator, angle from the large scales
    gen = gens["T"]
    pg = np.sqrt(gauss[:, 0] ** 2 + gauss[:, 1] ** 2)
    with timings("infer"):
        g = gen.run(gen.inputs(np.sqrt(lr[:, 0] ** 2 + lr[:, 1] ** 2) + 1e-12), seed, stochastic)
    with timings("normalize"):
        dp = gen.small_scales(g, amp, pg, None)
    c2, s2 = q / amp, u / amp
    return np.stack([dp * c2, dp * s2], axis=1)


def _t_amplitude(t):
    """The intensity that modulates the small scales, floored where a T map dips to <= 0 (the
    ratio HR/LR needs LR > 0)."""
    floor = 1e-3 * np.nanmedian(np.abs(t), axis=(-2, -1), keepdims=True)
    return np.maximum(t, floor)


def _gather(results, c, nb, rows, last):
    """Rows ``rows`` (an index, or a slice for Q/U) of channel group ``c``'s patches over all
    ``nb`` batches, in one contiguous array; with ``last`` the batches are freed."""
    out = np.concatenate([results[(c, b)][:, rows] for b in range(nb)])
    if last:
        for b in range(nb):
            del results[(c, b)]
    return out


def _sibling(t_model: str, stokes: str) -> str:
    """The Q, U or joint (TQU) generator saved beside a T generator: ``x-T[.keras]`` ->
    ``x-Q[.keras]`` (or ``x[.keras]`` -> ``x-Q[.keras]``); ``x-TQU`` names the same family."""
    root, ext = (t_model[:-6], ".keras") if t_model.endswith(".keras") else (t_model, "")
    if root.endswith("-TQU"):  # the family named by its joint generator
        root = root[:-4]
    elif root.endswith("-T"):
        root = root[:-2]
    elif stokes == "T":
        return t_model  # a T model without a suffix
    return f"{root}-{stokes}{ext}"


def model_names(model, stokes: str, pol_mode: str) -> dict:
    """{"T"|"Q"|"U"|"TQU": bundled name or path} of the generators a run needs ("TQU": the joint
    generator, ``x-T`` -> ``x-TQU``, in ``"joint"`` mode)."""
    keys = ["T"] + ({"qu": ["Q", "U"], "joint": ["TQU"]}.get(pol_mode, []) if stokes == "TQU"
                    else [])
    if isinstance(model, dict):
        missing = [k for k in keys if k not in model]
        if missing:
            raise ValueError(f"`model` as a dict needs the keys {keys} for stokes={stokes!r}, "
                             f"pol_mode={pol_mode!r}; missing {missing}")
        return {k: model[k] for k in keys}
    return {k: _sibling("dust-T" if model is None else str(model), k) for k in keys}


def model_cards(model, stokes: str, pol_mode: str) -> dict:
    """The checked cards of the generators a run needs (no TensorFlow): a broken card, or a
    non-intensity model for the T channel, is refused before anything is loaded."""
    from .._cards import checked_card

    cards = {k: checked_card(name) for k, name in model_names(model, stokes, pol_mode).items()}
    if "TQU" in cards and cards["TQU"].get("stokes") != "TQU":
        raise ValueError(f"`pol_mode`='joint' needs a joint T/Q/U generator (card stokes 'TQU', "
                         f"e.g. dust-TQU), got a model card with "
                         f"stokes={cards['TQU'].get('stokes', 'T')!r}")
    if cards["T"].get("stokes", "T") != "T":
        raise ValueError(f"`model` must be an intensity (T) generator for the T channel, "
                         f"got a model card with stokes={cards['T'].get('stokes')!r}")
    return cards


#: how much coarser than a model's training inputs (its card's fwhm_lr_arcmin) an input may be
INPUT_BEAM_SLACK = 2.0


def check_input_beam(fwhm_in: float, card: dict, name: str) -> None:
    """Refuse an input far coarser than the model was trained on (a 3' model, trained on 20'
    inputs, given an 80' map: the 12' stage's job); a sharper input is smoothed to the card's
    beam (``_generator_input``)."""
    lr = float(card.get("fwhm_lr_arcmin", fwhm_in))
    if float(fwhm_in) > INPUT_BEAM_SLACK * lr:
        raise ValueError(
            f"{name} {float(fwhm_in):g}' is far coarser than the inputs model "
            f"{card.get('name')!r} was trained on ({lr:g}' -> {float(card['fwhm_hr_arcmin']):g}'); "
            "a finer model is a later stage of a chain: extend to 3' with forse.chain (forse "
            "extend --fwhm-out 3), or give a map at its input beam")


def min_nside(card: dict) -> int:
    """The smallest output Nside whose pixels resolve a model's beam (pixels <= FWHM / 2)."""
    nside = 1
    while np.degrees(hp.nside2resol(nside)) * 60 > float(card["fwhm_hr_arcmin"]) / 2:
        nside *= 2
    return nside


def load_models(model, stokes: str, pol_mode: str):
    """{"T"|"Q"|"U": generator} and the T model's card for a bundled name or a path."""
    from .. import gan

    cards = model_cards(model, stokes, pol_mode)
    gens = {k: gan.load_generator(name) for k, name in model_names(model, stokes, pol_mode).items()}
    return gens, cards["T"]


def _card_keys(name, card, suffix=""):
    """Header keys of one model card; ``suffix`` "" for the T model, "_Q"/"_U" for the others
    (the T keys keep their historical 8-character names)."""
    import os

    step = card.get("metrics", {}).get("checkpoint_step")
    keys = (("MODEL", "MODEL"), ("MODELCRD", "CARD"), ("MODELWID", "WIDTH"),
            ("MODELSTP", "STEP"), ("MODELVER", "MODVER"))
    values = (os.path.basename(name)[:60], card.get("name"), card.get("width"), step,
              card.get("forse_version"))
    return {(t if not suffix else q + suffix): v for (t, q), v in zip(keys, values)}


def output_header(options=None, *, stokes="T", unit=None, freq_ghz=None, **kw) -> dict:
    """FITS keywords that describe an extended map: seed, Nside, the run's options, every model
    card used (T; Q and U too for a TQU map in ``"qu"`` mode), the unit (``UNIT``, written as the
    columns' TUNITn) and reference frequency (``REFFREQ``, GHz) when known, and the beams: the
    output is at the Gaussian beam ``OUTFWHM`` at every multipole, the input (``INFWHM``)
    deconvolved to it below ``ELLKEEP``, the generated small scales above ``ELLGEN``."""
    from ..gan.models import load_card
    from ..sphere.smoothing import default_ell_fit, default_ell_transition

    o = resolve_options(options, kw, "output_header()")
    nside_out = NSIDE_OUT if o.nside_out is None else o.nside_out
    names = model_names(o.model, stokes, o.pol_mode)
    t_model = names["T"]
    card = load_card(t_model)
    keep, gen = default_ell_transition(o.input_fwhm_arcmin,
                                       default_ell_fit(o.input_fwhm_arcmin, nside_out))
    fwhm = card.get("fwhm_hr_arcmin")
    head = {"SEED": int(o.seed),
            "INFWHM": (float(o.input_fwhm_arcmin), "[arcmin] beam of the input map"),
            "OUTFWHM": (fwhm, "[arcmin] beam of this map at all multipoles"),
            "ELLKEEP": (int(keep), "l below: the input deconvolved to OUTFWHM"),
            "ELLGEN": (int(gen), "l above: generated; cos^2 hand-over between"),
            "OUTNSIDE": int(nside_out), **_card_keys(t_model, card),
            "PIXARCM": card.get("pixel_arcmin"),
            "POLMODE": o.pol_mode, "LAYOUT": o.layout,
            "CALIB": str(resolve_calibration(o.calibrate, o.pol_mode)).lower(),
            "BLEND": o.blend,
            "STOCHAST": bool(card.get("stochastic", False)) if o.stochastic is None else
            bool(o.stochastic)}
    for k, name in names.items():  # Q and U ("qu"), the joint generator ("joint": suffix _J)
        if k != "T":
            head.update(_card_keys(name, load_card(name), "_" + ("J" if k == "TQU" else k)))
    if unit is not None:
        units.canonical(unit)  # a unit PySM and the converters know
        head["UNIT"] = str(unit)
    if freq_ghz is not None:
        head["REFFREQ"] = (float(freq_ghz), "[GHz] reference frequency of the map")
    return {k: v for k, v in head.items() if (v[0] if isinstance(v, tuple) else v) is not None}


def extend(m, options=None, *, progress=True, timings=None, comm="auto", fit_mask=None,
           return_baseline=False, **kw):
    """Extend a low-resolution T or TQU map to the model's resolution (12' for the bundled models).

    Parameters
    ----------
    m : (npix,) or (3, npix) array, RING, any Nside; UNSEEN/NaN pixels stay masked in the output.
    options : a ``forse.options.ExtendOptions`` (the run's options below, shared with the CLI,
        the output header and the PySM component); keyword arguments named as its fields
        override it, e.g. ``extend(m, input_fwhm_arcmin=60.0, seed=3)``.

    Options (``ExtendOptions`` fields):

    input_fwhm_arcmin : beam of the input map.
    nside_out : output Nside (its pixels must resolve the model's beam: >= 1024 for the
        bundled 12' models). None: 2048 (the bundled models' native Nside), with a warning when
        the input's Nside differs.
    model : None for the bundled models, a bundled name or a ``.keras`` path (its ``-Q``/``-U``
        siblings are used for polarization in ``"qu"`` mode), or a dict {"T": ..., "Q": ..., "U": ...}.
    layout, size_deg, overlap_deg : the tiling (``forse.tiling``).
    seed : seeds the Gaussian baseline and the generator noise; the same seed gives the same map.
    stochastic : add ForSE+ input noise (different seeds, different small scales); None follows
        the model card.
    pol_mode : ``"joint"`` (default), ``"ratio"``, ``"qu"`` or ``"p-angle"`` (see module
        docstring).
    ell_transition : (l1, l2): below l1 the output is the input deconvolved to the output beam,
        above l2 the generated small scales, a cos^2 cross-fade in power between (default
        ``forse.smoothing.spectral_model``'s: (217, 307) for an 80' input).
    blend : ``"quadrature"`` (weights whose squares sum to one: overlapping independent patterns
        keep their variance) or ``"mean"`` (ForSE's weighted mean, which halves the small-scale
        power in the middle of an overlap strip).
    blend_power : exponent of the patch window (``blend_window``): higher, narrower hand-overs.
    calibrate : how the stitched small scales are calibrated in harmonic space
        (``forse.calibrate.calibrate_alm``'s modes): ``"auto"`` (default) is ``"spectra"``
        (``resolve_calibration`` says why); ``"split"``: TT, the E/B split and
        TE from the spectra extrapolated from the input, the polarized power relative to the
        intensity's from the small scales themselves (meaningful when the polarized small
        scales are built from the intensity's); ``"spectra"`` (TT, EE, BB, TE all from
        the input), ``"intensity"`` (TT from the input, polarization as built); ``None`` only
        filters them with the hand-over window (the generator's own spectrum goes into the map).
        For T alone every mode is the same.
    backend : native kernels for the projections (``forse.projection``): "auto", "cpu",
        "cuda" or "numpy".

    Run arguments:

    progress : a progress bar over the tile batches.
    timings : a ``Timings`` that collects the stage times and memory peaks.
    fit_mask : optional bool map at the output Nside for the spectral fit (and the Gaussian
        baseline's), e.g. leaving out bright compact sources, which flatten the fitted slope.
    comm : an mpi4py communicator, ``None`` (serial) or ``"auto"`` (MPI world under mpiexec).
    return_baseline : also return the Gaussian small-scale baseline of the same seed.

    Returns the extended map(s) ((npix,) or (3, npix)), and the Gaussian baseline too when
    ``return_baseline``; under MPI only rank 0 gets them (the other ranks get None).
    """
    from ..sphere.smoothing import gaussian_small_scales, spectral_model

    timings = Timings() if timings is None else timings
    comm = parallel.world() if comm == "auto" else comm
    maps = _as_stack(m)
    stokes = "T" if len(maps) == 1 else "TQU"
    o = resolve_options(options, kw).check()
    calibrate = resolve_calibration(o.calibrate, o.pol_mode)
    nside_out = _output_nside(maps, o.nside_out)
    # the cards (JSON) before the generators (TensorFlow): a bad model fails in a second
    card = model_cards(o.model, stokes, o.pol_mode)["T"]
    fwhm_hr = float(card["fwhm_hr_arcmin"])
    px = float(card["pixel_arcmin"])
    if o.input_fwhm_arcmin <= fwhm_hr:
        raise ValueError(f"`input_fwhm_arcmin` ({o.input_fwhm_arcmin}) must be larger than the "
                         f"model's output beam ({fwhm_hr} arcmin)")
    check_input_beam(o.input_fwhm_arcmin, card, "`input_fwhm_arcmin`")
    if nside_out < min_nside(card):
        resol = np.degrees(hp.nside2resol(nside_out)) * 60
        raise ValueError(f"`nside_out`={nside_out} has {resol:.1f}' pixels, too coarse for the "
                         f"model's {fwhm_hr}' beam; expected nside_out >= {min_nside(card)}")
    npix = int(round(o.size_deg * 60.0 / px))
    if npix % 4:
        raise ValueError(f"`size_deg`={o.size_deg} gives {npix}-pixel patches at the model's "
                         f"{px:g}' pixels; expected a side that is a multiple of 4 pixels")
    _warn_negative(maps)
    with timings("read"):
        gens, card = load_models(o.model, stokes, o.pol_mode)

    with timings("smooth"):
        bad = _checks.bad_mask(maps).any(axis=0)
        spikes = _spikes(maps, bad)
        if spikes.any():
            _report_spikes(spikes)
            bad |= spikes
        filled = _fill_masked(maps, bad)
        lr = _change_nside(filled, nside_out, o.input_fwhm_arcmin)
        ncomp = len(maps)
        del maps, filled  # a float64 copy of a float32 input: 1.2 GB for TQU at Nside 2048
        # an 80' map in float32 (patches are cut from it, its spectra fitted at l < 600): half
        # the memory of the smoothing and the tile loop; a clean float32 input at the output
        # Nside is that map already (float32 -> float64 -> float32 is exact): no copy
        given = np.atleast_2d(np.asarray(m))
        clean32 = given.dtype == np.float32 and given.shape == lr.shape and not bad.any()
        lr = given if clean32 else lr.astype(np.float32, copy=False)
        del given
        bad_out = hp.ud_grade(bad.astype(float), nside_out) > 0 if bad.any() else None
        spec = spectral_model(lr if stokes == "TQU" else lr[0], o.input_fwhm_arcmin, fwhm_hr,
                              ell_transition=o.ell_transition, fit_mask=fit_mask)
        # float32: only patches are cut from it
        gauss = np.atleast_2d(gaussian_small_scales(lr if stokes == "TQU" else lr[0],
                                                    o.input_fwhm_arcmin, fwhm_hr, seed=o.seed,
                                                    dtype=np.float32, model=spec))
        lr = _generator_input(lr, o.input_fwhm_arcmin, card)

    lon, lat = getattr(tiling, o.layout)(o.size_deg, o.overlap_deg)
    nb = -(-len(lon) // o.batch_size)
    mine = parallel.my_share(nb, comm)
    # (rows of the stack, spin 2): T and Q/U apart, or T, Q, U together ("ratio", "joint")
    channels = ([(slice(0, 1), False)] if stokes == "T" else [(slice(0, 3), True)]
                if o.pol_mode in ("ratio", "joint") else [(slice(0, 1), False), (slice(1, 3), True)])
    with timings("smooth"):
        sharp = _sharp(spec, stokes == "TQU")
    results = {}
    from tqdm.auto import tqdm

    bar = tqdm(total=len(mine) * len(channels), desc="forse extend", unit="batch",
               disable=not progress or parallel.rank(comm) != 0)
    on_device = [to_device(o.backend, x) for x in (lr, gauss, sharp)]  # once, on "cuda"
    for c, (rows, pol) in enumerate(channels):
        for b in mine:
            sel = slice(b * o.batch_size, min(len(lon), (b + 1) * o.batch_size))
            with timings("project"):
                lr_p, gauss_p, sharp_p = (
                    on_host(projection.healpix_to_patches, x[rows], lon[sel], lat[sel], npix,
                            px, pol=pol, backend=o.backend).reshape(
                        sel.stop - sel.start, rows.stop - rows.start, npix, npix)
                    for x in on_device)
            seeds = [[o.seed, i] for i in range(sel.start, sel.stop)]
            ss = _small_scales(gens, lr_p, gauss_p, sharp_p, seeds, o.stochastic, o.pol_mode,
                               timings)
            results[(c, b)] = ss.astype(np.float32)
            bar.update()
    bar.close()
    del sharp, on_device
    results = parallel.gather_by_index(results, comm)
    if not return_baseline:
        del gauss  # 0.6 GB for TQU at Nside 2048: gone before the full-sky stitching

    out = None
    if results is not None:  # rank 0 (or serial)
        del lr  # the output's large scales come from spec["large_alm"]
        ss_map = np.zeros((ncomp, 12 * nside_out * nside_out), dtype=np.float32)
        taper = min(0.5, o.overlap_deg / o.size_deg)  # ramp over the overlap: no seams
        window = blend_window(npix, taper, o.blend_power)
        for c, (rows, pol) in enumerate(channels):
            # T apart from Q/U: the stitching holds two float64 maps at a time, not three
            k = rows.stop - rows.start
            parts = ([(slice(0, 1), False), (slice(1, 3), True)] if pol and k == 3
                     else [(slice(0, k), pol)])
            for i, (sub, spin) in enumerate(parts):
                with timings("backproject"):
                    x = _gather(results, c, nb, sub if spin else sub.start, i == len(parts) - 1)
                    sm = on_host(projection.patches_to_healpix, x, lon, lat, nside_out, px,
                                 pol=spin, window=window, blend=o.blend, taper_fraction=taper,
                                 backend=o.backend)
                    sm = np.atleast_2d(sm)
                    sm[_checks.unseen(sm)] = 0.0
                    ss_map[rows][sub] = sm
                del x, sm
        with timings("calibrate"):
            alm = _calibrated_alm(ss_map, spec, stokes == "TQU", calibrate)
            del ss_map  # before the synthesis: 0.6 GB for TQU at Nside 2048
            out = np.atleast_2d(sht.alm2map(alm, nside_out, spec["lmax"], pol=stokes == "TQU"))
            del alm
        if bad_out is not None:
            out[:, bad_out] = hp.UNSEEN
            if return_baseline:
                gauss[:, bad_out] = hp.UNSEEN
    if out is None:  # MPI ranks other than 0: the result lives on rank 0 only
        return (None, None) if return_baseline else None
    out = out[0] if stokes == "T" else out
    if return_baseline:
        return out, (gauss[0] if stokes == "T" else gauss)
    return out
