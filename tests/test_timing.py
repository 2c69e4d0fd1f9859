"""The timing stage's harness (hashee.measure.timing): the untraced prediction path it times gives the
traced path's outputs for every registered method; it never runs the traced path; its rows say what
they measured (latency percentiles, throughput, device, threads, dtype); the CUDA-event path on a GPU."""

import numpy as np
import pytest
import torch
from exit_helpers import BASELINES, mixed_inference, random_batch, tiny_baseline
from test_hashee_method import hashee_batch, tiny_hashee

from hashee.core.methods import get_method
from hashee.core.tasks import get_task
from hashee.measure.timing import PERCENTILES, call_latencies, chosen_points, time_predictions

LENGTHS = (9, 5, 12, 7, 3, 10, 8, 6)


def _static(layers=4):
    from exit_helpers import tiny_config

    method = get_method("static", f"layers={layers}")
    torch.manual_seed(0)
    return method, method.build(tiny_config(layers), get_task("SST-2")).eval()


def _every_method():
    """(id, method, model, batch, inference) for HashEE, static and every instance-exit baseline, at
    settings where the batch's instances (or tokens) leave at different layers."""
    cases = []
    for hash_name in ("frequency", "rand-incons"):
        method, model = tiny_hashee(hash_name)
        cases.append((f"hashee-{hash_name}", method, model, hashee_batch(), {}))
    method, model = _static()
    cases.append(("static", method, model, random_batch(LENGTHS), {}))
    for name in BASELINES:
        method, model = tiny_baseline(name)
        batch = random_batch(LENGTHS)
        cases.append((name, method, model, batch, mixed_inference(method, model, batch)))
    return cases


@pytest.mark.parametrize("case", _every_method(), ids=lambda case: case[0])
def test_untraced_predictions_equal_traced_ones(case):
    name, method, model, batch, inference = case
    with torch.inference_mode():
        traced = method.predict(model, batch, inference)
        untraced = method.predict_outputs(model, batch, inference)
    if name != "static":  # the exit branches really ran: instances left at different layers, or tokens did
        assert len({len(trace) for trace in traced.traces}) > 1 or any(
            call.shape[0] < call.shape[1] for trace in traced.traces for call in trace if call.name.startswith("layer_"))
    assert untraced.shape == traced.outputs.shape
    assert torch.equal(untraced, traced.outputs)


def test_the_timed_region_never_builds_traces(monkeypatch):
    method, model = tiny_baseline("pabee")
    batch = random_batch(LENGTHS)

    def traced(*args, **kwargs):
        raise AssertionError("timing ran the traced path")

    monkeypatch.setattr(method, "predict", traced)
    monkeypatch.setattr(method, "_traces", traced)
    row = time_predictions(method, model, None, {"patience": "1"}, 4, 0, repeats=2, warmup=1, batches=[batch])
    assert row["n_instances"] == len(LENGTHS) and row["wall_ms"] > 0


def test_a_row_says_what_it_measured():
    method, model = _static()
    batches = [{k: v[i:i + 1] for k, v in random_batch(LENGTHS).items()} for i in range(len(LENGTHS))]
    row = time_predictions(method, model, None, {}, 1, 0, repeats=3, warmup=1, batches=batches)
    latencies = [row[f"latency_ms_p{q}"] for q in PERCENTILES]
    assert 0 < latencies[0] <= latencies[1] <= latencies[2]
    # batch 1: the mean call is an instance; throughput is its inverse
    assert row["throughput"] == pytest.approx(1000 / row["wall_ms"])
    assert row["n_instances"] == len(LENGTHS) and row["batch_size"] == 1 and row["repeats"] == 3
    assert row["device"].startswith("cpu:") and row["threads"] == torch.get_num_threads()
    assert row["dtype"] == "float32"


def test_every_call_of_every_pass_is_one_sample_after_the_warm_up():
    calls = []
    samples = call_latencies(lambda batch: calls.append(batch), ["a", "b", "c"], "cpu", repeats=2, warmup=4)
    assert samples.shape == (2, 3) and (samples >= 0).all()
    assert calls == ["a", "b", "c", "a"] + ["a", "b", "c"] * 2  # 4 untimed calls, then 2 timed passes


@pytest.mark.parametrize("count, wanted, expected", [
    (9, 0, list(range(9))), (9, 2, [0, 8]), (9, 3, [0, 4, 8]), (2, 5, [0, 1]), (9, 1, [0])])
def test_chosen_points_spread_evenly_and_keep_the_ends(count, wanted, expected):
    assert chosen_points(list(range(count)), wanted) == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_events_time_each_call_on_the_gpu():
    method, model = tiny_baseline("deebert")
    model.cuda()
    batch = {k: v.cuda() for k, v in random_batch(LENGTHS).items()}
    inference = mixed_inference(method, model.cpu(), random_batch(LENGTHS))
    model.cuda()
    row = time_predictions(method, model, None, inference, len(LENGTHS), 0, repeats=3, warmup=1,
                           device="cuda", batches=[batch])
    assert row["device"].startswith("cuda:")
    assert 0 < row["latency_ms_p50"] <= row["latency_ms_p99"]
    half = time_predictions(method, model, None, inference, len(LENGTHS), 0, repeats=2, warmup=1,
                            device="cuda", dtype=torch.float16, batches=[batch])
    assert half["dtype"] == "float16"
    assert np.isfinite(half["wall_ms"])


def test_kept_freed_memory_is_reused_without_page_faults():
    """After `keep_freed_memory` a freed 40 MB tensor's pages serve the next one (glibc would otherwise
    unmap blocks above its mmap threshold on free and fault them in again). Own process: it changes
    the allocator for the rest of the process."""
    import subprocess
    import sys

    script = """
import resource, torch
from hashee.measure.timing import keep_freed_memory
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(40 << 18).fill_(1.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
default = [faults() for _ in range(4)]
kept = keep_freed_memory()
print(kept, min(default[1:]), sorted(faults() for _ in range(8))[4])  # the median after it
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    kept, default_faults, kept_faults = done.stdout.split()
    if kept != "True":
        pytest.skip("not glibc: keep_freed_memory does not apply")
    assert int(default_faults) > 5000  # 40 MB = 10240 pages, faulted in again on every allocation
    assert int(kept_faults) < 500  # the heap grows once or twice, then its pages are reused
