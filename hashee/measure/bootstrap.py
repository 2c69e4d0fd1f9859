"""Bootstrap confidence intervals over test instances (docs/uncertainty.md).

One resampling per task, shared by every run of the task: replicate b draws n test instances with
replacement (positions into the test set sorted by `index`), from a generator seeded by (seed,
task name). Every run, sweep point and seed of a task sees the same replicates, so differences
between methods (a point vs the reference curve, HashEE vs the static model) are paired.

Per replicate and sweep point we store the task metric (×100, `hashee.core.metrics`' definitions)
and the mean MFLOPs per instance. The MFLOPs are resampled from the per-instance FLOPs that
`evaluate_trained` writes (predictions/flops.tsv); predictions dirs written before that file
existed keep the point's mean MFLOPs in every replicate (`flops_resampled` False).

Intervals are percentile intervals (95 % by default) of the replicate values. The ELUE score's
interval scores each replicate (`score_replicates`): the replicate perf and MFLOPs of the chosen
points against the reference curve of the same replicate when the reference points are our own
runs (measured reference), else against the fixed published curve.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hashee.core.errors import HasheeError
from hashee.core.io import atomic_path
from hashee.core.tasks import TASKS, TaskSpec, get_task

REPLICATES = 1000
SEED = 2022
LEVEL = 0.95
FLOPS_FILE = "flops.tsv"  # beside pointNN.tsv: index, then one column of FLOPs per point file
POINTS_FILE = "points.json"


def replicate_indices(task: str, n: int, replicates: int = REPLICATES, seed: int = SEED) -> np.ndarray:
    """(replicates, n) positions into the task's test set sorted by `index`: the same for every run
    of the task (seeded by `seed` and the task name), so replicates pair across methods."""
    rng = np.random.default_rng([seed, zlib.crc32(task.encode())])
    return rng.integers(0, n, size=(replicates, n), dtype=np.int32 if n < 2**31 else np.int64)


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r per row; 0 where a row is constant (hashee.core.metrics scores undefined as 0)."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / den
    # A constant row gives 0/0 (or, with a rounded mean, r of order 1e-16): 0 either way.
    return np.where(np.isfinite(r), r, 0.0)


def _rowwise_ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values, axis=1)  # average ranks for ties, as scipy's spearmanr


def replicate_metric(task: TaskSpec, predictions: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The task metric ×100 on each replicate (rows of `indices`), vectorised; row b equals
    `compute_metric(task, predictions[indices[b]], labels[indices[b]])`."""
    if task.metric == "acc":
        return 100.0 * (predictions == labels).astype(np.float64)[indices].mean(axis=1)
    if task.metric == "acc_f1":
        acc = (predictions == labels).astype(np.float64)[indices].mean(axis=1)
        tp = ((predictions == 1) & (labels == 1)).astype(np.float64)[indices].sum(axis=1)
        fp = ((predictions == 1) & (labels != 1)).astype(np.float64)[indices].sum(axis=1)
        fn = ((predictions != 1) & (labels == 1)).astype(np.float64)[indices].sum(axis=1)
        den = 2 * tp + fp + fn
        f1 = np.divide(2 * tp, den, out=np.zeros_like(den), where=den > 0)  # sklearn's zero_division=0
        return 100.0 * (acc + f1) / 2
    if task.metric == "pearson_spearman":
        x, y = predictions.astype(np.float64)[indices], labels.astype(np.float64)[indices]
        pearson = _rowwise_pearson(x, y)
        spearman = _rowwise_pearson(_rowwise_ranks(x), _rowwise_ranks(y))
        return 100.0 * (pearson + spearman) / 2
    raise HasheeError(f"{task.name}: no bootstrap for metric {task.metric!r}")


@dataclass
class Bootstrap:
    """Replicates of every (task, method, setting, seed) test point: `keys` (one row each), `perf`
    and `mflops` of shape (points, replicates), `flops_resampled` per point."""

    keys: pd.DataFrame
    perf: np.ndarray
    mflops: np.ndarray
    flops_resampled: np.ndarray
    replicates: int = REPLICATES
    seed: int = SEED
    source: str = "bootstrap"
    _rows: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.keys = self.keys.reset_index(drop=True)
        self._rows = {}
        for i, (task, method, setting) in enumerate(zip(self.keys["task"], self.keys["method"], self.keys["setting"])):
            self._rows.setdefault((task, method, setting), []).append(i)

    def seed_mean(self, task: str, method: str, setting: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(perf, mflops) replicates of the seed-mean point, or None when not bootstrapped. Seeds share
        the task's replicates, so the mean is taken replicate by replicate."""
        rows = self._rows.get((task, method, setting))
        if not rows:
            return None
        return self.perf[rows].mean(axis=0), self.mflops[rows].mean(axis=0)

    def all_flops_resampled(self) -> bool:
        return bool(self.flops_resampled.all())

    def save(self, path) -> None:
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, task=self.keys["task"].to_numpy(str), method=self.keys["method"].to_numpy(str),
                                setting=self.keys["setting"].to_numpy(str), seed=self.keys["seed"].to_numpy(np.int64),
                                perf=self.perf.astype(np.float32), mflops=self.mflops.astype(np.float32),
                                flops_resampled=self.flops_resampled, meta=np.array([self.replicates, self.seed]))


