#!/usr/bin/env python3
"""Speculative decoding's speedup against the acceptance rate (SVG), from measured step times:
the cost model S(a, k) = E(a, k) * t_plain / (t_verify(k) + k * t_draft), E(a, k) = (1 - a^(k+1)) / (1 - a)
the tokens a verify step emits when each draft stands with probability a, for the n-gram drafter
(t_draft = 0) at each measured k and the draft model at its k; measured runs as points.
Usage: plot_speculative.py COSTS.json OUT.svg  (docs/data/spec-cost-h100.json's fields)"""
import json
import sys


def tokens_per_step(a, k):
    return k + 1 if a >= 1 else (1 - a ** (k + 1)) / (1 - a)


def main(src, dst):
    c = json.load(open(src))
    t = c["plain_ms"]
    curves = [(f"n-gram, k = {k}", [(a / 100, tokens_per_step(a / 100, int(k)) * t / v) for a in range(101)], color)
              for (k, v), color in zip(sorted(c["verify_ms"].items(), key=lambda kv: int(kv[0])),
                                       ("#8DA0CB", "#66A3D2", "#4C72B0", "#1F3F7A"))]
    k, tv, td = c["draft_k"], c["verify_ms"][str(c["draft_k"])], c["draft_step_ms"]
    curves.append((f"draft model, k = {k}", [(a / 100, tokens_per_step(a / 100, k) * t / (tv + k * td))
                                             for a in range(101)], "#DD8452"))
    width, height, left, right, top, bottom = 760, 420, 60, 240, 40, 360
    ymax = 8.0
    sx = lambda a: left + a * (width - left - right)
    sy = lambda s: bottom - s / ymax * (bottom - top)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="12">', '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{(width - right + left) / 2}" y="22" text-anchor="middle" font-size="14">{c["title"]}</text>']
    for s in range(0, int(ymax) + 1):
        out.append(f'<line x1="{left}" y1="{sy(s)}" x2="{width - right}" y2="{sy(s)}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{sy(s) + 4}" text-anchor="end">{s}x</text>')
    for a in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<text x="{sx(a)}" y="{bottom + 18}" text-anchor="middle">{int(a * 100)}%</text>')
    out.append(f'<line x1="{left}" y1="{sy(1)}" x2="{width - right}" y2="{sy(1)}" stroke="black" stroke-dasharray="4"/>')
    out.append(f'<text x="{(width - right + left) / 2}" y="{bottom + 40}" text-anchor="middle">acceptance rate '
               'of drafts (each draft stands with this probability)</text>')
    out.append(f'<text x="16" y="{(top + bottom) / 2}" transform="rotate(-90 16 {(top + bottom) / 2})" '
               'text-anchor="middle">output tokens/s against plain decoding</text>')
    for i, (name, points, color) in enumerate(curves):
        path = " ".join(f"{'M' if j == 0 else 'L'}{sx(a):.1f},{sy(min(s, ymax)):.1f}" for j, (a, s) in enumerate(points))
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        y = top + 10 + 18 * i
        out.append(f'<line x1="{width - right + 12}" y1="{y}" x2="{width - right + 32}" y2="{y}" stroke="{color}" '
                   'stroke-width="2"/>')
        out.append(f'<text x="{width - right + 38}" y="{y + 4}">{name}</text>')
    for i, m in enumerate(c.get("measured", [])):
        out.append(f'<circle cx="{sx(m["acceptance"]):.1f}" cy="{sy(m["speedup"]):.1f}" r="4" fill="#C44E52"/>')
        y = top + 18 * (len(curves) + 1) + 16 * i
        out.append(f'<circle cx="{width - right + 22}" cy="{y}" r="4" fill="#C44E52"/>')
        out.append(f'<text x="{width - right + 38}" y="{y + 4}" font-size="11">{m["label"]}</text>')
    out.append("</svg>")
    open(dst, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
