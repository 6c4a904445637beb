#!/usr/bin/env python3
"""Grouped bars (SVG) of the returning turns' TTFT by history length, one bar per arm (the median
of its requests, whiskers from the fastest to the slowest), from the report.json that
tools/device/offload_bench.sh keeps as returning.json.
Usage: plot_offload_ttft.py REPORT.json OUT.svg TITLE [ARM,ARM,...: the arms shown, in order; all by default]"""
import json
import re
import statistics
import sys

report, out, title = sys.argv[1], sys.argv[2], sys.argv[3]
arms = json.load(open(report))["arms"]
turns = {}  # (arm, history) -> TTFTs of the returning turns
for arm in arms:
    for r in arm["requests"]:
        m = re.match(r"h(\d+)-c\d+-t1#", r["id"])
        if m:
            turns.setdefault((arm["name"], int(m.group(1))), []).append(r["ttft_ms"])
sizes = sorted({h for _, h in turns})
names = sys.argv[4].split(",") if len(sys.argv) > 4 else [a["name"] for a in arms]
colours = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3"]
width, height, left, top, bottom = 760, 360, 70, 50, 300
top_ms = max(max(v) for v in turns.values()) * 1.1
group_w = (width - left - 20) / len(sizes)
bar_w = group_w * 0.8 / len(names)
y = lambda ms: bottom - (bottom - top) * ms / top_ms
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
       '<rect width="100%" height="100%" fill="white"/>',
       f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
       f'<line x1="{left}" y1="{bottom}" x2="{width - 20}" y2="{bottom}" stroke="black"/>',
       f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/>',
       f'<text x="18" y="{(top + bottom) / 2}" transform="rotate(-90 18 {(top + bottom) / 2})" text-anchor="middle">TTFT ms</text>']
step = 10 ** max(0, len(str(int(top_ms))) - 1)
for tick in range(0, int(top_ms) + 1, step if top_ms / step >= 3 else step // 2 or 1):
    svg.append(f'<text x="{left - 6}" y="{y(tick) + 4}" text-anchor="end">{tick}</text>')
    svg.append(f'<line x1="{left}" y1="{y(tick)}" x2="{width - 20}" y2="{y(tick)}" stroke="#ddd"/>')
for g, size in enumerate(sizes):
    x0 = left + g * group_w + group_w * 0.1
    for i, name in enumerate(names):
        v = turns.get((name, size), [])
        if not v:
            continue
        med, x = statistics.median(v), x0 + i * bar_w
        svg.append(f'<rect x="{x:.1f}" y="{y(med):.1f}" width="{bar_w * 0.9:.1f}" height="{bottom - y(med):.1f}" fill="{colours[i % 5]}"/>')
        cx = x + bar_w * 0.45
        svg.append(f'<line x1="{cx:.1f}" y1="{y(min(v)):.1f}" x2="{cx:.1f}" y2="{y(max(v)):.1f}" stroke="black"/>')
        svg.append(f'<text x="{cx:.1f}" y="{y(max(v)) - 4:.1f}" text-anchor="middle" font-size="10">{med:.0f}</text>')
    svg.append(f'<text x="{x0 + group_w * 0.4:.1f}" y="{bottom + 18}" text-anchor="middle">{size} tokens of history</text>')
for i, name in enumerate(names):
    lx = left + 10 + i * (width - left) / len(names)
    svg.append(f'<rect x="{lx:.0f}" y="{bottom + 34}" width="12" height="12" fill="{colours[i % 5]}"/>')
    svg.append(f'<text x="{lx + 18:.0f}" y="{bottom + 44}">{name}</text>')
svg.append("</svg>")
open(out, "w").write("\n".join(svg) + "\n")
