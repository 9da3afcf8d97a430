"""Charts as inline SVG drawn on the server: no script, no library, printable, and readable at 360 px
(the drawing is 360 units wide, so on a phone one unit is about one pixel and the text stays
legible; on a desktop it grows up to the width CSS allows). Every bar is a link to the list behind
it and carries its number as text, so nothing depends on reading a bar's length."""

import itertools

from markupsafe import Markup, escape

WIDTH = 360
BAR = "#2e7d32"
MUTED = "#555"
_ids = itertools.count(1)


def _head(height, title, desc):
    n = next(_ids)
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" '
            f'preserveAspectRatio="xMinYMin meet" aria-labelledby="chart{n}t chart{n}d" '
            f'xmlns="http://www.w3.org/2000/svg">'
            f'<title id="chart{n}t">{escape(title)}</title><desc id="chart{n}d">{escape(desc)}</desc>')


def _fmt(value):
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:g}"
    return str(value)


def columns(points, title, desc):
    """Vertical bars, e.g. visits per week: points = [(short label, value, href, long label)]."""
    top, bottom, height = 22, 34, 200
    plot = height - top - bottom
    biggest = max((p[1] for p in points), default=0) or 1
    step = (WIDTH - 8) / max(len(points), 1)
    parts = [_head(height, title, desc),
             f'<line x1="4" y1="{top + plot}" x2="{WIDTH - 4}" y2="{top + plot}" stroke="{MUTED}"/>']
    every = 2 if step < 36 else 1  # dates under every other bar when they would touch
    for i, (short, value, href, long_label) in enumerate(points):
        x = 4 + i * step
        h = plot * value / biggest
        y = top + plot - h
        cx = x + step / 2
        parts.append(f'<a href="{escape(href)}" aria-label="{escape(long_label)}: {_fmt(value)}">'
                     f'<rect x="{x + 3:.1f}" y="{y:.1f}" width="{step - 6:.1f}" height="{max(h, 1):.1f}" '
                     f'fill="{BAR}"/>'
                     f'<text x="{cx:.1f}" y="{y - 4:.1f}" font-size="13" text-anchor="middle" '
                     f'fill="#1a1a1a">{_fmt(value)}</text></a>')
        if (len(points) - 1 - i) % every == 0:
            parts.append(f'<text x="{cx:.1f}" y="{top + plot + 16}" font-size="12" '
                         f'text-anchor="middle" fill="{MUTED}">{escape(short)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bars(rows, title, desc, *, label_width=118):
    """Horizontal bars, one row each, e.g. the PV funnel or a bar per village:
    rows = [(label, value, href)]."""
    row_h, top = 30, 6
    height = top * 2 + row_h * max(len(rows), 1)
    biggest = max((r[1] for r in rows), default=0) or 1
    span = WIDTH - label_width - 52
    parts = [_head(height, title, desc)]
    for i, (text, value, href) in enumerate(rows):
        y = top + i * row_h
        w = span * value / biggest
        shown = text if len(text) <= 9 else text[:8] + "…"
        parts.append(f'<a href="{escape(href)}" aria-label="{escape(text)}: {_fmt(value)}">'
                     f'<text x="{label_width - 6}" y="{y + 20}" font-size="14" text-anchor="end" '
                     f'fill="#1a1a1a">{escape(shown)}</text>'
                     f'<rect x="{label_width}" y="{y + 5}" width="{max(w, 1):.1f}" height="{row_h - 10}" '
                     f'fill="{BAR}"/>'
                     f'<text x="{label_width + max(w, 1) + 5:.1f}" y="{y + 20}" font-size="14" '
                     f'fill="#1a1a1a">{_fmt(value)}</text></a>')
    if not rows:
        parts.append(f'<text x="8" y="26" font-size="13" fill="{MUTED}">—</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
