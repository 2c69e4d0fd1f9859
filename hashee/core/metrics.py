"""ELUE metrics, all x100: accuracy; MRPC (accuracy + F1 of class 1)/2; STS-B (Pearson + Spearman)/2.

A correlation with a constant side (e.g. a model that predicts one score for every pair) is
undefined (0/0). We score that part 0.0: a constant prediction carries no information about
the ordering of the pairs, 0 is the value of "no association", and a NaN would silently turn
every mean built on it (the task metric, the ELUE score) into NaN.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from hashee.core.errors import HasheeError
from hashee.core.tasks import TaskSpec


def _as_array(values, what: str, task: TaskSpec) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensors
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        array = array.reshape(-1)
    if task.is_regression:
        array = array.astype(float)
        if not np.all(np.isfinite(array)):
            raise HasheeError(f"{task.name}: {what} contain NaN or infinite values")
    else:
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
                raise HasheeError(f"{task.name}: {what} must be class indices, got non-integer values")
        array = array.astype(np.int64)
        if array.size and (array.min() < 0 or array.max() >= task.num_labels):
            raise HasheeError(
                f"{task.name}: {what} must be class indices 0..{task.num_labels - 1} "
                f"(labels -1 mean an unlabeled test split)")
    return array


def _correlation(function, predictions: np.ndarray, labels: np.ndarray) -> float:
    if np.all(predictions == predictions[0]) or np.all(labels == labels[0]):
        return 0.0  # undefined; see the module docstring
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(function(predictions, labels)[0])
    return 0.0 if math.isnan(value) else value


def _accuracy(predictions, labels) -> float:
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def _scipy_stats():
    from scipy import stats

    return stats


def metric_parts(task: TaskSpec, predictions, labels) -> dict[str, float]:
    """The parts the task metric averages, each x100: acc (+ f1 on MRPC) or pearson + spearman."""
    predictions = _as_array(predictions, "predictions", task)
    labels = _as_array(labels, "labels", task)
    if len(predictions) != len(labels):
        raise HasheeError(f"{task.name}: {len(predictions)} predictions for {len(labels)} labels")
    if len(labels) == 0:
        raise HasheeError(f"{task.name}: no predictions to score")
    # scikit-learn and scipy are imported only where needed: each adds ~2 s to a job's start-up, and
    # the workflow runs hundreds of jobs. Plain accuracy is the mean of matches (tests/test_metrics.py
    # checks it against sklearn.metrics.accuracy_score).
    if task.metric == "acc":
        return {"acc": 100.0 * _accuracy(predictions, labels)}
    if task.metric == "acc_f1":
        from sklearn.metrics import f1_score

        return {
            "acc": 100.0 * _accuracy(predictions, labels),
            "f1": 100.0 * f1_score(labels, predictions, pos_label=1, average="binary", zero_division=0),
        }
    if task.metric == "pearson_spearman":
        return {
            "pearson": 100.0 * _correlation(_scipy_stats().pearsonr, predictions, labels),
            "spearman": 100.0 * _correlation(_scipy_stats().spearmanr, predictions, labels),
        }
    raise HasheeError(f"{task.name}: unknown metric {task.metric!r}")


def compute_metric(task: TaskSpec, predictions, labels) -> float:
    """The task's ELUE metric x100 (the mean of `metric_parts`)."""
    parts = metric_parts(task, predictions, labels)
    return float(sum(parts.values()) / len(parts))
