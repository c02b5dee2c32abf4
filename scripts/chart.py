#!/usr/bin/env python3
"""Draws cost per record across engines from criterion's output, as SVG.

Reads target/criterion/<group>/<bench>/new/estimates.json (the mean; the
Extism row from host/benches/extism/target/criterion) and
the throughput each benchmark declared, and writes benchmarks/cost-per-record.svg.
Run by scripts/compare.sh after both benchmark runs, or alone:

    python3 scripts/chart.py
"""
import json
import math
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"
EXTISM_CRITERION = ROOT / "host" / "benches" / "extism" / "target" / "criterion"
OUT = ROOT / "benchmarks" / "cost-per-record.svg"

ROWS = [
    ("per_record", "native", "native Rust (floor)"),
    ("per_record", "flowgate_batch_4096", "Flowgate, batch 4096"),
    ("per_record", "flowgate_batch_256", "Flowgate, batch 256"),
    ("per_record", "flowgate_batch_16", "Flowgate, batch 16"),
    ("per_record", "flowgate_single", "Flowgate, one per call"),
    ("per_record_peers", "cedar", "Cedar (effect only)"),
    ("per_record_peers", "cedar_from_json", "Cedar, context from JSON"),
    ("per_record_peers", "regorus", "regorus (Rego)"),
    ("extism_vs_flowgate", "extism_single", "Extism, ten plugin calls"),
]


def per_record_ns(group, bench):
    root = EXTISM_CRITERION if group == "extism_vs_flowgate" else CRITERION
    folder = root / group / bench / "new"
    mean = json.loads((folder / "estimates.json").read_text())["mean"]["point_estimate"]
    throughput = json.loads((folder / "benchmark.json").read_text())["throughput"]
    return mean / throughput["Elements"]


def main():
    rows = []
    for group, bench, label in ROWS:
        try:
            rows.append((label, per_record_ns(group, bench)))
        except FileNotFoundError:
            print(f"skipping {group}/{bench}: no criterion output")
    if not rows:
        raise SystemExit("no criterion output: run the benchmarks first")
    width, bar_left, row_height = 900, 230, 34
    height = 70 + row_height * len(rows)
    top = max(ns for _, ns in rows)
    low = min(ns for _, ns in rows) / 3
    scale = (width - bar_left - 130) / (math.log10(top) - math.log10(low))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="14">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="16">Cost per record, ten reference policies (log scale; lower is better)</text>',
    ]
    for i, (label, ns) in enumerate(rows):
        y = 45 + i * row_height
        length = scale * (math.log10(ns) - math.log10(low))
        parts.append(f'<text x="{bar_left - 10}" y="{y + 18}" text-anchor="end">{label}</text>')
        colour = "#2a7ab9" if label.startswith(("Flowgate", "native")) else "#c0504d"
        parts.append(f'<rect x="{bar_left}" y="{y + 4}" width="{length:.1f}" height="20" fill="{colour}"/>')
        text = f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"
        parts.append(f'<text x="{bar_left + length + 8:.1f}" y="{y + 18}">{text}</text>')
    parts.append("</svg>")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(parts) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
