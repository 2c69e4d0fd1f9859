"""Wall-clock time of trained models' inference, honestly labelled (docs/timing.md).

What is timed is what a deployment runs: `Method.predict_outputs` (no execution traces, no FLOPs
bookkeeping) under `torch.inference_mode`, after untimed warm-up calls. Each call (one batch) is
timed on its own: CUDA events on a GPU (read after the pass, so timing never stalls the device),
`time.perf_counter` on CPU (recorded as device=cpu, never as GPU time). At batch size 1 a call is
one instance, ELUE's setting; batched calls give throughput. A row per sweep point and batch size:

  wall_ms         total time / instances (the per-instance cost that speed-ups compare)
  latency_ms_pNN  percentiles of the per-call latency (batch 1: an instance's latency)
  throughput      instances per second
  device, threads, dtype

`time_inference` (whole passes, median over repeats) is the summarization study's generation timer.

`keep_freed_memory` (called by `hashee time` and benchmarks/speed.py before anything is timed) makes
glibc's malloc keep the memory it frees, so CPU times measure the model, not page faults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from hashee.core.data import collate

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Have glibc's malloc serve every block from its heap (no mmap) and never hand freed memory back to
    the kernel. By default blocks above a (dynamic, at most 32 MB) threshold are mmapped and unmapped on
    free, and the heap's top is trimmed: a pass whose tensors change size from layer to layer (token
    exit, token pruning, instance exits) then page-faults tens of thousands of times, and which of two
    timed functions pays for it depends on the order of earlier allocations. Kept memory makes both
    sides of a comparison run on warm pages. Returns False where it does not apply (not glibc)."""
    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class TimingOptions:
    """How `time_trained` times a model (the `hashee time` flags; the config's `timing:` key)."""

    batch_sizes: tuple[int, ...] = (1, 32)  # ELUE's setting is batch 1
    repeats: int = 5  # timed passes over the instances; every call of every pass is a sample
    warmup: int = 2  # untimed calls first (cycling over the batches): warms allocator and kernels, cheaply
    max_instances: int = 0  # time the first N test instances (0: all)
    max_points: int = 0  # time N sweep points per model, evenly spread, ends included (0: every point)
    dtype: str = "fp32"  # autocast dtype on GPU: a key of DTYPES


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}:{torch.get_num_threads()}threads"


def chosen_points(points: list, max_points: int) -> list:
    """`max_points` of a sweep, evenly spread with both ends kept (all of them when 0 or enough)."""
    if not max_points or len(points) <= max_points:
        return list(points)
    if max_points == 1:
        return [points[0]]
    picks = np.linspace(0, len(points) - 1, max_points).round().astype(int)
    return [points[i] for i in dict.fromkeys(picks.tolist())]


def _batches(dataset, batch_size: int, pad_token_id: int, device) -> list[dict]:
    rows = [dataset[i] for i in range(len(dataset))]
    return [{k: v.to(device) for k, v in collate(rows[i:i + batch_size], pad_token_id).items()}
            for i in range(0, len(rows), batch_size)]


def call_latencies(fn, batches: list, device, repeats: int, warmup: int) -> np.ndarray:
    """(repeats, len(batches)) milliseconds of `fn(batch)` per call, after `warmup` untimed calls
    (cycling over the batches)."""
    device = torch.device(device)
    for number in range(warmup):
        fn(batches[number % len(batches)])
    samples = np.empty((repeats, len(batches)))
    for repeat in range(repeats):
        if device.type == "cuda":
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in batches]
            torch.cuda.synchronize(device)
            for (start, end), batch in zip(events, batches):
                start.record()
                fn(batch)
                end.record()
            torch.cuda.synchronize(device)  # once per pass: the events are read after the device is done
            samples[repeat] = [start.elapsed_time(end) for start, end in events]
        else:
            for number, batch in enumerate(batches):
                begin = time.perf_counter()
                fn(batch)
                samples[repeat, number] = (time.perf_counter() - begin) * 1000
    return samples


