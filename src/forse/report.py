"""Self-contained HTML validation report (figures embedded as base64 PNG, matplotlib Agg)."""
from __future__ import annotations

import base64
import html
import io
import os
import re

import numpy as np

from ._atomic import replacing, write_text

COLORS = {"map": "tab:red", "reference": "black", "baseline": "tab:blue"}
LABELS = {"map": "generated", "reference": "reference", "baseline": "Gaussian baseline"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _moll(m, xsize=600):
    import healpy as hp

    nside = hp.npix2nside(m.size)
    proj = hp.projector.MollweideProj(xsize=xsize)
    img = proj.projmap(np.where(np.isfinite(m), m, np.nan), lambda x, y, z: hp.vec2pix(nside, x, y, z))
    return img


def _imshow(ax, img, title, sym=False, **kw):
    finite = img[np.isfinite(img)]
    if finite.size:
        if sym:
            v = np.percentile(np.abs(finite), 99)
            kw.setdefault("vmin", -v)
            kw.setdefault("vmax", v)
        else:
            kw.setdefault("vmin", np.percentile(finite, 1))
            kw.setdefault("vmax", np.percentile(finite, 99))
    im = ax.imshow(img, origin="lower", cmap="RdBu_r" if sym else "inferno", **kw)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def fig_mollweide(maps, lrs):
    plt = _plt()
    names = list(maps)
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 2.6 * len(names)), squeeze=False)
    for r, k in enumerate(names):
        t = maps[k][0]
        im = _imshow(axes[r, 0], _moll(np.log10(np.where(t > 0, t, np.nan))), f"{LABELS[k]}: log10 T")
        fig.colorbar(im, ax=axes[r, 0], shrink=0.7)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = t / lrs[k][0] - 1.0
        im = _imshow(axes[r, 1], _moll(rel), f"{LABELS[k]}: T small scales (m / lr - 1)", sym=True)
        fig.colorbar(im, ax=axes[r, 1], shrink=0.7)
    return _png(fig)


def fig_zooms(maps, lrs, places, backend="auto", npix=160, pixel_arcmin=3.75):
    from .projection import healpix_to_patches

    plt = _plt()
    cols = [("low resolution", lrs["map"][0])] + [(LABELS[k], maps[k][0]) for k in
                                                   ("reference", "map", "baseline") if k in maps]
    lon = np.array([p[0] for p in places])
    lat = np.array([p[1] for p in places])
    imgs = [healpix_to_patches(np.nan_to_num(m, nan=0.0), lon, lat, npix, pixel_arcmin, backend=backend)
            for _, m in cols]
    fig, axes = plt.subplots(len(places), len(cols), figsize=(2.6 * len(cols), 2.6 * len(places)),
                             squeeze=False)
    for r, (lo, la, what) in enumerate(places):
        ref = imgs[1][r] if len(imgs) > 1 else imgs[0][r]
        vmin, vmax = np.percentile(ref, [1, 99])
        for c, (name, _) in enumerate(cols):
            _imshow(axes[r, c], imgs[c][r][::-1], f"{name}\n({lo:.0f}, {la:.0f}) {what}",
                    vmin=vmin, vmax=vmax)
    return _png(fig)


def fig_minkowski(summary):
    plt = _plt()
    mk = summary["minkowski"]
    thr = np.asarray(mk["thresholds"])
    fields = summary["fields"]
    fig, axes = plt.subplots(len(fields), 3, figsize=(12, 3 * len(fields)), squeeze=False)
    for r, f in enumerate(fields):
        for c, v in enumerate(("v0", "v1", "v2")):
            ax = axes[r, c]
            for k in summary["inputs"]:
                cur = mk["curves"][k][f][v]
                mean, std = np.asarray(cur["mean"], float), np.asarray(cur["std"], float)
                ax.fill_between(thr, mean - std, mean + std, color=COLORS[k], alpha=0.3,
                                label=LABELS[k])
                ax.plot(thr, mean, color=COLORS[k], lw=1)
            ax.set_title(f"{f}: {v.upper()}", fontsize=9)
            ax.set_xlabel("threshold (min-max rescaled small scales)", fontsize=8)
            if r == 0 and c == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _with_ratios(table, names):
    """``{input: spectrum}`` from ``table[input]``, and each one's ratio to the reference's."""
    curves = {k: table[k] for k in names}
    if "reference" not in names:
        return curves, {}
    ref = np.asarray(curves["reference"], float)
    return curves, {k: np.asarray(v, float) / ref for k, v in curves.items() if k != "reference"}


