"""The inference-time comparison (hashee.measure.inference_time): measured speed-ups against the full
model (the deepest static model) timed in the same stage, FLOPs speed-ups from runs.csv, their ratio; the
files and plots it writes; a timing that matches no result row is named."""

import math

import pandas as pd
import pytest

from hashee.core.errors import HasheeError
from hashee.measure.inference_time import inference_time_table, write_inference_time
from hashee.measure.results import ROW_COLUMNS

FREQ = "hash=frequency,layers=6"


def _runs():
    rows = []
    for method, setting, mflops in [("static", "layers=6", 600.0), ("static", "layers=3", 300.0),
                                    ("hashee", FREQ, 200.0), ("pabee", "layers=6,patience=3", 400.0),
                                    ("pabee", "layers=6,patience=6", 500.0)]:
        for split in ("dev", "test"):
            rows.append({"task": "SST-2", "method": method, "setting": setting, "seed": 42, "split": split,
                         "metric": "acc", "perf": 80.0, "mflops": mflops if split == "test" else 1.0, "speedup": 1.0,
                         "wall_ms": math.nan, "device": "", "n_instances": 10})
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


def _times():
    ms = {("static", "layers=6"): (6.0, 1.2), ("static", "layers=3"): (3.0, 0.6), ("hashee", FREQ): (4.0, 0.5),
          ("pabee", "layers=6,patience=3"): (5.0, 0.8)}  # (batch 1, batch 32) ms per instance
    rows = []
    for (method, setting), per_size in ms.items():
        for size, wall in zip((1, 32), per_size):
            rows.append({"task": "SST-2", "method": method, "setting": setting, "seed": 42, "batch_size": size,
                         "wall_ms": wall, "latency_ms_p50": wall * size, "latency_ms_p90": wall * size,
                         "latency_ms_p99": wall * size * 1.5, "throughput": 1000 / wall, "device": "cpu:x86_64:2threads",
                         "threads": 2, "dtype": "float32"})
    return pd.DataFrame(rows)


def test_speedups_are_against_the_full_model():
    table = inference_time_table(_runs(), _times()).set_index(["method", "setting"])
    hashee = table.loc[("hashee", FREQ)]
    assert hashee["flops_speedup"] == pytest.approx(3.0)  # 600 / 200 test MFLOPs, not the dev ones
    assert hashee["speedup_b1"] == pytest.approx(1.5) and hashee["speedup_b32"] == pytest.approx(2.4)
    assert hashee["ratio_b1"] == pytest.approx(0.5) and hashee["ratio_b32"] == pytest.approx(0.8)
    full = table.loc[("static", "layers=6")]
    assert full["flops_speedup"] == pytest.approx(1.0) and full["speedup_b1"] == pytest.approx(1.0)
    shallow = table.loc[("static", "layers=3")]  # a truncation of the backbone: faster than the full model
    assert shallow["flops_speedup"] == pytest.approx(2.0) and shallow["speedup_b32"] == pytest.approx(2.0)
    assert ("pabee", "layers=6,patience=6") not in table.index  # not timed (max_points): no row


def test_without_a_timed_full_model_there_are_no_speedups():
    times = _times()
    times = times[times["method"] != "static"]
    table = inference_time_table(_runs(), times).set_index(["method", "setting"])
    assert table[["flops_speedup", "speedup_b1", "ratio_b32"]].isna().all().all()
    assert table.loc[("hashee", FREQ), "ms_b1"] == pytest.approx(4.0)


def test_a_timing_without_a_result_row_is_named():
    times = _times()
    times.loc[times["method"] == "hashee", "setting"] = "hash=frequency,layers=5"
    with pytest.raises(HasheeError, match=r"hashee \[hash=frequency,layers=5\]"):
        inference_time_table(_runs(), times)


def test_write_inference_time_writes_tables_plots_and_caption(tmp_path):
    runs, times = tmp_path / "runs.csv", tmp_path / "SST-2.csv"
    _runs().to_csv(runs, index=False)
    _times().to_csv(times, index=False)
    write_inference_time(runs, [times], tmp_path / "tables", plots_dir=tmp_path / "plots", config_name="demo")
    markdown = (tmp_path / "tables" / "inference_time.md").read_text()
    assert "measured/FLOPs b32" in markdown and "2 thread(s)" in markdown
    assert "- pabee: the official code runs batch 1 only" in markdown  # the baseline alone, not HashEE or static
    back = pd.read_csv(tmp_path / "tables" / "inference_time.csv")
    assert set(back["method"]) == {"static", "hashee", "pabee"}
    assert (tmp_path / "tables" / "inference_time.tex").read_text().startswith("\\begin")
    assert (tmp_path / "plots" / "inference_time_SST-2.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_timing_file_without_its_columns_is_named(tmp_path):
    runs, times = tmp_path / "runs.csv", tmp_path / "SST-2.csv"
    _runs().to_csv(runs, index=False)
    _times().drop(columns="threads").to_csv(times, index=False)
    with pytest.raises(HasheeError, match=r"SST-2.csv: timing file is missing column\(s\) threads"):
        write_inference_time(runs, [times], tmp_path / "tables")


def test_runs_on_another_backbone_are_compared_with_that_backbones_full_model():
    """A `backbone=` run's speed-ups are against the deepest static model of the same backbone (here
    twice as fast per instance), never against the config backbone's, and a second deepest model (the
    other backbone's layers=6) does not make the config backbone's comparison ambiguous."""
    other = "backbone=small,"
    runs, times = _runs(), _times()
    extra_runs = runs[runs["method"].isin(["static", "hashee"])].assign(
        setting=lambda f: other + f["setting"], mflops=lambda f: f["mflops"] / 4)
    extra_times = times[times["method"].isin(["static", "hashee"])].assign(
        setting=lambda f: other + f["setting"], wall_ms=lambda f: f["wall_ms"] / 2)
    table = inference_time_table(pd.concat([runs, extra_runs]), pd.concat([times, extra_times]))
    table = table.set_index(["method", "setting"])
    ours, theirs = table.loc[("hashee", FREQ)], table.loc[("hashee", other + FREQ)]
    assert theirs["flops_speedup"] == pytest.approx(ours["flops_speedup"]) == pytest.approx(3.0)
    assert theirs["speedup_b1"] == pytest.approx(ours["speedup_b1"]) == pytest.approx(1.5)
    assert table.loc[("static", other + "layers=6"), "speedup_b32"] == pytest.approx(1.0)
