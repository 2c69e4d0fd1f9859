"""Label construction of the difficulty study (docs/difficulty.md), kept free of models so it is tested
on small data with known answers.

- Human-defined: every no-majority pair (gold '-') is difficult (1); as many pairs with a majority,
  drawn at random and spread evenly over the three labels, are simple (0); a seeded, balanced
  split gives `test_size` test pairs (half of each) and `train_size` training pairs.
- Model-defined: bit i of an instance's vector is 1 when exit i+1 of the multi-exit model gets it
  right. The predictors predict "wrong" bits (1 - correct), the positive class of the metric.
- Implied exit layer: the first layer whose bit a predictor calls "correct" (an instance would
  exit there); if it calls every layer wrong, the last layer.
"""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np

from hashee.core.errors import HasheeError
from hashee.studies.difficulty.data import NO_MAJORITY, SNLI_LABELS, SnliPair


def human_difficulty_split(pairs: list[SnliPair], train_size: int, test_size: int, seed: int
                           ) -> tuple[list[tuple[SnliPair, int]], list[tuple[SnliPair, int]]]:
    """(train, test) lists of (pair, label), label 1 = difficult (no majority), 0 = simple.

    Both splits are balanced; the simple pairs of each split are spread evenly over the three
    SNLI labels (round-robin over shuffled per-label pools). Deterministic given `seed`.
    """
    if test_size % 2 or train_size % 2:
        raise HasheeError(f"difficulty.human: train_size ({train_size}) and test_size ({test_size}) must be "
                          "even (half difficult, half simple)")
    rng = random.Random(seed)
    difficult = [p for p in pairs if p.gold == NO_MAJORITY]
    needed = (train_size + test_size) // 2
    if len(difficult) < needed:
        raise HasheeError(f"difficulty.human: {len(difficult)} no-majority pairs in the SNLI files, but "
                          f"train_size + test_size = {train_size + test_size} needs {needed}")
    by_label: dict[str, list[SnliPair]] = defaultdict(list)
    for p in pairs:
        if p.gold != NO_MAJORITY:
            by_label[p.gold].append(p)
    for label in SNLI_LABELS:
        rng.shuffle(by_label[label])
    simple = []
    while len(simple) < needed:  # round-robin: the three labels in equal shares
        progressed = False
        for label in SNLI_LABELS:
            if by_label[label] and len(simple) < needed:
                simple.append(by_label[label].pop())
                progressed = True
        if not progressed:
            raise HasheeError(f"difficulty.human: only {len(simple)} pairs with a majority label, need {needed}")
    rng.shuffle(difficult)
    difficult = difficult[:needed]
    half = test_size // 2
    # The simple list alternates labels, so each split's simple share stays spread over them.
    test = [(p, 1) for p in difficult[:half]] + [(p, 0) for p in simple[:half]]
    train = [(p, 1) for p in difficult[half:]] + [(p, 0) for p in simple[half:]]
    rng.shuffle(test)
    rng.shuffle(train)
    return train, test


def split_balanced_dev(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, dev): `fraction` of each label's rows go to dev (at least one each)."""
    rng = random.Random(seed)
    train_idx, dev_idx = [], []
    for value in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == value]
        rng.shuffle(members)
        n_dev = max(1, round(fraction * len(members)))
        dev_idx += members[:n_dev]
        train_idx += members[n_dev:]
    return sorted(train_idx), sorted(dev_idx)


def split_indices(n: int, test_fraction: float | None, dev_fraction: float, seed: int,
                  test_size: int | None = None) -> tuple[list[int], list[int], list[int]]:
    """Seeded (train, dev, test) index lists over n items; test from `test_size` or `test_fraction`,
    dev a fraction of what remains."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_test = test_size if test_size is not None else round(n * (test_fraction or 0))
    if not 0 < n_test < n:
        raise HasheeError(f"difficulty: a test split of {n_test} out of {n} annotated instances is not possible")
    test, rest = order[:n_test], order[n_test:]
    n_dev = max(1, round(len(rest) * dev_fraction))
    if n_dev >= len(rest):
        raise HasheeError(f"difficulty: dev_fraction {dev_fraction} leaves no training instances")
    return sorted(rest[n_dev:]), sorted(rest[:n_dev]), sorted(test)


def correctness(predictions: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per-layer correctness: predictions (..., L) labels per exit, gold (...) -> (..., L) int 0/1."""
    predictions, gold = np.asarray(predictions), np.asarray(gold)
    if predictions.shape[:-1] != gold.shape:
        raise ValueError(f"predictions {predictions.shape} do not match gold {gold.shape} + (layers,)")
    return (predictions == gold[..., None]).astype(np.int64)


def implied_exit_layer(predicted_wrong: np.ndarray) -> np.ndarray:
    """(..., L) 0/1 predicted "wrong" bits -> (...) 1-based exit layer: the first layer predicted
    correct, else the last layer L."""
    predicted_wrong = np.asarray(predicted_wrong).astype(bool)
    num_layers = predicted_wrong.shape[-1]
    correct = ~predicted_wrong
    first = correct.argmax(axis=-1) + 1
    return np.where(correct.any(axis=-1), first, num_layers)


def accuracy_at_exit(exit_layers: np.ndarray, true_correct: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Accuracy of the multi-exit model when each instance (token) exits at `exit_layers` (1-based):
    the mean of its true correctness bit at that layer, over `mask`ed-in positions."""
    exit_layers, true_correct = np.asarray(exit_layers), np.asarray(true_correct)
    chosen = np.take_along_axis(true_correct, (exit_layers - 1)[..., None], axis=-1)[..., 0]
    if mask is not None:
        chosen = chosen[np.asarray(mask).astype(bool)]
    return float(chosen.mean()) if chosen.size else float("nan")
