"""Self-contained HTML validation report (figures embedded as base64 PNG, matplotlib Agg)."""
from __future__ import annotations

import base64
import functools
import html
import io
import os
import re

import numpy as np

from .._atomic import replacing, write_text

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


@functools.lru_cache(maxsize=4)
def _moll_pixels(nside, xsize):
    """Image pixels inside the Mollweide ellipse and the HEALPix pixel each shows (as
    healpy's ``MollweideProj.projmap``)."""
    import healpy as hp

    proj = hp.projector.MollweideProj(xsize=xsize)
    x, y = proj.ij2xy()
    inside = ~np.ma.getmaskarray(x)
    vec = proj.xy2vec(np.asarray(x[inside]), np.asarray(y[inside]))
    return inside, hp.vec2pix(nside, vec[0], vec[1], vec[2])


def _moll(m, xsize=600, f=None):
    """Mollweide image of map ``m`` (-inf outside the sphere, NaN where not finite). ``f``
    applies to the sampled values only (of each map, when ``m`` is a tuple of maps): a
    full-sky map is never transformed whole."""
    ms = m if isinstance(m, tuple) else (m,)
    inside, pix = _moll_pixels(int(round(np.sqrt(np.shape(ms[0])[-1] / 12))), int(xsize))
    vs = [np.asarray(x)[pix].astype(np.float64) for x in ms]
    v = vs[0]
    if f is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = f(*vs)
    img = np.full(inside.shape, -np.inf)
    img[inside] = np.where(np.isfinite(v), v, np.nan)
    return img


def _log10_positive(v):
    return np.log10(np.where(v > 0, v, np.nan))


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
        im = _imshow(axes[r, 0], _moll(t, f=_log10_positive), f"{LABELS[k]}: log10 T")
        fig.colorbar(im, ax=axes[r, 0], shrink=0.7)
        rel = _moll((t, lrs[k][0]), f=lambda a, b: a / b - 1.0)
        im = _imshow(axes[r, 1], rel, f"{LABELS[k]}: T small scales (m / lr - 1)", sym=True)
        fig.colorbar(im, ax=axes[r, 1], shrink=0.7)
    return _png(fig)


