"""One evaluation path for every method: predictions, metric, per-instance traces and FLOPs.

`evaluate_sweep` runs a method over a split under each of its inference settings (one pass where the
method allows) and returns everything the measurement layer needs; `result_row` makes runs.csv rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from hashee.core.data import make_loader, read_split
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
            preds[point].append(decode(method.task, out.outputs).cpu().numpy())
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
        return evaluate_split(method, model, dataset, inference, pad_token_id, batch_size, device).metric(method.task)

    return score


def labels_by_test_index(task: TaskSpec, test_file, labels_file) -> dict[int, int | float]:
    """Gold label per test `index`. The labelled file (train/dev layout, like txsun1997/HashEE's
    test_full.tsv) has no index column: its row i labels test_file's row i, whose `index` need not be i."""
    tests = read_split(task, test_file, split="test")
    labelled = read_split(task, labels_file, split="dev")
    if len(labelled) != len(tests):
        raise HasheeError(f"{labels_file}: {len(labelled)} labelled row(s), {test_file} has {len(tests)}; "
                          f"expected the test rows, labelled, in the same order")
    for test, gold in zip(tests, labelled):
        if (test.text_a.strip(), (test.text_b or "").strip()) != (gold.text_a.strip(), (gold.text_b or "").strip()):
            raise HasheeError(f"{labels_file}:{gold.line}: text differs from {test_file}:{test.line}; the labelled "
                              f"file must list the test rows in the same order")
    return {test.index: gold.label for test, gold in zip(tests, labelled)}


def score_test_labels(task: TaskSpec, result: SplitResult, test_file, labels_file) -> float:
    """The test metric with labels joined to predictions by `index` (test labels are private on ELUE)."""
    gold = labels_by_test_index(task, test_file, labels_file)
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
