"""Helpers shared by the CLI's verb modules."""

from __future__ import annotations

import argparse

from hashee.core.errors import HasheeError


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