def load_bootstrap(path) -> Bootstrap:
    path = Path(path)
    if not path.is_file():
        raise HasheeError(f"{path}: bootstrap file not found (written by `hashee bootstrap`)")
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = pd.DataFrame({k: data[k] for k in ("task", "method", "setting", "seed")})
            perf, mflops = data["perf"].astype(np.float64), data["mflops"].astype(np.float64)
            resampled, (replicates, seed) = data["flops_resampled"], data["meta"]
    except (OSError, ValueError, KeyError) as err:
        raise HasheeError(f"{path}: not a bootstrap file of `hashee bootstrap` ({err})") from None
    return Bootstrap(keys, perf, mflops, resampled, int(replicates), int(seed), str(path))


def _read_rows_meta(pred_dir: Path) -> tuple[str, str, int, dict[str, float]]:
    """(task, method, seed, setting -> test mflops) from the rows.csv beside a predictions dir."""
    from hashee.measure.results import read_runs

    rows_file = pred_dir.parent / "rows.csv"
    rows = read_runs(rows_file)
    if rows.empty:
        raise HasheeError(f"{rows_file}: no result rows")
    first = rows.iloc[0]
    test = rows[rows["split"] == "test"]
    return str(first["task"]), str(first["method"]), int(first["seed"]), dict(zip(test["setting"], test["mflops"]))


