"""benchmarks/seed_stability.py's sweeps, per recipe: test perf per task x setting x seed, the spread (max - min) across seeds, collapsed runs
(>= 90 % of test predictions in one class), and the total user CPU seconds.

  .venv/bin/python benchmarks/seed_stability_summary.py [--root DIR] RECIPE...
"""

import argparse
from pathlib import Path

import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--root", type=Path, default=Path("/tmp/stab"))
parser.add_argument("recipes", nargs="+")
args = parser.parse_args()
for recipe in args.recipes:
    frame = pd.read_csv(args.root / recipe / "summary.csv")
    wide = frame.pivot_table(index=["task", "setting"], columns="seed", values="test")
    wide["spread"] = wide.max(axis=1) - wide.min(axis=1)
    collapsed = frame[frame.top_share >= 0.9]
    cpu = frame.drop_duplicates(["task", "method", "seed"]).cpu_s.sum()
    print(f"== {recipe}: mean spread {wide.spread.mean():.1f}, max {wide.spread.max():.1f}, "
          f"collapsed {len(collapsed)}/{len(frame)}, cpu {cpu:.0f} s, runs {len(frame)}")
    print(wide.round(1).to_string())
    if len(collapsed):
        print(collapsed[["task", "setting", "seed", "test", "top_share"]].to_string(index=False))