def _spectra_panel(fig, gs, col, ell, curves, ratios, title, logy=True):
    ax = fig.add_subplot(gs[0, col])
    axr = fig.add_subplot(gs[1, col], sharex=ax)
    for k, cl in curves.items():
        y = np.asarray(cl, dtype=float)
        ax.plot(ell, y, color=COLORS[k], label=LABELS[k], lw=1.2)
    for k, r in ratios.items():
        axr.plot(ell, np.asarray(r, dtype=float), color=COLORS[k], lw=1.2)
    axr.axhline(1.0, color="gray", lw=0.8, ls="--")
    axr.set_visible(bool(ratios))
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter

    for a in (ax, axr):
        a.xaxis.set_minor_formatter(NullFormatter())
    if logy:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    axr.set_xlabel(r"$\ell$")
    axr.set_ylabel("ratio to ref.", fontsize=8)
    return ax


def fig_spectra(summary):
    plt = _plt()
    fs = summary["full_sky"]
    names = summary["inputs"]
    specs = [s for s in ("TT", "EE", "BB", "TE") if s in fs["binned"][names[0]]]
    fig = plt.figure(figsize=(4 * len(specs), 5))
    gs = fig.add_gridspec(2, len(specs), height_ratios=[3, 1.2])
    ell = np.asarray(fs["binned"][names[0]]["ell"])
    for c, s in enumerate(specs):
        if s == "TE":  # the correlation coefficient; a TE ratio is meaningless near TE = 0
            curves = {k: fs["binned"][k]["rTE"] for k in names}
            ax = _spectra_panel(fig, gs, c, ell, curves, {}, r"$r^{TE}_\ell$ = TE / sqrt(TT EE)",
                                logy=False)
            continue
        curves, ratios = _with_ratios({k: fs["binned"][k][s] for k in names}, names)
        ax = _spectra_panel(fig, gs, c, ell, curves, ratios, f"{s} (fsky={fs['fsky']:.2f})")
        if c == 0:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def fig_patch_spectra(summary):
    plt = _plt()
    ps = summary["patch_spectra"]
    names = summary["inputs"]
    fields = summary["fields"]
    ell = np.asarray(ps["ell"])
    fig = plt.figure(figsize=(4 * len(fields), 5))
    gs = fig.add_gridspec(2, len(fields), height_ratios=[3, 1.2])
    for c, f in enumerate(fields):
        curves, ratios = _with_ratios({k: ps["mean"][k][f] for k in names}, names)
        ax = _spectra_panel(fig, gs, c, ell, curves, ratios, f"{f}: mean flat-sky spectrum of patches")
        if c == 0:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def fig_pdfs(summary):
    plt = _plt()
    fields = summary["fields"]
    fig, axes = plt.subplots(1, len(fields), figsize=(4 * len(fields), 3.2), squeeze=False)
    for c, f in enumerate(fields):
        ax = axes[0, c]
        for k in summary["inputs"]:
            op = summary["one_point"][f][k]
            e = np.asarray(op["pdf_edges"], float)
            ax.step(0.5 * (e[1:] + e[:-1]), np.asarray(op["pdf"], float), where="mid", color=COLORS[k],
                    label=f"{LABELS[k]} (skew {op['skewness']:.2f}, kurt {op['kurtosis']:.2f})")
        ax.set_yscale("log")
        ax.set_title(f"{f}: small-scale PDF ({'hr/lr' if f == 'T' else 'hr-lr'})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def fig_seams(seam_maps, summary):
    plt = _plt()
    keys = [k for k in seam_maps if k != "coverage"]
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(5 * (len(keys) + 1), 3), squeeze=False)
    rel = summary["seams"][keys[0]]["relative_to_reference"] if keys else False
    for c, k in enumerate(keys):
        r = np.asarray(seam_maps[k], float)
        im = _imshow(axes[0, c], _moll(np.log10(np.where(r > 0, r, np.nan)), 500),
                     f"{LABELS[k]}: log10 small-scale power" + (" / reference" if rel else ""), sym=rel)
        fig.colorbar(im, ax=axes[0, c], shrink=0.7)
    im = _imshow(axes[0, -1], _moll(np.asarray(seam_maps["coverage"], float), 500),
                 "tiling coverage (patches per pixel)", vmin=0, vmax=4)
    fig.colorbar(im, ax=axes[0, -1], shrink=0.7)
    return _png(fig)


