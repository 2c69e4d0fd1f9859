"""Helpers shared by the CLI's verb modules."""

from __future__ import annotations

import argparse
import math

from hashee.core.errors import HasheeError
from hashee.core.progress import DEFAULT_EVERY


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HasheeError(f"--device {name}: no CUDA device is available on this machine")
    return torch.device(name)


def int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def progress_interval(text: str) -> float | None:
    """`--progress-every`: seconds >= 0, or 'off'."""
    if text.strip().lower() == "off":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0 or 'off', got {text!r}")
    return value


def add_training_options(p, *, methods_help: str, backbone: str, batch_size: int, hash_file_help: str,
                         freeze_help: str) -> None:
    """The training flags of `train` (hashee/cli/training.py, both studies) with the verb's defaults (None:
    the verb fills in each study's). The data flags (--task/--dataset, --data-dir, --max-length) are the
    verb's own. --setting may repeat: one process trains each in turn."""
    p.add_argument("--method", required=True, help=methods_help)
    p.add_argument("--setting", action="append", default=None,
                   help="the method's setting, key=value,... (default: its defaults); repeat it to train several "
                        "settings in turn, with {setting} in each path option")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--backbone", default=backbone)
    p.add_argument("--hash-file", default=None, help=hash_file_help)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--warmup", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--freeze-word-embeddings", action="store_true", help=freeze_help)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--workdir", required=True, help="resume checkpoints live here (not an output)")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true", help="no tqdm bar (progress lines are still written)")
    p.add_argument("--progress-every", type=progress_interval, default=DEFAULT_EVERY, metavar="SECONDS",
                   help=f"a progress line on stderr every SECONDS and at each epoch end (default {DEFAULT_EVERY:g}; "
                        "0: after every step; 'off': none)")


def train_params(args, max_length: int, **fields):
    """The trainer's parameters from the flags of `add_training_options` (`fields`: a verb's own)."""
    from hashee.core.training import TrainParams

    return TrainParams(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_length=max_length,
                       warmup=args.warmup, weight_decay=args.weight_decay, clip=args.clip,
                       checkpoint_every=args.checkpoint_every, seed=args.seed, precision=args.precision,
                       freeze_word_embeddings=args.freeze_word_embeddings, **fields)
