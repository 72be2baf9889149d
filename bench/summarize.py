#!/usr/bin/env python3
"""Summarise several full runs of `mpnet-bench` (their stdout files) into one
Markdown table: for each row, the median over the runs of each run's
median, the ratio of those, and the range of the runs' own ratios.

    target/release/mpnet-bench > run1.txt   # three times, or more
    python3 bench/summarize.py run1.txt run2.txt run3.txt
"""
import re
import statistics
import sys


def rows(path):
    """The rows of the final `## Results` table of one run."""
    text = open(path, encoding="utf-8").read()
    if "## Results" not in text:
        sys.exit(f"{path}: no '## Results' table (did the run finish?)")
    table = text.split("## Results", 1)[1]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 10 or cells[0] in ("scenario", "---") or cells[0].startswith("-"):
            continue
        yield cells


def probes(path):
    """The loopback round-trip probes a run printed (its start and end)."""
    text = open(path, encoding="utf-8").read()
    table = text.split("## Results", 1)[-1]
    return [
        m.group(1) + " " + m.group(2)
        for m in re.finditer(r"^- machine: .*? ([0-9.]+ µs) (at the \w+)$", table, re.M)
    ]


def number(cell):
    m = re.match(r"^-?[0-9.]+", cell.replace(",", ""))
    return float(m.group(0)) if m else None


def fmt(x):
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:.0f}"
    if x >= 100:
        return f"{x:.1f}"
    return f"{x:.2f}"


def main(paths):
    order, runs = [], {}
    for path in paths:
        for c in rows(path):
            scenario, unit, mpnet, m_med, _, peer, p_med, _, ratio, target = c
            key = (scenario, unit, mpnet, peer)
            if key not in runs:
                order.append(key)
                runs[key] = {"m": [], "p": [], "r": [], "target": target}
            for name, cell in (("m", m_med), ("p", p_med)):
                v = number(cell)
                if v is not None:
                    runs[key][name].append(v)
            m, p = number(m_med), number(p_med)
            if m is not None and p:
                runs[key]["r"].append(m / p)
    n = len(paths)
    print(f"| scenario | unit | mpnet | median of {n} runs | peer | median | mpnet/peer | runs' ratios | target |")
    print("|---|---|---|---:|---|---:|---:|---|---|")
    for key in order:
        scenario, unit, mpnet, peer = key
        d = runs[key]
        m = statistics.median(d["m"]) if d["m"] else None
        p = statistics.median(d["p"]) if d["p"] else None
        lower = "lower is better" in d["target"] or "µs" in unit or "allocs" in unit or "RSS" in unit or "ns/" in unit or "bytes" in unit or "s/GiB" in unit
        ratio = f"{m / p:.2f}x" if (m is not None and p) else "-"
        spread = f"{min(d['r']):.2f}–{max(d['r']):.2f}x" if d["r"] else "-"
        if lower and ratio != "-":
            ratio += " (lower is better)"
        print(f"| {scenario} | {unit} | {mpnet} | {fmt(m)} | {peer} | {fmt(p)} | {ratio} | {spread} | {d['target']} |")
    print()
    print("Loopback round-trip probe of each run (BENCHMARKS.md, \"Two regimes\"):")
    for path in paths:
        print(f"- {path}: {', '.join(probes(path)) or 'none printed'}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
