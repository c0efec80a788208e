"""Bar charts as inline SVG, drawn on the server: no JavaScript, no CDN, allowed by the page's CSP.

Colours are SVG presentation attributes (not ``style``), so ``style-src 'self'`` holds.
Every label is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

ROW_H = 26
LABEL_W = 170
BAR_W = 360
VALUE_W = 150


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    total: float  # the whole (light bar)
    part: float  # the part achieved (dark bar over it)
    text: str  # printed at the end of the bar


def bar_chart(title: str, bars: Sequence[Bar]) -> Markup:
    """A horizontal bar chart: one row per bar, the part drawn over the total."""
    width = LABEL_W + BAR_W + VALUE_W
    height = ROW_H * max(len(bars), 1) + 8
    top = max((b.total for b in bars), default=0) or 1
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    if not bars:
        out.append(f'<text x="4" y="18" font-size="13" fill="#555">{escape("Chưa có số liệu.")}</text>')
    for n, b in enumerate(bars):
        y = 4 + n * ROW_H
        full = BAR_W * b.total / top
        done = BAR_W * min(b.part, b.total) / top if b.total else 0
        out.append(
            f'<text x="{LABEL_W - 6}" y="{y + 16}" font-size="13" text-anchor="end" fill="#1a1a1a">'
            f"{escape(b.label)}</text>"
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{full:.1f}" height="{ROW_H - 8}" fill="#c9d9ec"/>'
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{done:.1f}" height="{ROW_H - 8}" fill="#235a97"/>'
            f'<text x="{LABEL_W + full + 6:.1f}" y="{y + 16}" font-size="12" fill="#1a1a1a">{escape(b.text)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def count_chart(pairs: Sequence[tuple[str, int]], *, title: str) -> Markup:
    """A bar chart of plain counts: (label, count), the count written at each bar's end."""
    return bar_chart(title, [Bar(label, n, n, str(n)) for label, n in pairs])
