"""Digitise apple/ml-sigmoid-attention's H100 forward-kernel figure into a CSV.

Source: ``figures/H100_noalibi_FWD_Full_17.39_0.07_Causal_18.76_0.06.png`` at commit 9273b49
of apple/ml-sigmoid-attention (1185 x 884 px, matplotlib). Four series, "Kernel GPU Time (ms)"
against "Tokens": FlashAttention2 Full (black circles, solid), FlashSigmoid Full (blue
triangles, solid), FlashAttention2 Causal (black circles, dashed), FlashSigmoid Causal (blue
triangles, dashed).

Method (nothing is read by eye):
  * axis calibration: the centroids of the tick marks outside the frame (x 0..70000 every 10000,
    y 0..1750 every 250), least-squares line; residuals < 0.1 px on both axes;
  * marker colours: blue (B > R + 60, B > 150) for the triangles; for the circles all ink
    (R+G+B < 600), since a triangle drawn later may cover part of a circle;
  * marker centres: maxima of the Euclidean distance transform of each colour mask (lines are
    ~2 px wide, circles ~14 px, triangles ~16 px tall, so the peaks are the markers; two markers
    that overlap keep two peaks), refined to sub-pixel by the centroid of the distance-transform
    plateau within 2 px of the peak;
  * a '^' marker's data point is the centre of its bounding box, while the distance-transform
    peak is its incentre: the offset is measured on the isolated triangles of this figure (the
    median of bbox centre minus peak), and applied to every triangle;
  * grouping: every token position with one black and one blue marker per mask (higher = Full,
    lower = Causal) is kept. Below ~15K tokens the markers of all four curves overlap within a
    few pixels of 0 ms (1 px = 2.5 ms) and are not digitised.

Run: ``python benchmarks/data/digitise_flashsigmoid_fig.py FIG.png > flashsigmoid_h100_fwd_ms.csv``
(the figure is not vendored; obtain it with ``git show 9273b49:figures/...png``). Requires
numpy, scipy and Pillow (not project dependencies).
"""

from __future__ import annotations

import sys

import numpy as np


def _load(path):
    from PIL import Image

    return np.array(Image.open(path).convert("RGB")).astype(int)


def _tick_centres(profile, offset):
    idx = np.where(profile > 0)[0]
    groups, cur = [], [idx[0]]
    for i in idx[1:]:
        if i == cur[-1] + 1:
            cur.append(i)
        else:
            groups.append(cur)
            cur = [i]
    groups.append(cur)
    return [offset + sum(i * profile[i] for i in g) / sum(profile[i] for i in g) for g in groups]


def calibrate(im):
    g = im.sum(2)
    dark = (765 - g).clip(0)
    # frame: rows 14 and 793, columns 124 and 1170 (the only full-length dark lines)
    xd = dark[796:800, 124:1171].mean(0)
    xd[xd < 50] = 0
    yd = dark[15:793, 118:123].mean(1)
    yd[yd < 50] = 0
    xt = _tick_centres(xd, 124)
    yt = _tick_centres(yd, 15)
    xv = np.arange(len(xt)) * 10000.0
    yv = np.arange(len(yt))[::-1] * 250.0
    ax = np.polyfit(xt, xv, 1)
    ay = np.polyfit(yt, yv, 1)
    return ax, ay, float(np.abs(np.polyval(ax, xt) - xv).max() / abs(ax[0])), float(
        np.abs(np.polyval(ay, yt) - yv).max() / abs(ay[0]))


def masks(im):
    r, g, b = im[..., 0], im[..., 1], im[..., 2]
    inside = np.zeros(r.shape, bool)
    inside[16:792, 126:1169] = True
    legend = np.zeros_like(inside)
    legend[25:240, 135:675] = True
    blue = (b > r + 60) & (b > 150) & inside & ~legend
    black = (im.sum(2) < 300) & ~(b > r + 60) & inside & ~legend
    ink = (im.sum(2) < 600) & inside & ~legend     # any marker or line, anti-aliased edges too
    return black, blue, ink