def fig_zooms(maps, lrs, places, backend="auto", npix=160, pixel_arcmin=3.75):
    from .._dispatch import on_host
    from ..sphere.projection import healpix_to_patches

    plt = _plt()
    cols = [("low resolution", lrs["map"][0])] + [(LABELS[k], maps[k][0]) for k in
                                                   ("reference", "map", "baseline") if k in maps]
    lon = np.array([p[0] for p in places])
    lat = np.array([p[1] for p in places])
    imgs = [on_host(healpix_to_patches, np.nan_to_num(m, nan=0.0), lon, lat, npix, pixel_arcmin,
                    backend=backend)
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
            ax.set_xlabel(r"threshold $\nu$ (small scales standardized per patch)", fontsize=8)
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
                    label=f"{LABELS[k]} (skew {_num(op['skewness'], '{:.2f}')}, "
                          f"kurt {_num(op['kurtosis'], '{:.2f}')})")
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
        im = _imshow(axes[0, c], _moll(r, 500, f=_log10_positive),
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


def _verdict(better):
    if better is None:
        return "<td></td>"
    return ('<td class="better">better</td>' if better else '<td class="worse">worse</td>')


def _num(x, fmt="{:.3f}"):
    return "n/a" if x is None else fmt.format(x)


def _range(r):
    return "n/a" if r is None or None in r else f"{r[0]:.2f} &ndash; {r[1]:.2f}"


def _held_out_note(summary):
    ho = summary.get("held_out") or {}
    seeds = ", ".join(str(s) for s in ho.get("training_sky_seeds", [])) or "none recorded"
    if ho.get("held_out") is False:
        return (f'<p class="warn">Not held out: the reference is the synthetic sky of seed '
                f'{ho["reference_seed"]}, which the bundled models were trained on (training sky '
                f'seeds: {seeds}). These numbers flatter the generator.</p>')
    if ho.get("held_out"):
        return (f'<p>Held out: reference sky seed {ho["reference_seed"]}; the bundled models were '
                f'trained on sky seeds {seeds}.</p>')
    return (f"<p>Reference sky seed unknown: whether these numbers are held out is not known "
            f"(the bundled models were trained on the synthetic sky of seeds {seeds}).</p>")


def headline_html(summary):
    """The headline tables: forse (the map) and the baseline against the reference, each row
    marked better or worse than the baseline (closer to the truth = better)."""
    h = summary.get("headline") or {}
    better = h.get("better", {})
    head = ("<tr><th>statistic</th><th>field</th><th>forse</th><th>baseline</th>"
            "<th>truth / ceiling</th><th>forse vs baseline</th></tr>")
    rows = []

    def row(name, field, forse, base, truth, key):
        rows.append(f"<tr><td>{name}</td><td>{field}</td><td>{forse}</td><td>{base}</td>"
                    f"<td>{truth}</td>{_verdict(better.get(key))}</tr>")

    nu = h.get("minkowski_nu", {})
    for f, d in nu.items():
        for v in ("v0", "v1", "v2"):
            row(f"Minkowski &nu; overlap {v.upper()}", f, _num(d["forse"][v]),
                _num(d.get("baseline", {}).get(v)), _num(d.get("ceiling", {}).get(v)) + " (ceiling)",
                f"minkowski_nu.{f}.{v}")
    for S, ranges in h.get("spectra", {}).items():
        for r in ranges:
            lo, hi = r["ell"]
            key = next((k for k in better if k.startswith(f"spectra.{S}.{lo}-")), None)
            row(f"{S} / reference, &ell; {lo}&ndash;{hi} ({r['n_bins']} bins, min &ndash; max)", "",
                _range(r.get("forse")), _range(r.get("baseline")), "1", key)
    if "rTE" in h:
        r = h["rTE"]
        row(f"max |r<sub>TE</sub> &minus; truth|, &ell; {r['ell'][0]}&ndash;{r['ell'][1]}", "",
            _num(r.get("forse_max_abs_diff")), _num(r.get("baseline_max_abs_diff")), "0", "rTE")
    if "EE_over_BB" in h:
        r = h["EE_over_BB"]
        row(f"EE/BB of the small scales, &ell; {r['ell'][0]}&ndash;{r['ell'][1]}", "",
            _num(r.get("forse")), _num(r.get("baseline")), _num(r.get("truth")), "EE_over_BB")
    for f, d in h.get("one_point", {}).items():
        for stat in ("skewness", "kurtosis"):
            x = d[stat]
            row(f"small-scale {'excess kurtosis' if stat == 'kurtosis' else stat}", f,
                _num(x.get("forse")), _num(x.get("baseline")), _num(x.get("truth")),
                f"one_point.{f}.{stat}")
    if not rows:
        return "<p>No reference or baseline given: no headline.</p>"
    out = [_held_out_note(summary)]
    if h.get("n_rows"):
        out.append(f"<p><b>forse is closer to the truth than the Gaussian baseline on "
                   f"{h['n_better']} of {h['n_rows']} rows</b> (Minkowski: larger overlap with the "
                   f"truth; spectra: smaller worst-bin |ratio &minus; 1|; the rest: closer value). "
                   f"The ceiling is the overlap of the reference's first half of the patches with "
                   f"its second half.</p>")
    out.append(f"<table>{head}{''.join(rows)}</table>")
    mm = h.get("minkowski_minmax", {})
    if mm:
        mrows = []
        for f, d in mm.items():
            cells = "".join(f"<td>{_num(d['forse'][v])} / {_num(d.get('baseline', {}).get(v))} / "
                            f"{_num(d.get('ceiling', {}).get(v))}</td>"
                            + _verdict(better.get(f"minkowski_minmax.{f}.{v}"))
                            for v in ("v0", "v1", "v2"))
            mrows.append(f"<tr><td>{f}</td>{cells}</tr>")
        out.append("<p class='small'>ForSE's min-max variant (each patch rescaled to [&minus;1, 1], 32 "
                   "thresholds in [&minus;1, 1]), for comparison with the papers: forse / baseline / "
                   "ceiling.</p><table class='small'><tr><th>field</th><th>V0</th><th></th><th>V1</th>"
                   "<th></th><th>V2</th><th></th></tr>" + "".join(mrows) + "</table>")
    return "".join(out)


def summary_html(summary, report=None):
    """A compact HTML summary (Jupyter's display of a ``validate`` result): the verdict, the
    nu-Minkowski overlaps of forse / baseline / ceiling per field, and where the report is."""
    h = summary.get("headline") or {}
    ho = (summary.get("held_out") or {}).get("held_out")
    title = (f"forse validation: {summary.get('stokes')} at Nside {summary.get('nside')}, "
             f"{(summary.get('patches') or {}).get('n_used', '?')} patches; "
             + {True: "held-out sky", False: "NOT held out (training sky)"}.get(ho, "sky seed unknown"))
    out = [f"<p><b>{html.escape(title)}</b></p>"]
    if h.get("n_rows"):
        out.append(f"<p>closer to the truth than the Gaussian baseline on <b>{h['n_better']} of "
                   f"{h['n_rows']}</b> headline rows</p>")
    rows = []
    for f, d in (h.get("minkowski_nu") or {}).items():
        cells = "".join(f"<td>{_num(d[who].get(v))}</td>" if who in d else "<td></td>"
                        for v in ("v0", "v1", "v2") for who in ("forse", "baseline", "ceiling"))
        rows.append(f"<tr><td>{html.escape(f)}</td>{cells}</tr>")
    if rows:
        sub = "".join("<th>forse</th><th>baseline</th><th>ceiling</th>" for _ in range(3))
        out.append("<table><tr><th rowspan=2>field</th><th colspan=3>V0 overlap</th>"
                   "<th colspan=3>V1 overlap</th><th colspan=3>V2 overlap</th></tr>"
                   f"<tr>{sub}</tr>{''.join(rows)}</table>")
    if report:
        out.append(f'<p>full report: <a href="{html.escape(str(report))}">'
                   f"{html.escape(str(report))}</a></p>")
    return "".join(out)


def zoom_places(summary):
    """Two validation patch centres and one point on a patch border of the seam tiling."""
    lon = summary["patches"]["lon_deg"]
    lat = summary["patches"]["lat_deg"]
    places = [(lon[0], lat[0], "patch"), (lon[len(lon) // 2], lat[len(lat) // 2], "patch")]
    seams = summary.get("seams") or {}
    first = next(iter(seams.values()), None)
    if first is not None:
        from ..sphere.tiling import regular

        tl, tb = regular(first["size_deg"], first["overlap_deg"])
        i = int(np.argmin(np.abs(np.asarray(tb) - 50.0)))
        half = first["size_deg"] / 2.0
        places.append((float(tl[i] + half / np.cos(np.radians(tb[i]))), float(tb[i]), "border"))
    return places


def write_report(path, summary, *, maps, lrs, seam_maps=None, full=None, backend="auto"):
    """Write the HTML report to ``path`` (atomically)."""
    sections = []
    names = summary["inputs"]
    mk = summary["minkowski"]
    rows = []
    vs = ("v0", "v1", "v2")
    pairs = list(mk["overlap"].items()) + ([("reference halves (ceiling)", mk["ceiling"])]
                                           if mk.get("ceiling") else [])
    mm = dict(mk.get("overlap_minmax") or {}, **({"reference halves (ceiling)": mk["ceiling_minmax"]}
                                                 if mk.get("ceiling_minmax") else {}))
    for pair, d in pairs:
        for f, vals in d.items():
            other = mm.get(pair, {}).get(f, {})
            rows.append([pair.replace("_", " "), f] + [_fmt(vals[v]) for v in vs]
                        + [_fmt(other.get(v)) for v in vs])
    sections.append(("Minkowski functional overlap fractions",
                     _table(rows, ["comparison", "field", "V0 (ν)", "V1 (ν)", "V2 (ν)",
                                   "V0 (min-max)", "V1 (min-max)", "V2 (min-max)"]) if rows else
                     "<p>No reference or baseline given: no overlap computed.</p>", None))
    sections.append(("Minkowski functionals (mean &plusmn; 1&sigma; over patches)", "",
                     fig_minkowski(summary)))
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
    body = [f"<h1>forse validation report</h1><h2>Headline: forse against the Gaussian baseline "
            f"(closer to the truth = better)</h2>{headline_html(summary)}{info}"]
    for title, text, img in sections:
        body.append(f"<h2>{title}</h2>{text}")
        if img:
            body.append(f'<img alt="{html.escape(title)}" src="data:image/png;base64,{img}">')
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>forse validation</title>"
            "<style>body{font-family:sans-serif;max-width:1300px;margin:auto;padding:1em}"
            "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #999;padding:3px 8px}"
            "img{max-width:100%}td.better{background:#d4f4d4}td.worse{background:#f8d4d4}"
            ".warn{background:#fde2c0;padding:0.5em;font-weight:bold}.small{font-size:85%}"
            "</style></head><body>" + "\n".join(body) + "</body></html>")
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
