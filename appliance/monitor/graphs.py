"""History graphs as server-side SVG: drawn on the box, no JavaScript, no CDN (pure)."""

from __future__ import annotations

import time
from xml.sax.saxutils import escape

W, H = 600, 160
PAD_L, PAD_R, PAD_T, PAD_B = 48, 10, 24, 22
MAX_POINTS = 300
# Presentation attributes, not CSS classes: the same SVG works inline and as a file (an <img> gets no page CSS).
COLOURS = ("#0b5cad", "#b35900", "#2e7d32", "#8e24aa", "#c62828", "#00695c")
BANDS = {"good": "#2e7d32", "fair": "#9e9d24", "poor": "#ef6c00", "bad": "#c62828"}
TEXT = 'fill="#222" font-family="sans-serif" font-size="11"'


def _thin(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """At most MAX_POINTS: average neighbouring buckets (the shape survives, the SVG stays small)."""
    if len(points) <= MAX_POINTS:
        return points
    step = -(-len(points) // MAX_POINTS)
    out = []
    for i in range(0, len(points), step):
        chunk = points[i:i + step]
        out.append((chunk[0][0], sum(v for _, v in chunk) / len(chunk)))
    return out


def _fmt_time(ts: float) -> str:
    return time.strftime("%H:%M", time.localtime(ts))


def svg(title: str, series: dict[str, list[tuple[int, float]]], unit: str = "", since: float | None = None,
        until: float | None = None, y_min: float | None = None, y_max: float | None = None,
        bands: list[tuple[float, float, str]] | None = None, no_data: str = "") -> str:
    """One line per series. bands: (from, to, css class) shaded ranges, e.g. the signal classes. no_data: the
    text drawn when there is no point at all (the caller's language; empty: none)."""
    all_pts = [p for pts in series.values() for p in pts]
    t0 = since if since is not None else (min(p[0] for p in all_pts) if all_pts else 0)
    t1 = until if until is not None else (max(p[0] for p in all_pts) if all_pts else t0 + 1)
    if t1 <= t0:
        t1 = t0 + 1
    lo = y_min if y_min is not None else min([p[1] for p in all_pts] + [0])
    hi = y_max if y_max is not None else max([p[1] for p in all_pts] + [1])
    if hi <= lo:
        hi = lo + 1
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def x(t: float) -> float:
        return PAD_L + (t - t0) / (t1 - t0) * iw

    def y(v: float) -> float:
        return PAD_T + ih - (min(max(v, lo), hi) - lo) / (hi - lo) * ih

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
             f'role="img" aria-label="{escape(title)}" class="graph">',
             f'<title>{escape(title)}</title>',
             f'<text x="{PAD_L}" y="15" {TEXT} font-weight="bold">{escape(title)}</text>']
    for b_lo, b_hi, cls in bands or []:
        top, bottom = y(min(b_hi, hi)), y(max(b_lo, lo))
        if bottom > top:
            parts.append(f'<rect x="{PAD_L}" y="{top:.1f}" width="{iw}" height="{bottom - top:.1f}" '
                         f'fill="{BANDS.get(cls, "#999")}" fill-opacity="0.12"/>')
    parts.append(f'<rect x="{PAD_L}" y="{PAD_T}" width="{iw}" height="{ih}" fill="none" stroke="#767676"/>')
    for v in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{PAD_L - 4}" y="{y(v) + 4:.1f}" {TEXT} text-anchor="end">'
                     f'{v:.0f}{escape(unit)}</text>')
    for t in (t0, t1):
        parts.append(f'<text x="{x(t):.1f}" y="{H - 6}" {TEXT} '
                     f'text-anchor="{"start" if t == t0 else "end"}">{_fmt_time(t)}</text>')
    if not all_pts and no_data:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" {TEXT}>{escape(no_data)}</text>')
    for i, (name, pts) in enumerate(series.items()):
        pts = _thin(pts)
        if not pts:
            continue
        d = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        parts.append(f'<polyline points="{d}" fill="none" '
                     f'stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="1.5"><title>{escape(name)}</title>'
                     f'</polyline>')
    parts.append("</svg>")
    return "\n".join(parts)
