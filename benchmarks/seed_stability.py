"""Seed-stability harness for the demo's training recipe (docs/reproduction.md, "Demo data").

Runs `hashee train` (one process per task x method x seed, the settings in turn, as train.jobs: per_task does)
under /usr/bin/time into ROOT/<recipe>/..., and appends one line per run to ROOT/<recipe>/summary.csv:
task, method, setting, seed, test perf, dev perf, top_share (share of the most-predicted class), the
process's user CPU seconds.

  hashee demo-data /tmp/stab/data/elue --seed 0 --size small
  .venv/bin/python benchmarks/seed_stability.py RECIPE [--tasks ...] [--seeds ...] [--methods ...] \
      [--data DIR] [--root DIR] -- TRAIN OPTIONS (e.g. --epochs 1 --lr 3e-4 --batch-size 8 --warmup 0.1)

A recipe already in summary.csv is skipped per task x method x seed, so an interrupted sweep resumes. Each
run's model and work folder are deleted once its rows are read (--keep-models keeps them).
Run one at a time with OMP_NUM_THREADS=1 (set here), as the workflow's train jobs run.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path("/tmp/stab")  # the default --root
HASHEE = str(Path(sys.executable).with_name("hashee"))
STATIC = ["layers=1", "layers=3", "layers=6"]
HASH = "hash=frequency,layers=6"
TASKS = ["SST-2", "IMDb", "SNLI", "SciTail", "MRPC", "STS-B"]


def timed(cmd: list[str], log: Path) -> float:
    time_file = log.with_suffix(".time")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        subprocess.run(["/usr/bin/time", "-f", "%U", "-o", str(time_file), *cmd], stdout=out, stderr=out,
                       env=env, check=True)
    return float(time_file.read_text().split()[-1])


def hash_file(root: Path, data: Path, task: str, seed: int, max_length: str) -> Path:
    path = root / "hashes" / data.name / task / f"{seed}-{max_length}" / "hash.pt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        timed([HASHEE, "fit-hash", "--task", task, "--data-dir", str(data),
               "--backbone", "minilm", "--setting", HASH, "--setting-out", str(path), "--buckets", "6",
               "--max-length", max_length, "--seed", str(seed)], path.with_suffix(".log"))
    return path


def top_share(pred_dir: Path, task: str) -> float:
    """The share of test predictions in the most-predicted class (the whole model's point): near 1,
    the run stayed at one class. NaN for STS-B (regression)."""
    if task == "STS-B":
        return float("nan")
    last = sorted(pred_dir.glob("point*.tsv"))[-1]
    preds = pd.read_csv(last, sep="\t")["pred"]
    return round(float(preds.value_counts(normalize=True).iloc[0]), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe")
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--methods", nargs="+", default=["static", "hashee"])
    parser.add_argument("--data", type=Path, default=None, help="default ROOT/data/elue")
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--max-length-by-task", default="", help="TASK=N,...")
    parser.add_argument("--keep-models", action="store_true",
                        help="keep each run's saved model and resume checkpoints (~90 MB a run; deleted by default "
                             "once its rows are read: a 3-seed sweep would otherwise keep ~6 GB)")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    root = args.root
    args.data = args.data or root / "data" / "elue"
    train_opts = argv[split + 1:]
    by_task = dict(kv.split("=") for kv in args.max_length_by_task.split(",") if kv)
    out = root / args.recipe
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "summary.csv"
    done = set()
    if summary.exists():
        done = {(r["task"], r["method"], r["seed"]) for r in csv.DictReader(summary.open())}
    for seed in args.seeds:
        for task in args.tasks:
            for method in args.methods:
                if (task, method, str(seed)) in done:
                    continue
                max_length = by_task.get(task, "64")
                run = out / task / method / "{setting}" / str(seed)
                work = out / "work" / task / method / "{setting}" / str(seed)
                cmd = [HASHEE, "train", "--task", task, "--data-dir", str(args.data), "--method", method,
                       "--seed", str(seed), "--backbone", "minilm", "--max-length", max_length,
                       "--freeze-word-embeddings", "--quiet", "--progress-every", "off",
                       "--workdir", str(work),
                       "--out", str(run / "model"), "--evaluate-out", str(run / "rows.csv"),
                       "--predictions", str(run / "predictions"), "--flops-cache", str(root / "flops-cache"),
                       *train_opts]
                settings = STATIC if method == "static" else [HASH]
                for s in settings:
                    cmd += ["--setting", s]
                if method == "hashee":
                    cmd += ["--hash-file", str(hash_file(root, args.data, task, seed, max_length))]
                log = out / f"{task}-{method}-{seed}.log"
                cpu = timed(cmd, log)
                lines = []
                for s in settings:
                    run_dir = Path(str(run).replace("{setting}", s))
                    rows = pd.read_csv(run_dir / "rows.csv")
                    # the sweep's last point: the whole model (static has one point)
                    test = rows[rows.split == "test"].iloc[-1]
                    dev = rows[rows.split == "dev"].iloc[-1]
                    lines.append({"task": task, "method": method, "setting": s, "seed": seed,
                                  "test": round(float(test.perf), 2), "dev": round(float(dev.perf), 2),
                                  "top_share": top_share(run_dir / "predictions", task), "cpu_s": round(cpu, 1)})
                    if not args.keep_models:
                        shutil.rmtree(run_dir / "model", ignore_errors=True)
                        shutil.rmtree(str(work).replace("{setting}", s), ignore_errors=True)
                new = not summary.exists()
                pd.DataFrame(lines).to_csv(summary, mode="a", header=new, index=False)
                print(pd.DataFrame(lines).to_string(index=False, header=False), flush=True)


if __name__ == "__main__":
    main()
