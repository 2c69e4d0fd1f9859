"""Wall-clock time of a trained model's inference, honestly labelled.

GPU: CUDA events around each full pass after warm-up passes, `torch.cuda.synchronize`, median over
repeats. CPU: the same harness with `time.perf_counter`, recorded as device=cpu — never as GPU
time. Reported per instance (pass time / instances) at each batch size; ELUE's setting is batch 1.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass

import torch

from hashee.core.data import collate

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TimingOptions:
    """How `time_trained` times a model (the `--batch-sizes`, `--repeats`, ... flags)."""

    batch_sizes: tuple[int, ...] = (1, 32)  # ELUE's setting is batch 1
    repeats: int = 5  # timed passes; the median is reported
    warmup: int = 1  # untimed passes first
    max_instances: int = 0  # time the first N test instances (0: all)
    dtype: str = "fp32"  # autocast dtype on GPU: a key of DTYPES


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}:{torch.get_num_threads()}threads"


@torch.no_grad()
def time_inference(method, model, dataset, inference: dict, batch_size: int, pad_token_id: int,
                   repeats: int = 5, warmup: int = 1, device="cpu", dtype: torch.dtype | None = None) -> dict:
    device = torch.device(device)
    model.eval()
    rows = [dataset[i] for i in range(len(dataset))]
    batches = [{k: v.to(device) for k, v in collate(rows[i:i + batch_size], pad_token_id).items()}
               for i in range(0, len(rows), batch_size)]
    amp = dtype is not None and device.type == "cuda"

    def one_pass():
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            for batch in batches:
                method.predict(model, batch, inference)

    for _ in range(warmup):
        one_pass()
    times_ms = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            one_pass()
            end.record()
            torch.cuda.synchronize(device)
            times_ms.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            one_pass()
            times_ms.append((time.perf_counter() - begin) * 1000)
    median = statistics.median(times_ms)
    return {"batch_size": batch_size, "wall_ms": median / len(rows), "pass_ms": median, "n_instances": len(rows),
            "repeats": repeats, "device": device_name(device),
            "dtype": str(dtype).removeprefix("torch.") if amp else "float32"}


def time_trained(trained, test_set, options: TimingOptions, device, out=None):
    """One row per inference setting x batch size of a trained model (`hashee.core.checkpoint.Trained`):
    task, method, setting, seed and `time_inference`'s fields; written to the CSV `out` when given."""
    import pandas as pd

    from hashee.core.io import write_csv_atomic

    if options.max_instances and len(test_set) > options.max_instances:
        test_set = test_set.select(range(options.max_instances))
    method, rows = trained.method, []
    for inference in method.inference_settings():
        for batch_size in options.batch_sizes:
            timing = time_inference(method, trained.model.to(device), test_set, inference, batch_size,
                                    trained.tokenizer.pad_token_id, options.repeats, options.warmup, device,
                                    DTYPES[options.dtype])
            rows.append({"task": trained.task.name, "method": method.name, "setting": method.setting_text(inference),
                         "seed": trained.meta["seed"], **timing})
    frame = pd.DataFrame(rows)
    if out:
        write_csv_atomic(out, frame)
    return frame
