"""One evaluation path for every method: predictions, metric, per-instance traces and FLOPs.

`evaluate_split` runs a method's `predict` over a split under one inference setting and returns
everything the measurement layer needs; `result_rows` turns it into runs.csv rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import make_loader
from .flops import FlopCounter, bert_base_flops
from .methods import Method, decode
from .metrics import compute_metric
from .tasks import TaskSpec
from .trace import Trace


@dataclass
class SplitResult:
    predictions: np.ndarray  # labels (int) or scores (float)
    labels: np.ndarray
    index: np.ndarray
    traces: list[Trace]

    def metric(self, task: TaskSpec) -> float:
        return compute_metric(task, self.predictions, self.labels)


@torch.no_grad()
def evaluate_split(method: Method, model, dataset, inference: dict, pad_token_id: int, batch_size: int = 64,
                   device="cpu", progress: bool = False, desc: str = "evaluate") -> SplitResult:
    model.eval()
    preds, labels, index, traces = [], [], [], []
    loader = make_loader(dataset, batch_size, pad_token_id, shuffle=False)
    for batch in tqdm(loader, disable=not progress, desc=desc, leave=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = method.predict(model, batch, inference)
        preds.append(decode(method.task, out.outputs).cpu().numpy())
        labels.append(batch["labels"].cpu().numpy())
        index.append(batch["index"].cpu().numpy())
        traces.extend(out.traces)
    return SplitResult(np.concatenate(preds), np.concatenate(labels), np.concatenate(index), traces)


def dev_scorer(method: Method, dataset, pad_token_id: int, batch_size: int, device):
    """The trainer's model-selection score: the task metric on dev under the method's first setting."""
    inference = method.inference_settings()[0]

    def score(model) -> float:
        return evaluate_split(method, model, dataset, inference, pad_token_id, batch_size, device).metric(method.task)

    return score


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