def time_predictions(method, model, dataset, inference: dict, batch_size: int, pad_token_id: int, *,
                     repeats: int = 5, warmup: int = 1, device="cpu", dtype: torch.dtype | None = None,
                     batches: list[dict] | None = None) -> dict:
    """One timing row's fields for `method.predict_outputs` at one sweep point and batch size."""
    device = torch.device(device)
    model.eval()
    batches = batches if batches is not None else _batches(dataset, batch_size, pad_token_id, device)
    instances = sum(int(batch["input_ids"].shape[0]) for batch in batches)
    amp = dtype is not None and device.type == "cuda"

    def predict(batch):
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            method.predict_outputs(model, batch, inference)

    with torch.inference_mode():
        samples = call_latencies(predict, batches, device, repeats, warmup)
    per_pass_ms = float(samples.sum(axis=1).mean())
    row = {"batch_size": batch_size, "wall_ms": per_pass_ms / instances, "n_instances": instances,
           "repeats": repeats, "warmup": warmup}
    row.update({f"latency_ms_p{q}": float(np.percentile(samples, q)) for q in PERCENTILES})
    row.update({"throughput": instances * 1000 / per_pass_ms, "device": device_name(device),
                "threads": torch.get_num_threads(), "dtype": str(dtype).removeprefix("torch.") if amp else "float32"})
    return row


def time_trained(trained, test_set, options: TimingOptions, device, out=None, log=None):
    """One row per timed sweep point x batch size of a trained model (`hashee.core.checkpoint.Trained`):
    task, method, setting, seed and `time_predictions`' fields; written to the CSV `out` when given.
    `log(text)`, when given, hears one line per row."""
    import pandas as pd

    from hashee.core.io import write_csv_atomic

    if options.max_instances and len(test_set) > options.max_instances:
        test_set = test_set.select(range(options.max_instances))
    method, model, rows = trained.method, trained.model.to(device), []
    pad = trained.tokenizer.pad_token_id
    batches = {size: _batches(test_set, size, pad, device) for size in options.batch_sizes}
    for inference in chosen_points(method.inference_settings(), options.max_points):
        for batch_size in options.batch_sizes:
            timing = time_predictions(method, model, test_set, inference, batch_size, pad, repeats=options.repeats,
                                      warmup=options.warmup, device=device, dtype=DTYPES[options.dtype],
                                      batches=batches[batch_size])
            row = {"task": trained.task.name, "method": method.name, "setting": method.setting_text(inference),
                   "seed": trained.meta["seed"], **timing}
            rows.append(row)
            if log:
                log(f"{row['task']} {row['method']} [{row['setting']}] batch {batch_size}: {row['wall_ms']:.3f} ms/instance"
                    f", p50/p90/p99 {row['latency_ms_p50']:.3f}/{row['latency_ms_p90']:.3f}/{row['latency_ms_p99']:.3f}"
                    f" ms/call, {row['throughput']:.1f}/s")
    frame = pd.DataFrame(rows)
    if out:
        write_csv_atomic(out, frame)
    return frame


def time_models(model_dirs, data_dir, options: TimingOptions, device, out, log=print):
    """`time_trained` for each saved model in turn, in this one process, into one CSV `out`: the
    workflow's timing stage (one job per task). Test sets are tokenized once per tokenizer and length."""
    import pandas as pd

    from hashee.core.checkpoint import load_trained
    from hashee.core.io import write_csv_atomic
    from hashee.measure.evaluation import load_splits

    frames, test_sets = [], {}
    for model_dir in model_dirs:
        trained = load_trained(model_dir, device="cpu")
        key = (trained.tokenizer.name_or_path, len(trained.tokenizer), trained.meta["train_params"]["max_length"],
               trained.task.name)
        if key not in test_sets:
            test_sets[key] = load_splits(trained, data_dir, ("test",))["test"]
        frames.append(time_trained(trained, test_sets[key], options, device, log=log))
        trained.model.cpu()  # one model on the device at a time
    frame = pd.concat(frames, ignore_index=True)
    write_csv_atomic(out, frame)
    return frame


@torch.no_grad()
def time_inference(method, model, dataset, inference: dict, batch_size: int, pad_token_id: int,
                   repeats: int = 5, warmup: int = 1, device="cpu", dtype: torch.dtype | None = None) -> dict:
    """Median over `repeats` whole passes of `method.predict`, after `warmup` untimed passes (the
    summarization study's generation)."""
    device = torch.device(device)
    model.eval()
    batches = _batches(dataset, batch_size, pad_token_id, device)
    instances = sum(int(batch["input_ids"].shape[0]) for batch in batches)
    amp = dtype is not None and device.type == "cuda"

    def one_pass(_batch=None):
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            for batch in batches:
                method.predict(model, batch, inference)

    median = statistics.median(call_latencies(one_pass, [None], device, repeats, warmup)[:, 0]) if repeats else 0.0
    return {"batch_size": batch_size, "wall_ms": median / instances, "pass_ms": median, "n_instances": instances,
            "repeats": repeats, "device": device_name(device),
            "dtype": str(dtype).removeprefix("torch.") if amp else "float32"}