def peaks(mask, thr):
    from scipy import ndimage as ndi

    dt = ndi.distance_transform_edt(mask)
    pk = (dt == ndi.maximum_filter(dt, size=5)) & (dt >= thr)
    lab, n = ndi.label(pk)
    raw = []
    for k in range(1, n + 1):
        ys, xs = np.where(lab == k)
        raw.append((xs.mean(), ys.mean(), dt[ys[0], xs[0]]))
    # merge peaks closer than 3 px (one marker's plateau split by anti-aliasing)
    raw.sort(key=lambda p: -p[2])
    kept = []
    for p in raw:
        if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 > 9 for q in kept):
            kept.append(p)
    out = []
    for x, y, d in kept:
        x0, y0 = int(round(x)), int(round(y))
        win = dt[y0 - 2:y0 + 3, x0 - 2:x0 + 3]
        w = np.where(win >= d - 1.0, win - (d - 1.0), 0.0)
        yy, xx = np.mgrid[y0 - 2:y0 + 3, x0 - 2:x0 + 3]
        out.append((float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum()), float(d)))
    return out


def triangle_offset(blue, tri):
    offs = []
    for x, y, _ in tri:
        xc, yc = int(round(x)), int(round(y))
        col = blue[:, xc]
        t = b = yc
        while col[t - 1]:
            t -= 1
        while col[b + 1]:
            b += 1
        if 14 <= b - t + 1 <= 17:      # isolated marker: no line or neighbour extends the run
            offs.append((t + b) / 2 - y)
    return float(np.median(offs)), len(offs)


def digitise(path):
    im = _load(path)
    ax, ay, xres, yres = calibrate(im)
    black, blue, ink = masks(im)
    # circles: distance-transform peaks of all ink (triangles drawn later may cover part of a
    # circle); a circle's inscribed radius is 6.3-7.3 px, a triangle's 5.0-5.4 px
    tri = peaks(blue, 4.5)
    circ = [p for p in peaks(ink, 6.0) if p[2] < 7.8
            and all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 > 16 for q in tri)]
    toff, ntri = triangle_offset(blue, tri)
    tok = lambda x: float(np.polyval(ax, x))
    ms = lambda y: float(np.polyval(ay, y))
    series = {}
    for name, pts, off in (("fa2", circ, 0.0), ("flashsigmoid", tri, toff)):
        for x, y, _ in pts:
            t, m = tok(x), ms(y + off)
            if t < 14000:
                continue            # markers of all four curves overlap near 0 ms: not digitised
            # Full or Causal: time / tokens^2 is ~3e-7 ms for Full, ~1.5e-7 for Causal
            kind = "full" if m / t ** 2 > 2.2e-7 else "causal"
            series.setdefault(f"{name}_{kind}", []).append((t, m))
    keys = ("fa2_full", "flashsigmoid_full", "fa2_causal", "flashsigmoid_causal")
    allt = sorted(t for k in keys for t, _ in series[k])
    clusters, cur = [], [allt[0]]
    for t in allt[1:]:
        if t - cur[-1] <= 120:      # 1.5 px
            cur.append(t)
        else:
            clusters.append(cur)
            cur = [t]
    clusters.append(cur)
    rows = []
    for c in clusters:
        own = sum(any(abs(t - u) <= 1e-9 for u in c) for k in keys for t, _ in series[k])
        if own < 3:
            continue                # a lone merged marker of one series, not a token position
        row = {"tokens": float(np.mean(c))}
        for k in keys:
            near = [(abs(t - row["tokens"]), m) for t, m in series[k] if abs(t - row["tokens"]) <= 200]
            row[k] = min(near)[1] if near else float("nan")
        rows.append(row)
    meta = dict(tokens_per_px=abs(ax[0]), ms_per_px=abs(ay[0]), tick_residual_px=max(xres, yres),
                triangle_offset_px=toff, isolated_triangles=ntri)
    return rows, meta


def main(argv):
    rows, meta = digitise(argv[1])
    print("# " + ", ".join(f"{k}={v:.4g}" for k, v in meta.items()))
    print("tokens,fa2_full_ms,flashsigmoid_full_ms,fa2_causal_ms,flashsigmoid_causal_ms")
    for r in rows:
        print("%.0f,%.1f,%.1f,%.1f,%.1f" % (r["tokens"], r["fa2_full"], r["flashsigmoid_full"],
                                            r["fa2_causal"], r["flashsigmoid_causal"]))


if __name__ == "__main__":
    main(sys.argv)
