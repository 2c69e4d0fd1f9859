"""What config/paper.yaml costs before a GPU run measures it: jobs per rule family and an estimate of GPU-hours,
from the shell commands of a dry run (docs/paper-run.md, "What the paper run costs").

    snakemake all -n -p --configfile config/paper.yaml > dry.txt      # with the data variables set
    python benchmarks/paper_cost.py dry.txt --tflops 40

Basis of the estimate (an estimate until a GPU run measures it):
- Training FLOPs per token and layer ~ 6 x 12 h^2 (forward + backward through the dense weights) + 12 x L x h
  (attention over L tokens); h and the layers are the hub models' (BERT-base family 768 x 12, DistilBERT 6,
  BART-large 1024 x 12 + 12, CPT-large 1024 x 20 + G-Dec 4), the layers a setting keeps (`layers=N`), every
  input padded to --max-length (an upper bound: batches are padded to their longest input). Evaluation,
  generation, checkpointing and start-up are left out.
- Examples per epoch: TRAIN_SIZES below, the training splits' sizes as the data sets' papers publish them
  (check yours: `wc -l $ELUE_DIR/*/train.tsv`); where this file has none the job is counted, not estimated.
- GPU-hours = FLOPs / (--tflops x 1e12) / 3600: --tflops is the sustained training throughput you expect of your
  GPU (an assumption; fp32/TF32 BERT-base fine-tuning sustains a fraction of the card's peak).
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections import defaultdict

# Training examples per epoch. ELUE (Liu et al. 2021, Table 1) for its six tasks; CNN/DailyMail 3.0.0's train
# split; Reddit TIFU long: 80 % of its ~42k posts with a tldr (docs/summarization.md).
TRAIN_SIZES = {"SST-2": 8544, "IMDb": 20000, "SNLI": 549367, "SciTail": 23596, "MRPC": 3668, "STS-B": 5749,
               "cnndm": 287113, "reddit": int(0.8 * 42139)}
# hub name -> (hidden size, encoder layers, decoder layers)
MODELS = {"fnlp/elasticbert-base": (768, 12, 0), "bert-base-uncased": (768, 12, 0), "bert-base-cased": (768, 12, 0),
          "roberta-base": (768, 12, 0), "albert-base-v2": (768, 12, 0), "distilbert-base-uncased": (768, 6, 0),
          "facebook/bart-large": (1024, 12, 12), "fnlp/bart-large-chinese": (1024, 12, 12),
          "fnlp/cpt-large": (1024, 20, 4)}


# GPU jobs this script does not estimate, and why.
NOT_ESTIMATED = {"difficulty_run": "not estimated (no size basis for OntoNotes here)",
                 "time_models": "not estimated (timing only: minutes per task)"}


def layer_flops(hidden: int, length: int) -> float:
    """Training FLOPs of one token through one transformer layer."""
    return 6 * 12 * hidden**2 + 12 * length * hidden


def options(command: str) -> dict[str, list[str]]:
    words = shlex.split(command)
    found = defaultdict(list)
    for i, word in enumerate(words):
        if word.startswith("--"):
            key, _, value = word[2:].partition("=")
            if not value and i + 1 < len(words) and not words[i + 1].startswith("--"):
                value = words[i + 1]
            found[key].append(value)
    return found


def train_flops(opts: dict[str, list[str]]) -> float | None:
    """Training FLOPs of a `hashee train` job (None: no size basis)."""
    backbone = opts["backbone"][0]
    hidden, enc, dec = MODELS[backbone]
    epochs = float(opts["epochs"][0])
    if "dataset" in opts:  # summarization: encoder over the source, decoder over the target
        size = TRAIN_SIZES.get(opts["dataset"][0])
        if size is None:
            return None
        setting = dict(kv.split("=") for kv in opts["setting"][0].split(",") if "=" in kv)
        enc_layers, dec_layers = int(setting.get("enc_layers", enc)), int(setting.get("dec_layers", dec))
        source, target = int(opts["max-length"][0]), int(opts["max-target-length"][0])
        per_example = source * enc_layers * layer_flops(hidden, source) + target * dec_layers * (
            layer_flops(hidden, target) + 6 * 4 * hidden**2)  # cross-attention's projections
        return size * per_example * epochs
    total = 0.0
    length = int(opts["max-length"][0])
    for task in opts["task"]:
        for setting in opts["setting"]:
            keys = dict(kv.split("=") for kv in setting.split(",") if "=" in kv)
            layers = int(keys.get("layers", enc)) + int(keys.get("small_layers", 0))
            extra = int(keys.get("distill_epochs", 0)) / 3  # FastBERT's self-distillation: forward passes only
            total += TRAIN_SIZES[task] * length * layers * layer_flops(hidden, length) * (epochs + extra)
    return total


def family(rule: str) -> str:
    for prefix in ("train_hashee", "train_static", "fit_backbone_hash", "summ_run"):
        if rule.startswith(prefix):
            return prefix
    return re.sub(r"_layers_.*$", "", rule) if rule.startswith("train_") else rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dry_run", help="output of `snakemake all -n -p --configfile config/paper.yaml`")
    parser.add_argument("--tflops", type=float, default=40.0, help="sustained training TFLOP/s assumed per GPU")
    args = parser.parse_args()
    text = open(args.dry_run).read()
    jobs = defaultdict(int)
    flops = defaultdict(float)
    unknown = defaultdict(int)
    for rule in re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)+", text, re.M):
        jobs[family(rule)] += 1
    for rule, command in re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)+(?:.*\n)*?Shell command: (.*)$", text, re.M):
        if " hashee train " not in command:
            continue
        opts = options(command.split(" -- ", 1)[-1].split(" > ")[0])
        value = train_flops(opts)
        if value is None:
            unknown[family(rule)] += 1
        else:
            flops[family(rule)] += value
    print(f"| rule family | jobs | GPU-hours at {args.tflops:g} TFLOP/s |")
    print("|---|---:|---:|")
    total_h = 0.0
    for name in sorted(jobs, key=lambda n: (-flops.get(n, 0), n)):
        hours = flops[name] / (args.tflops * 1e12) / 3600 if name in flops else None
        total_h += hours or 0
        note = "" if not unknown.get(name) else f" (+{unknown[name]} jobs without a size basis)"
        shown = f"{hours:.1f}{note}" if hours is not None else (
            "no basis" if unknown.get(name) else NOT_ESTIMATED.get(name, "- (CPU job)"))
        print(f"| {name} | {jobs[name]} | {shown} |")
    print(f"| total | {sum(jobs.values())} | {total_h:.1f} (training only) |")


if __name__ == "__main__":
    main()
