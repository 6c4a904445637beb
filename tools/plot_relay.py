#!/usr/bin/env python3
"""Relay attention's speedup over paged attention per workload (SVG bars), with the 1.5x target
and parity marked. Usage: plot_relay.py docs/data/relay-h100.json OUT.svg"""
import json
import sys


def main(src, dst):
    data = json.load(open(src))
    rows = data["rows"]
    width, left, right, top, bar, gap = 760, 250, 80, 50, 26, 12
    height = top + len(rows) * (bar + gap) + 50
    xmax = 2.2
    sx = lambda r: left + r / xmax * (width - left - right)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="12">', '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">Relay attention / paged attention, '
           'output tokens/s</text>',
           f'<text x="{width / 2}" y="38" text-anchor="middle" fill="#555">{data["machine"]}; {data["unit"]}</text>']
    for i, row in enumerate(rows):
        y = top + 10 + i * (bar + gap)
        ratio = row["relay"] / row["paged"]
        color = "#4C72B0" if row["shared"] else "#999999"
        out.append(f'<text x="{left - 8}" y="{y + bar * 0.65}" text-anchor="end">{row["label"]}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{sx(ratio) - left:.1f}" height="{bar}" fill="{color}"/>')
        out.append(f'<text x="{sx(ratio) + 6:.1f}" y="{y + bar * 0.65}">{ratio:.2f}x</text>')
    axis_y = top + 10 + len(rows) * (bar + gap)
    for r, label, dash in ((1.0, "parity", "4,3"), (1.5, "target 1.5x (7B, 2k, 128+)", "2,2")):
        out.append(f'<line x1="{sx(r):.1f}" y1="{top + 4}" x2="{sx(r):.1f}" y2="{axis_y}" stroke="#C44E52" '
                   f'stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{sx(r):.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#C44E52">{label}</text>')
    out.append("</svg>")
    open(dst, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
