"""Draws the load results (TSV: name, req/s, p50, p99) as an SVG bar chart.
Usage: python3 tests/load/plot.py results.tsv docs/benchmarks.svg"""
import sys

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
rows = [(r[0], float(r[1])) for r in rows]
width, bar_h, gap, left = 760, 26, 12, 170
top = 50
height = top + len(rows) * (bar_h + gap) + 30
peak = max(v for _, v in rows)
out = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
    '<rect width="100%" height="100%" fill="white"/>',
    '<text x="20" y="28" font-size="16" font-weight="bold">Gatehouse throughput per endpoint (requests/s; server on one core unless named _2_cores)</text>',
]
for i, (name, v) in enumerate(rows):
    y = top + i * (bar_h + gap)
    w = (width - left - 90) * v / peak
    out.append(f'<text x="{left - 10}" y="{y + bar_h * 0.7}" text-anchor="end">{name}</text>')
    out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#2746d8"/>')
    out.append(f'<text x="{left + w + 6:.1f}" y="{y + bar_h * 0.7}">{v:,.0f}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
