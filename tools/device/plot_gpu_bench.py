#!/usr/bin/env python3
"""Bar chart (SVG) of `loom bench --json` GPU runs: each workload's fraction of its limit, with the
issue's target where it sets one. Usage: plot_gpu_bench.py BENCH.json OUT.svg"""
import json
import sys

TARGETS = {"1,128,256": 0.85, "8,2048,1": 0.60, "256,100:1024,100:1024": 0.70}
LABELS = {
    "1,128,256": "batch-1 decode",
    "4,128,128": "4 sequences",
    "8,2048,1": "prefill 8 x 2048",
    "256,100:1024,100:1024": "throughput 256",
    "64,512,128": "64 sequences",
}


def fraction(run):
    # Prefill is compute-bound: its limit is the GEMM rate; the rest are judged by their roofline.
    if run["run"] == "8,2048,1":
        return run["achieved_tflops"] / run["device_gemm_tflops"]
    return run["fraction_of_roofline"]


def main(src, dst):
    runs = json.load(open(src))
    width, height, left, bottom, top = 760, 340, 50, 280, 50
    bar, gap = 70, 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">', '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="14">{runs[0]["device"].split(",")[0]}: '
           'fraction of the limit (bars) and the target (red)</text>']
    scale = bottom - top
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = bottom - tick * scale
        out.append(f'<line x1="{left}" y1="{y}" x2="{width - 20}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{int(tick * 100)}%</text>')
    for i, run in enumerate(runs):
        x = left + gap / 2 + i * (bar + gap)
        f = fraction(run)
        out.append(f'<rect x="{x}" y="{bottom - f * scale:.1f}" width="{bar}" height="{f * scale:.1f}" fill="#4C72B0"/>')
        out.append(f'<text x="{x + bar / 2}" y="{bottom - f * scale - 6:.1f}" text-anchor="middle">{f * 100:.0f}%</text>')
        out.append(f'<text x="{x + bar / 2}" y="{bottom + 18}" text-anchor="middle">{LABELS.get(run["run"], run["run"])}</text>')
        if run["run"] in TARGETS:
            y = bottom - TARGETS[run["run"]] * scale
            out.append(f'<line x1="{x - 8}" y1="{y}" x2="{x + bar + 8}" y2="{y}" stroke="#C44E52" stroke-width="3"/>')
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{width - 20}" y2="{bottom}" stroke="black"/>')
    out.append(f'<text x="{width / 2}" y="{bottom + 44}" text-anchor="middle">prefill: of the measured GEMM rate; '
               'the others: of the roofline (bytes over copy bandwidth, flops over GEMM rate, per step)</text>')
    out.append("</svg>")
    open(dst, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
