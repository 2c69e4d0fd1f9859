"""ELUE score (docs/elue.md, "ELUE score").

score = mean over tasks of mean over that task's points of [p_i − p_EB(f_i)], rounded to 2
decimals, where p_EB is the piecewise-linear curve through the reference model's static points
(ElasticBERT truncated to 1..n layers) in the (MFLOPs, perf) plane.

Decisions:
- The curve goes through every reference point in MFLOPs order (not a Pareto hull): that is the
  leaderboard's definition, and it makes every reference point score exactly 0.
- Points sharing an MFLOPs value are averaged: they are repeated measurements (seeds) of one
  truncation depth, and keeping the best would bias the reference upwards.
- Outside the curve's FLOPs range the official rule is undocumented, so the policy is explicit:
  "extend" (linear extension of the end segment, default), "clamp" (end point's perf) or
  "error"; `describe_policy` gives the sentence printed under every table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.io import write_csv_atomic
from hashee.core.settings import backbone_label
from hashee.core.tasks import TASKS
from hashee.measure.results import load_paper, parse_setting, read_csv_checked, read_runs

REFERENCE_COLUMNS = ["task", "layers", "perf", "mflops", "provenance"]
POLICIES = ("extend", "clamp", "error")
_POINT_COLUMNS = ("task", "perf", "mflops")


def _source(ref: pd.DataFrame) -> str:
    return ref.attrs.get("source", "reference")


def check_reference(ref: pd.DataFrame, tasks=None) -> None:
    """Raise naming the reference's file and what it lacks (columns, then tasks)."""
    missing = [c for c in REFERENCE_COLUMNS if c not in ref.columns]
    if missing:
        raise HasheeError(f"{_source(ref)}: reference is missing column(s) {', '.join(missing)}")
    if tasks is not None:
        have = set(ref["task"])
        lacking = [t for t in tasks if t not in have]
        if lacking:
            raise HasheeError(f"{_source(ref)}: reference has no points for task(s) {', '.join(lacking)}"
                              f" (it covers: {', '.join(sorted(have)) or 'none'})")


def read_reference(path, tasks=None) -> pd.DataFrame:
    """Reference points: task, layers, perf, mflops, provenance (one row per task and depth)."""
    ref = read_csv_checked(path, REFERENCE_COLUMNS, "reference", floats=("perf", "mflops"), ints=("layers",))
    ref.attrs["source"] = str(path)
    bad = ref["mflops"] <= 0
    if bad.any():
        raise HasheeError(f"{path}:{int(bad.to_numpy().argmax()) + 2}: mflops must be positive")
    check_reference(ref, tasks)
    return ref


@dataclass(frozen=True)
class ReferenceCurve:
    """p_EB for one task: knots sorted by MFLOPs (duplicates averaged)."""

    task: str
    mflops: tuple[float, ...]
    perf: tuple[float, ...]
    source: str = "reference"

    def __call__(self, f: float, beyond: str = "extend") -> float:
        _check_policy(beyond)
        x, y = np.asarray(self.mflops), np.asarray(self.perf)
        lo, hi = x[0], x[-1]
        if lo <= f <= hi:
            return float(np.interp(f, x, y))
        if beyond == "error":
            raise HasheeError(f"{self.task}: {f:.3f} MFLOPs lies outside the reference curve's range "
                              f"[{lo:.3f}, {hi:.3f}] ({self.source}); policy 'error' — use 'extend' or 'clamp'")
        if beyond == "clamp":
            return float(y[0] if f < lo else y[-1])
        if len(x) < 2:
            raise HasheeError(f"{self.task}: the reference curve ({self.source}) has a single point, so "
                              f"{f:.3f} MFLOPs cannot be scored by linear extension; use 'clamp'")
        i, j = (0, 1) if f < lo else (-2, -1)
        slope = (y[j] - y[i]) / (x[j] - x[i])
        return float(y[i] + slope * (f - x[i]))


def reference_curve(ref: pd.DataFrame, task: str) -> ReferenceCurve:
    check_reference(ref, [task])
    rows = ref[ref["task"] == task]
    knots = rows.groupby("mflops", sort=True)["perf"].mean()
    return ReferenceCurve(task, tuple(float(v) for v in knots.index), tuple(float(v) for v in knots),
                          _source(ref))


def _check_policy(beyond: str) -> None:
    if beyond not in POLICIES:
        raise unknown_name("out-of-range policy", beyond, POLICIES)


def describe_policy(beyond: str) -> str:
    _check_policy(beyond)
    return {
        "extend": "Outside the reference curve's FLOPs range, p_EB is the linear extension of the "
                  "nearest end segment (policy 'extend').",
        "clamp": "Outside the reference curve's FLOPs range, p_EB is held at the nearest end point's "
                 "performance (policy 'clamp').",
        "error": "Points outside the reference curve's FLOPs range are refused (policy 'error'), so every "
                 "scored point lies within it.",
    }[beyond]


def point_gaps(points: pd.DataFrame, ref: pd.DataFrame, beyond: str = "extend") -> pd.DataFrame:
    """`points` with two columns added: p_eb (the curve at the point's MFLOPs) and gap = perf − p_eb."""
    _check_policy(beyond)
    missing = [c for c in _POINT_COLUMNS if c not in points.columns]
    if missing:
        raise HasheeError(f"ELUE score: points lack column(s) {', '.join(missing)}")
    if points[["perf", "mflops"]].isna().any().any():
        raise HasheeError("ELUE score: a point has no perf or no mflops")
    check_reference(ref, list(dict.fromkeys(points["task"])))
    curves = {t: reference_curve(ref, t) for t in dict.fromkeys(points["task"])}
    p_eb = [curves[t](float(f), beyond) for t, f in zip(points["task"], points["mflops"])]
    out = points.copy()
    out["p_eb"] = np.asarray(p_eb, dtype=float)
    out["gap"] = out["perf"].astype(float) - out["p_eb"]
    return out


