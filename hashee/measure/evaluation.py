"""One evaluation path for every method: predictions, metric, per-instance traces and FLOPs.

`evaluate_sweep` runs a method over a split under each of its inference settings (one pass where the
method allows) and returns everything the measurement layer needs; `result_row` makes runs.csv rows;
`evaluate_trained` is the whole of `hashee evaluate` (and of `hashee train --evaluate-out`): a saved
model's rows and test predictions. Timing is a stage of its own (hashee.measure.timing, `hashee time`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from hashee.core.data import comparable_text, load_task, make_loader, read_split, task_file
from hashee.core.errors import HasheeError
from hashee.core.methods import Method, decode
from hashee.core.metrics import compute_metric
from hashee.core.tasks import TaskSpec
from hashee.core.trace import Trace
from hashee.measure.flops import FlopCounter, bert_base_flops


@dataclass
class SplitResult:
    predictions: np.ndarray  # labels (int) or scores (float)
    labels: np.ndarray
    index: np.ndarray
    traces: list[Trace]

    def metric(self, task: TaskSpec) -> float:
        return compute_metric(task, self.predictions, self.labels)


def evaluate_split(method: Method, model, dataset, inference: dict, pad_token_id: int, batch_size: int = 64,
                   device="cpu", progress: bool = False, desc: str = "evaluate") -> SplitResult:
    return evaluate_sweep(method, model, dataset, [inference], pad_token_id, batch_size, device, progress, desc)[0]


@torch.no_grad()
def evaluate_sweep(method: Method, model, dataset, inferences: list[dict], pad_token_id: int, batch_size: int = 64,
                   device="cpu", progress: bool = False, desc: str = "evaluate") -> list[SplitResult]:
    """One SplitResult per inference setting, from `method.predict_sweep` (one pass where it can)."""
    model.eval()
    preds = [[] for _ in inferences]
    traces = [[] for _ in inferences]
    labels, index = [], []
    loader = make_loader(dataset, batch_size, pad_token_id, shuffle=False)
    for batch in tqdm(loader, disable=not progress, desc=desc, leave=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        for point, out in enumerate(method.predict_sweep(model, batch, inferences)):
            preds[point].append(decode(model.task, out.outputs).cpu().numpy())
            traces[point].extend(out.traces)
        labels.append(batch["labels"].cpu().numpy())
        index.append(batch["index"].cpu().numpy())
    labels, index = np.concatenate(labels), np.concatenate(index)
    return [SplitResult(_widened(np.concatenate(p)), labels, index, t) for p, t in zip(preds, traces)]


def _widened(predictions: np.ndarray) -> np.ndarray:
    """Scores as float64 (exact for float32): the metric computes in float64, and the predictions file
    then holds the very values it scored (float32's shortest text parses to a different float64)."""
    return predictions.astype(np.float64) if predictions.dtype.kind == "f" else predictions


def dev_scorer(method: Method, dataset, pad_token_id: int, batch_size: int, device):
    """The trainer's model-selection score: the task metric on dev under the method's first setting."""
    inference = method.inference_settings()[0]

    def score(model) -> float:
        return evaluate_split(method, model, dataset, inference, pad_token_id, batch_size, device).metric(model.task)

    return score


def labels_by_test_index(task: TaskSpec, test_file, labels_file) -> dict[int, int | float]:
    """Gold label per test `index`. The labelled file (train/dev layout, like txsun1997/HashEE's
    test_full.tsv) has no index column: its row i labels test_file's row i, whose `index` need not be i.
    Rows are matched on `comparable_text`: the official labelled files were written with CSV quoting that
    test.tsv lacks (or, where test.tsv is quoted already, a second layer of it)."""
    tests = read_split(task, test_file, split="test")
    labelled = read_split(task, labels_file, split="dev")
    for test, gold in zip(tests, labelled):
        if _pair_text(test) != _pair_text(gold):
            raise HasheeError(f"{labels_file}:{gold.line}: text differs from {test_file}:{test.line}; the labelled "
                              f"file must list the test rows in the same order")
    if len(labelled) != len(tests):
        longer, rows, shorter = ((labels_file, labelled, test_file) if len(labelled) > len(tests)
                                 else (test_file, tests, labels_file))
        raise HasheeError(f"{longer}:{rows[min(len(tests), len(labelled))].line}: a row that {shorter} lacks "
                          f"({len(labelled)} labelled row(s), {len(tests)} test row(s)); the labelled file must "
                          f"list the test rows in the same order")
    return {test.index: gold.label for test, gold in zip(tests, labelled)}


def _pair_text(example) -> tuple[str, str]:
    return comparable_text(example.text_a), comparable_text(example.text_b or "")


def labelled_test_file(data_dir, task: TaskSpec) -> Path | None:
    """`<TASK>/test_full.tsv` (labelled test, as txsun1997/HashEE ships it) when present, else None:
    ELUE's own test labels are private and test perf comes from the leaderboard."""
    path = Path(data_dir) / task.name / "test_full.tsv"
    return path if path.exists() else None


def score_test_labels(task: TaskSpec, result: SplitResult, gold: dict[int, int | float], test_file) -> float:
    """The test metric with labels (`labels_by_test_index`) joined to predictions by `index` (test labels
    are private on ELUE)."""
    try:
        labels = np.array([gold[int(i)] for i in result.index])
    except KeyError as err:
        raise HasheeError(f"{test_file}: no row with index {err.args[0]}, which the predictions carry") from None
    return compute_metric(task, result.predictions, labels)


def cost_summary(counter: FlopCounter, traces: list[Trace], num_labels: int) -> tuple[float, float]:
    """(mean MFLOPs per instance, speed-up vs 12-layer BERT-base on the same lengths)."""
    flops = [counter.trace_flops(t) for t in traces]
    lengths = [t[0].shape[0] for t in traces]  # the first call ('emb') carries the sequence length
    reference = bert_base_flops(lengths, num_labels)
    return float(np.mean(flops)) / 1e6, float(np.sum(reference) / np.sum(flops))


def result_row(task: TaskSpec, method: Method, inference: dict, seed: int, split: str, perf: float,
               mflops: float, speedup: float, n: int, device: str = "") -> dict:
    setting = method.setting_text(inference)
    return {"task": task.name, "method": method.name, "setting": setting, "seed": seed, "split": split,
            "metric": task.metric, "perf": round(perf, 4), "mflops": round(mflops, 4),
            "speedup": round(speedup, 4), "wall_ms": float("nan"), "device": device, "n_instances": n}


@dataclass
class Evaluation:
    """What `evaluate_trained` wrote: the result rows."""

    rows: pd.DataFrame


def load_splits(trained, data_dir, splits) -> dict:
    """The trained model's task splits, tokenized as it was trained (its max_length)."""
    return load_task(trained.task.name, data_dir, trained.tokenizer, trained.meta["train_params"]["max_length"],
                     splits=tuple(splits))


def evaluate_trained(trained, data_dir, rows_out, *, predictions_out=None, splits=("dev", "test"), test_labels=None,
                     batch_size: int = 64, device="cpu", flops_cache=None, progress: bool = False) -> Evaluation:
    """Evaluate a saved model (its directory, or `hashee.core.checkpoint.load_trained`'s result) over its
    inference sweep on `splits`: result rows (`ROW_COLUMNS`) into the CSV `rows_out`, the test predictions
    (pointNN.tsv: index, pred, modules; points.json: file -> setting; flops.tsv: index and each point's
    FLOPs per instance) into the folder `predictions_out`.
    Test perf needs labels: `test_labels`, else `<TASK>/test_full.tsv` when present, else NaN."""
    from hashee.core.checkpoint import load_trained
    from hashee.core.io import atomic_dir, write_csv_atomic
    from hashee.core.trace import format_trace
    from hashee.measure.results import ROW_COLUMNS

    if isinstance(trained, (str, os.PathLike)):
        trained = load_trained(trained, device=device)
    method, model, task = trained.method, trained.model, trained.task
    splits = tuple(splits)
    gold, test_file = None, task_file(data_dir, task.name, "test")
    labels_file = (test_labels or labelled_test_file(data_dir, task)) if "test" in splits else None
    if labels_file:  # once per evaluation: the labelled rows follow the test file's order
        gold = labels_by_test_index(task, test_file, labels_file)
    data = load_splits(trained, data_dir, splits)
    pad = trained.tokenizer.pad_token_id
    counter = FlopCounter(method.flop_modules(model.cpu()), cache_dir=flops_cache)
    model.to(device)
    rows, predictions, instance_flops = [], {}, {}
    seed = trained.meta["seed"]
    points = method.inference_settings()
    results = {split: evaluate_sweep(method, model, data[split], points, pad, batch_size, device,
                                     progress=progress, desc=f"{task.name} {split}")
               for split in splits}
    model.cpu()  # fvcore traces on CPU
    for number, inference in enumerate(points):
        setting = method.setting_text(inference)
        for split in splits:
            result = results[split][number]
            mflops, speedup = cost_summary(counter, result.traces, task.num_labels)
            if split != "test":
                perf = result.metric(task)
            else:
                perf = score_test_labels(task, result, gold, test_file) if gold is not None else float("nan")
            rows.append(result_row(task, method, inference, seed, split, perf, mflops, speedup, len(result.traces)))
            if split == "test":
                predictions[setting] = pd.DataFrame({
                    "index": result.index, "pred": result.predictions,
                    "modules": [format_trace(t) for t in result.traces]})
                # Per instance, for the bootstrap's MFLOPs replicates (hashee.measure.bootstrap).
                instance_flops[f"point{len(predictions) - 1:02d}"] = [counter.trace_flops(t) for t in result.traces]
    model.to(device)
    counter.save()
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)
    write_csv_atomic(rows_out, frame)
    if predictions_out:
        with atomic_dir(predictions_out) as tmp:
            for number, points_frame in enumerate(predictions.values()):
                points_frame.to_csv(tmp / f"point{number:02d}.tsv", sep="\t", index=False)
            (tmp / "points.json").write_text(json.dumps(
                {f"point{n:02d}.tsv": s for n, s in enumerate(predictions)}, indent=2))
            if predictions:
                first = next(iter(predictions.values()))
                pd.DataFrame({"index": first["index"], **instance_flops}).to_csv(tmp / "flops.tsv", sep="\t", index=False)
    return Evaluation(frame)