def _table(rows, header):
    h = "".join(f"<th>{html.escape(str(x))}</th>" for x in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _fmt(x):
    return "n/a" if x is None else f"{x:.3f}"


def zoom_places(summary):
    """Two validation patch centres and one point on a patch border of the seam tiling."""
    lon = summary["patches"]["lon_deg"]
    lat = summary["patches"]["lat_deg"]
    places = [(lon[0], lat[0], "patch"), (lon[len(lon) // 2], lat[len(lat) // 2], "patch")]
    seams = summary.get("seams") or {}
    first = next(iter(seams.values()), None)
    if first is not None:
        from .tiling import regular

        tl, tb = regular(first["size_deg"], first["overlap_deg"])
        i = int(np.argmin(np.abs(np.asarray(tb) - 50.0)))
        half = first["size_deg"] / 2.0
        places.append((float(tl[i] + half / np.cos(np.radians(tb[i]))), float(tb[i]), "border"))
    return places


def write_report(path, summary, *, maps, lrs, seam_maps=None, full=None, backend="auto"):
    """Write the HTML report to ``path`` (atomically)."""
    sections = []
    names = summary["inputs"]
    ov = summary["minkowski"]["overlap"]
    rows = []
    for pair, d in ov.items():
        for f, vals in d.items():
            rows.append([pair.replace("_", " "), f] + [_fmt(vals[v]) for v in ("v0", "v1", "v2")])
    sections.append(("Minkowski functional overlap fractions",
                     _table(rows, ["comparison", "field", "V0", "V1", "V2"]) if rows else
                     "<p>No reference or baseline given: no overlap computed.</p>", None))
    sections.append(("Minkowski functionals (mean &plusmn; 1&sigma; over patches)", "", fig_minkowski(summary)))
    sections.append(("Mollweide views", "", fig_mollweide(maps, lrs)))
    sections.append(("Gnomonic zooms (T)", "", fig_zooms(maps, lrs, zoom_places(summary), backend)))
    sections.append(("Full-sky / masked power spectra", "", fig_spectra(summary)))
    sections.append(("Patch power spectra", "", fig_patch_spectra(summary)))
    sections.append(("One-point statistics of the small scales", "", fig_pdfs(summary)))
    if seam_maps is not None and summary.get("seams"):
        srows = [[LABELS[k], _fmt(v["overlap_over_centre"]), v["n_overlap_pixels"], v["n_centre_pixels"]]
                 for k, v in summary["seams"].items()]
        sections.append(("Seam check", _table(srows, ["map", "overlap / centre power", "overlap pixels",
                                                      "centre pixels"]), fig_seams(seam_maps, summary)))
    p = summary["patches"]
    info = _table([["Nside", summary["nside"]], ["Stokes", summary["stokes"]],
                   ["inputs", ", ".join(LABELS[k] for k in names)],
                   ["FWHM hr / lr (arcmin)", f"{summary['fwhm_hr_arcmin']} / {summary['fwhm_lr_arcmin']}"],
                   ["validation patches used / requested", f"{p['n_used']} / {p['n_requested']}"],
                   ["patches dropped (mask / NaN)", f"{p['n_dropped_mask']} / {p['n_dropped_nan']}"],
                   ["NaN/UNSEEN pixels", ", ".join(f"{k}: {v}" for k, v in summary["bad_pixels"].items())],
                   ["time (s)", summary["timings_s"].get("total")]], ["", ""])
    body = [f"<h1>forse validation report</h1>{info}"]
    for title, text, img in sections:
        body.append(f"<h2>{title}</h2>{text}")
        if img:
            body.append(f'<img alt="{html.escape(title)}" src="data:image/png;base64,{img}">')
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>forse validation</title>"
            "<style>body{font-family:sans-serif;max-width:1300px;margin:auto;padding:1em}"
            "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #999;padding:3px 8px}"
            "img{max-width:100%}</style></head><body>" + "\n".join(body) + "</body></html>")
    write_text(path, page)
    # the same figures as PNG files, for slides and papers: figures/01-minkowski-....png
    fig_dir = os.path.join(os.path.dirname(os.path.abspath(path)), "figures")
    os.makedirs(fig_dir, exist_ok=True)
    k = 0
    for title, _, img in sections:
        if img:
            k += 1
            slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"&\w+;", "", title.lower())).strip("-")
            with replacing(os.path.join(fig_dir, f"{k:02d}-{slug}.png"), suffix=".png") as tmp:
                with open(tmp, "wb") as f:
                    f.write(base64.b64decode(img))
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