def per_task_gaps(points: pd.DataFrame, ref: pd.DataFrame, beyond: str = "extend") -> pd.DataFrame:
    """Per task (task-table order): number of points and mean gap (unrounded)."""
    gaps = point_gaps(points, ref, beyond)
    out = gaps.groupby("task", sort=False)["gap"].agg(n_points="size", gap="mean").reset_index()
    order = {name: i for i, name in enumerate(TASKS)}
    return out.sort_values("task", key=lambda s: s.map(lambda t: order.get(t, len(order))),
                           kind="stable").reset_index(drop=True)


def elue_score(points: pd.DataFrame, ref: pd.DataFrame, beyond: str = "extend") -> float:
    """Mean over tasks of the mean gap of that task's points, rounded to 2 decimals. Tasks weigh
    equally whatever their number of points."""
    if len(points) == 0:
        raise HasheeError("ELUE score: no points to score")
    score = round(float(per_task_gaps(points, ref, beyond)["gap"].mean()), 2)
    return score + 0.0  # turn -0.0 into 0.0


def reference_from_runs(runs_path, method: str | None = None, out=None, provenance: str = "",
                        split: str = "test") -> pd.DataFrame:
    """Reference points measured by this benchmark: `method`'s runs on `split` (default: the registered
    reference method, `is_reference`: the static model), one point per task and `layers` value (seed-mean
    perf at seed-mean MFLOPs). Written atomically to `out` if given. `provenance` defaults to a description
    of what was measured."""
    if method is None:
        from hashee.core.methods import reference_method  # here: the registry imports torch and the baselines

        method = reference_method()
    runs = read_runs(runs_path)
    rows = runs[(runs["method"] == method) & (runs["split"] == split) & runs["perf"].notna()]
    # The curve is the config's backbone's: runs of the backbones experiment (backbone=<label>) are other models.
    rows = rows.loc[rows["setting"].map(lambda s: backbone_label(s) is None).astype(bool)]
    if rows.empty:
        raise HasheeError(f"{runs_path}: no {method!r} runs with {split} perf to build a reference from")
    layers = []
    for setting in rows["setting"]:
        value = parse_setting(setting).get("layers")
        if value is None or not value.isdigit():
            raise HasheeError(f"{runs_path}: {method} setting {setting!r} has no integer layers=N")
        layers.append(int(value))
    rows = rows.assign(layers=layers)
    # Two settings with one depth would be two different curves mixed into one.
    clash = rows.groupby(["task", "layers"])["setting"].nunique()
    if (clash > 1).any():
        task, depth = clash[clash > 1].index[0]
        raise HasheeError(f"{runs_path}: several {method} settings with layers={depth} on {task}; "
                          "keep one per depth")
    ref = rows.groupby(["task", "layers"], sort=False).agg(
        perf=("perf", "mean"), mflops=("mflops", "mean"), n_seeds=("seed", "nunique")).reset_index()
    order = {name: i for i, name in enumerate(TASKS)}
    ref = ref.sort_values(["task", "layers"], key=lambda s: s.map(lambda v: order.get(v, len(order)))
                          if s.name == "task" else s, kind="stable").reset_index(drop=True)
    if not provenance:
        depths = sorted(set(ref["layers"]))
        seeds = sorted(set(rows["seed"]))
        provenance = (f"measured: {method} layers {depths[0]}..{depths[-1]}, {split} split, "
                      f"seeds {' '.join(map(str, seeds))}, from {runs_path}")
    ref = ref.drop(columns="n_seeds").assign(provenance=provenance)[REFERENCE_COLUMNS]
    ref.attrs["source"] = str(out or runs_path)
    if out is not None:
        write_csv_atomic(out, ref)
    return ref


class PaperInconsistency(NamedTuple):
    table_gap: float  # mean over tasks of BERT-3L − ElasticBERT-3L, from the paper's ELUE table
    published_gap: float  # published ELUE score of BERT-3L − that of ElasticBERT-3L


def paper_score_inconsistency() -> PaperInconsistency:
    """The paper's ELUE scores cannot be recomputed from its table rows.

    BERT-3L and ElasticBERT-3L have the same cost (4.0× both, same architecture) and
    ElasticBERT-3L scores 0.00, i.e. lies on the curve; so BERT-3L's score must be the mean of
    the per-task differences, −5.47 — but the published scores differ by −3.70. The leaderboard's
    curve therefore differs from the table's ElasticBERT-3L row: paper scores are quoted, never
    recomputed.
    """
    table = load_paper("elue_test").set_index(["model", "task"])
    scores = load_paper("elue_scores").set_index("model")["elue_score"]
    diff = table.loc["BERT-3L", "perf"] - table.loc["ElasticBERT-3L", "perf"]
    return PaperInconsistency(round(float(diff.mean()), 2),
                              round(float(scores["BERT-3L"] - scores["ElasticBERT-3L"]), 2))


__all__ = ["POLICIES", "REFERENCE_COLUMNS", "PaperInconsistency", "ReferenceCurve", "check_reference",
           "describe_policy", "elue_score", "paper_score_inconsistency", "per_task_gaps", "point_gaps",
           "read_reference", "reference_curve", "reference_from_runs"]