def _read_points(pred_dir: Path) -> dict[str, str]:
    path = pred_dir / POINTS_FILE
    if not path.is_file():
        raise HasheeError(f"{pred_dir}: not a predictions dir of `hashee evaluate --predictions` (no {POINTS_FILE})")
    try:
        return {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    except (ValueError, AttributeError) as err:
        raise HasheeError(f"{path}: expected a JSON object point file -> setting ({err})") from None


def _aligned(frame: pd.DataFrame, column: str, order: np.ndarray, path: Path) -> np.ndarray:
    """`column` of `frame` in the order of the test indices `order`; every index exactly once."""
    if "index" not in frame.columns or column not in frame.columns:
        raise HasheeError(f"{path}:1: expected columns index and {column}")
    series = frame.set_index("index")[column]
    if series.index.duplicated().any() or len(series) != len(order) or not series.index.isin(order).all():
        raise HasheeError(f"{path}: its {len(series)} indices are not the {len(order)} labelled test indices of the task")
    return series.loc[order].to_numpy()


def bootstrap_predictions(pred_dirs, data_dir, *, replicates: int = REPLICATES, seed: int = SEED,
                          test_labels: dict | None = None) -> Bootstrap:
    """Bootstrap every test point of the given predictions dirs (`hashee evaluate --predictions`,
    with rows.csv beside them) against the labelled test sets under `data_dir`
    (<TASK>/test_full.tsv; `test_labels`: task -> {index: label} instead). Tasks without test labels
    are skipped (ELUE's test labels are private)."""
    from hashee.core.data import task_file
    from hashee.measure.evaluation import labelled_test_file, labels_by_test_index

    if replicates < 1:
        raise HasheeError(f"bootstrap: replicates must be positive, got {replicates}")
    gold_cache, index_cache = dict(test_labels or {}), {}
    keys, perf, mflops, resampled = [], [], [], []
    for pred_dir in map(Path, pred_dirs):
        task_name, method, run_seed, test_mflops = _read_rows_meta(pred_dir)
        task = get_task(task_name)
        if task_name not in gold_cache:
            labels_file = labelled_test_file(data_dir, task)
            gold_cache[task_name] = None if labels_file is None else \
                labels_by_test_index(task, task_file(data_dir, task_name, "test"), labels_file)
        gold = gold_cache[task_name]
        if gold is None:
            continue
        if task_name not in index_cache:
            order = np.array(sorted(gold), dtype=np.int64)
            labels = np.array([gold[i] for i in order], dtype=np.float64 if task.is_regression else np.int64)
            index_cache[task_name] = (order, labels, replicate_indices(task_name, len(order), replicates, seed))
        order, labels, indices = index_cache[task_name]
        flops_path = pred_dir / FLOPS_FILE
        flops = pd.read_csv(flops_path, sep="\t") if flops_path.is_file() else None
        for name, setting in sorted(_read_points(pred_dir).items()):
            path = pred_dir / name
            if not path.is_file():
                raise HasheeError(f"{path}: prediction file listed in {POINTS_FILE} not found")
            frame = pd.read_csv(path, sep="\t", usecols=["index", "pred"])
            preds = _aligned(frame, "pred", order, path)
            if not task.is_regression:
                preds = preds.astype(np.int64)
            perf.append(replicate_metric(task, preds, labels, indices))
            point = Path(name).stem
            if flops is not None:
                per_instance = _aligned(flops, point, order, flops_path).astype(np.float64)
                mflops.append(per_instance[indices].mean(axis=1) / 1e6)
                resampled.append(True)
            else:
                if setting not in test_mflops:
                    raise HasheeError(f"{pred_dir.parent / 'rows.csv'}: no test row for setting {setting!r} of {path}")
                mflops.append(np.full(replicates, float(test_mflops[setting])))
                resampled.append(False)
            keys.append({"task": task_name, "method": method, "setting": setting, "seed": run_seed})
    if not keys:
        return Bootstrap(pd.DataFrame(columns=["task", "method", "setting", "seed"]), np.zeros((0, replicates)),
                         np.zeros((0, replicates)), np.zeros(0, bool), replicates, seed)
    return Bootstrap(pd.DataFrame(keys), np.vstack(perf), np.vstack(mflops), np.array(resampled), replicates, seed)


def interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of replicate values."""
    if not 0 < level < 1:
        raise HasheeError(f"bootstrap: confidence level must lie in (0, 1), got {level}")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def curve_replicates(knots_mflops: np.ndarray, knots_perf: np.ndarray, mflops: np.ndarray,
                     beyond: str = "extend") -> np.ndarray:
    """p_EB per replicate: the piecewise-linear curve through row b's knots (shape (B, K)) at
    `mflops[b]`. 'extend' extends the end segments; 'clamp' and 'error' hold the end values (a
    replicate may stray just past the range the point estimate lies in)."""
    order = np.argsort(knots_mflops, axis=1, kind="stable")
    x = np.take_along_axis(knots_mflops, order, axis=1)
    y = np.take_along_axis(knots_perf, order, axis=1)
    if x.shape[1] == 1:
        return y[:, 0].copy()
    f = mflops if beyond == "extend" else np.clip(mflops, x[:, 0], x[:, -1])
    segment = np.clip((x <= f[:, None]).sum(axis=1) - 1, 0, x.shape[1] - 2)
    rows = np.arange(len(f))
    x0, x1 = x[rows, segment], x[rows, segment + 1]
    y0, y1 = y[rows, segment], y[rows, segment + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(x1 > x0, (y1 - y0) / (x1 - x0), 0.0)
    return y0 + slope * (f - x0)


def reference_replicates(ref: pd.DataFrame, boot: Bootstrap, runs_points: pd.DataFrame) -> dict[str, tuple]:
    """Per task: the reference knots as (B, K) arrays (mflops, perf) and whether they are paired.

    A reference knot is paired when it is one of our own seed-mean test points (`runs_points`: task,
    method, setting, perf, mflops) with replicates: then the curve is resampled with the same
    instances as the points scored against it. Otherwise (a published curve) the knots are fixed."""
    from hashee.measure.score import reference_curve

    out = {}
    for task in dict.fromkeys(ref["task"]):
        curve = reference_curve(ref, task)
        xs, ys, paired = [], [], True
        mine = runs_points[runs_points["task"] == task]
        for fk, pk in zip(curve.mflops, curve.perf):
            hit = mine[np.isclose(mine["mflops"], fk, rtol=1e-9, atol=1e-6)
                       & np.isclose(mine["perf"], pk, rtol=1e-9, atol=1e-6)]
            reps = None if hit.empty else boot.seed_mean(task, hit["method"].iloc[0], hit["setting"].iloc[0])
            if reps is None:
                paired = False
                break
            ys.append(reps[0])
            xs.append(reps[1])
        if not paired:
            xs = [np.full(boot.replicates, v) for v in curve.mflops]
            ys = [np.full(boot.replicates, v) for v in curve.perf]
        out[task] = (np.stack(xs, axis=1), np.stack(ys, axis=1), paired)
    return out


def gap_replicates(task: str, perf: np.ndarray, mflops: np.ndarray, ref_reps: dict, beyond: str) -> np.ndarray:
    """perf − p_EB(mflops) per replicate."""
    knots_x, knots_y, _ = ref_reps[task]
    return perf - curve_replicates(knots_x, knots_y, mflops, beyond)


def score_replicates(points: list[tuple[str, np.ndarray, np.ndarray]], ref_reps: dict, beyond: str) -> np.ndarray:
    """ELUE score per replicate (unrounded): mean over tasks of the mean gap of that task's points;
    `points`: (task, perf replicates, mflops replicates)."""
    by_task: dict[str, list[np.ndarray]] = {}
    for task, perf, mflops in points:
        by_task.setdefault(task, []).append(gap_replicates(task, perf, mflops, ref_reps, beyond))
    order = [t for t in TASKS if t in by_task] + [t for t in by_task if t not in TASKS]
    return np.mean([np.mean(by_task[t], axis=0) for t in order], axis=0)


def write_bootstrap(pred_dirs, data_dir, out, *, replicates: int = REPLICATES, seed: int = SEED) -> Bootstrap:
    boot = bootstrap_predictions(pred_dirs, data_dir, replicates=replicates, seed=seed)
    boot.save(out)
    return boot


__all__ = ["FLOPS_FILE", "LEVEL", "REPLICATES", "SEED", "Bootstrap", "bootstrap_predictions", "curve_replicates",
           "gap_replicates", "interval", "load_bootstrap", "reference_replicates", "replicate_indices",
           "replicate_metric", "score_replicates", "write_bootstrap"]
