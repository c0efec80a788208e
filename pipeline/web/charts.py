"""Server-rendered SVG bar charts: no JavaScript, no CDN, every label escaped."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

COLOURS = ("#1b7f4b", "#c0392b", "#2c6fbb", "#b9770e", "#7d3c98", "#117a65", "#566573", "#a04000")


def bar_chart(pairs: list[tuple[str, int]] | tuple[tuple[str, int], ...], *, title: str, width: int = 560) -> Markup:
    """A horizontal bar chart of (label, count), with the count written at each bar's end."""
    rows = list(pairs)
    bar_h, gap, label_w, top = 22, 8, 200, 26
    height = top + max(1, len(rows)) * (bar_h + gap)
    most = max([n for _, n in rows] + [1])
    scale = (width - label_w - 60) / most
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f'<title>{escape(title)}</title><text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    if not rows:
        parts.append(f'<text x="0" y="{top + 15}" font-size="13">Chưa có số liệu</text>')
    for i, (label, n) in enumerate(rows):
        y = top + i * (bar_h + gap)
        short = label if len(label) <= 28 else label[:27] + "…"
        w = max(1.0, n * scale) if n else 0.0
        parts.append(
            f'<text x="0" y="{y + 15}" font-size="13">{escape(short)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{COLOURS[i % len(COLOURS)]}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="13">{n}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
