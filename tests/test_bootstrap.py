"""Bootstrap intervals over test instances (hashee.measure.bootstrap) and their use in the tables."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashee.core.errors import HasheeError
from hashee.core.metrics import compute_metric
from hashee.core.tasks import get_task
from hashee.measure.bootstrap import (
    Bootstrap,
    bootstrap_predictions,
    curve_replicates,
    interval,
    load_bootstrap,
    reference_replicates,
    replicate_indices,
    replicate_metric,
)
from hashee.measure.results import ROW_COLUMNS
from hashee.measure.score import ReferenceCurve
from hashee.measure.tables import INSIDE, to_latex
from hashee.studies.elue.table import elue_table, hash_ablation_table

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("task_name", ["SST-2", "MRPC", "STS-B"])
def test_replicate_metric_is_the_task_metric_on_each_resample(task_name):
    task = get_task(task_name)
    n = 60
    if task.is_regression:
        labels = RNG.uniform(0, 5, n).round(1)  # ties: Spearman's average ranks matter
        preds = labels + RNG.normal(0, 1, n)
    else:
        labels = RNG.integers(0, task.num_labels, n)
        preds = np.where(RNG.random(n) < 0.7, labels, RNG.integers(0, task.num_labels, n))
    indices = replicate_indices(task_name, n, replicates=25)
    got = replicate_metric(task, preds, labels, indices)
    want = [compute_metric(task, preds[row], labels[row]) for row in indices]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_replicate_metric_scores_a_constant_regression_zero_like_the_metric():
    task = get_task("STS-B")
    labels, preds = RNG.uniform(0, 5, 37), np.full(37, 2.2)  # 2.2: its mean is not exact in binary
    got = replicate_metric(task, preds, labels, replicate_indices("STS-B", 37, replicates=5))
    assert got == pytest.approx([compute_metric(task, preds, labels)] * 5)  # 0.0: undefined correlation


def test_replicates_are_shared_by_a_task_and_differ_between_tasks():
    a, b = replicate_indices("SST-2", 40, 50), replicate_indices("SST-2", 40, 50)
    assert (a == b).all() and a.shape == (50, 40) and a.min() >= 0 and a.max() < 40
    assert not (a == replicate_indices("MRPC", 40, 50)).all()
    assert not (a == replicate_indices("SST-2", 40, 50, seed=1)).all()


@pytest.mark.parametrize("beyond", ["extend", "clamp"])
def test_curve_replicates_agree_with_the_reference_curve(beyond):
    xs, ys = (10.0, 20.0, 40.0), (50.0, 70.0, 75.0)
    curve = ReferenceCurve("SST-2", xs, ys)
    f = np.array([5.0, 10.0, 15.0, 20.0, 33.0, 40.0, 55.0])
    knots_x, knots_y = np.tile(xs, (len(f), 1)), np.tile(ys, (len(f), 1))
    assert curve_replicates(knots_x, knots_y, f, beyond) == pytest.approx([curve(v, beyond) for v in f])


def test_interval_is_the_percentile_interval():
    values = np.arange(1001, dtype=float)
    assert interval(values, 0.95) == pytest.approx((25.0, 975.0))
    with pytest.raises(HasheeError, match="level"):
        interval(values, 95)


# --- from predictions dirs ------------------------------------------------------------------------

def _write_sst2(data_dir, labels):
    task_dir = data_dir / "SST-2"
    task_dir.mkdir(parents=True)
    n = len(labels)
    # Test indices need not be 0..n-1: the bootstrap works on the sorted index.
    (task_dir / "test.tsv").write_text("index\tsentence\n" + "".join(f"{100 + i}\tsentence {i}\n" for i in range(n)))
    (task_dir / "test_full.tsv").write_text("sentence\tlabel\n" + "".join(f"sentence {i}\t{y}\n"
                                                                           for i, y in enumerate(labels)))


def _write_run(run_dir, method, seed, points, flops=None):
    """points: setting -> predictions in test order; flops: point file -> per-instance FLOPs."""
    pred_dir = run_dir / "predictions"
    pred_dir.mkdir(parents=True)
    rows, listing = [], {}
    for number, (setting, preds) in enumerate(points.items()):
        n = len(preds)
        order = np.arange(n)[::-1]  # written in another order than the test file
        pd.DataFrame({"index": 100 + order, "pred": np.asarray(preds)[order], "modules": "(8),emb"}).to_csv(
            pred_dir / f"point{number:02d}.tsv", sep="\t", index=False)
        listing[f"point{number:02d}.tsv"] = setting
        mflops = 1.0 if flops is None else float(np.mean(flops[f"point{number:02d}"])) / 1e6
        rows.append({"task": "SST-2", "method": method, "setting": setting, "seed": seed, "split": "test",
                     "metric": "acc", "perf": 0.0, "mflops": mflops, "speedup": 1.0, "wall_ms": math.nan,
                     "device": "cpu", "n_instances": n})
    (pred_dir / "points.json").write_text(json.dumps(listing))
    if flops is not None:
        pd.DataFrame({"index": 100 + np.arange(len(preds)), **flops}).to_csv(pred_dir / "flops.tsv", sep="\t",
                                                                               index=False)
    pd.DataFrame(rows, columns=ROW_COLUMNS).to_csv(run_dir / "rows.csv", index=False)
    return pred_dir


def test_bootstrap_predictions_pairs_runs_and_resamples_flops(tmp_path):
    n = 40
    labels = RNG.integers(0, 2, n)
    _write_sst2(tmp_path / "data", labels)
    good = np.where(RNG.random(n) < 0.8, labels, 1 - labels)
    flops = {"point00": RNG.integers(1_000_000, 5_000_000, n), "point01": RNG.integers(1_000_000, 5_000_000, n)}
    a = _write_run(tmp_path / "a", "hashee", 1, {"hash=mi": good, "hash=mi,x=1": 1 - good}, flops)
    b = _write_run(tmp_path / "b", "static", 1, {"layers=1": labels})  # no flops.tsv: an older run
    boot = bootstrap_predictions([a, b], tmp_path / "data", replicates=30, seed=3)
    indices = replicate_indices("SST-2", n, 30, seed=3)
    task = get_task("SST-2")
    perf, mflops = boot.seed_mean("SST-2", "hashee", "hash=mi")
    assert perf == pytest.approx([compute_metric(task, good[r], labels[r]) for r in indices])
    assert mflops == pytest.approx([flops["point00"][r].mean() / 1e6 for r in indices])
    perf2, _ = boot.seed_mean("SST-2", "hashee", "hash=mi,x=1")
    assert perf + perf2 == pytest.approx(np.full(30, 100.0))  # same resample, complementary predictions
    assert list(boot.flops_resampled) == [True, True, False]
    assert (boot.seed_mean("SST-2", "static", "layers=1")[1] == 1.0).all()  # held at the row's mean MFLOPs
    boot.save(tmp_path / "boot.npz")
    again = load_bootstrap(tmp_path / "boot.npz")
    assert again.replicates == 30 and again.seed == 3 and len(again.keys) == 3
    assert again.seed_mean("SST-2", "hashee", "hash=mi")[0] == pytest.approx(perf, rel=1e-6)


def test_bootstrap_predictions_refuses_predictions_of_other_instances(tmp_path):
    labels = RNG.integers(0, 2, 10)
    _write_sst2(tmp_path / "data", labels)
    run = _write_run(tmp_path / "a", "hashee", 1, {"hash=mi": labels})
    point = pd.read_csv(run / "point00.tsv", sep="\t")
    point.iloc[:-1].to_csv(run / "point00.tsv", sep="\t", index=False)
    with pytest.raises(HasheeError, match="point00.tsv: its 9 indices"):
        bootstrap_predictions([run], tmp_path / "data", replicates=5)
    with pytest.raises(HasheeError, match="not found"):
        load_bootstrap(tmp_path / "missing.npz")


# --- in the tables ----------------------------------------------------------------------------------

REF = pd.DataFrame({
    "task": ["SST-2"] * 3 + ["MRPC"] * 3, "layers": [1, 2, 3] * 2,
    "perf": [80.0, 84.0, 86.0, 70.0, 80.0, 82.0], "mflops": [1000.0, 2000.0, 3000.0] * 2,
    "provenance": "published",
})


def _row(task, method, setting, seed, perf, mflops, speedup):
    return {"task": task, "method": method, "setting": setting, "seed": seed, "split": "test",
            "metric": "acc_f1" if task == "MRPC" else "acc", "perf": perf, "mflops": mflops, "speedup": speedup,
            "wall_ms": math.nan, "device": "cpu", "n_instances": 10}


def _boot(points, spread):
    """A Bootstrap whose replicates scatter around each point's perf (task -> sd) at its MFLOPs."""
    rng = np.random.default_rng(0)
    keys = pd.DataFrame([{k: p[k] for k in ("task", "method", "setting", "seed")} for p in points])
    perf = np.stack([p["perf"] + rng.normal(0, spread[p["task"]], 500) for p in points])
    mflops = np.stack([np.full(500, p["mflops"]) for p in points])
    return Bootstrap(keys, perf, mflops, np.ones(len(points), bool), replicates=500)


def test_elue_table_shows_intervals_and_marks_gaps_inside_them():
    # SST-2: 84.5 at 2500 MFLOPs, p_EB 85 -> gap -0.5 inside a ±~4 interval: marked.
    # MRPC: 83.5 at 1500, p_EB 75 -> gap +8.5, interval ±~0.4: not marked.
    points = [_row("SST-2", "hashee", "hash=frequency,layers=6", 1, 84.5, 2500.0, 5.2),
              _row("MRPC", "hashee", "hash=frequency,layers=6", 1, 83.5, 1500.0, 4.6)]
    runs = pd.DataFrame(points, columns=ROW_COLUMNS)
    boot = _boot(points, {"SST-2": 2.0, "MRPC": 0.2})
    table = elue_table(runs, REF, paper=True, select_on="test", sweep_keys={"hashee": ()}, boot=boot)
    ours = table[table["row"] == "ours"].iloc[0]
    assert ours["SST-2"].startswith("84.5 [") and ours["SST-2"].endswith(f"(5.2×) {INSIDE}")
    lo, hi = (float(v) for v in ours["SST-2"].split("[")[1].split("]")[0].split(","))
    assert 79.0 < lo < 84.5 < hi < 90.0
    assert ours["MRPC"].startswith("83.5 [") and INSIDE not in ours["MRPC"]
    score, rest = ours["ELUE score"].split(" ", 1)
    assert score == "4.00" and rest.startswith("[") and INSIDE not in rest  # (−0.5 + 8.5)/2, clear of 0
    assert any("bootstrap percentile interval" in n for n in table.attrs["notes"])
    assert any("Reference curve fixed" in n for n in table.attrs["notes"])  # a published curve here
    assert "$\\approx$" in to_latex(table, [])
    plain = elue_table(runs, REF, paper=False, select_on="test", sweep_keys={"hashee": ()})
    assert plain.iloc[0]["SST-2"] == "84.5 (5.2×)"  # no bootstrap: no interval


def test_reference_measured_from_our_runs_is_resampled_with_them():
    static = [_row("SST-2", "static", f"layers={k}", 1, p, f, 1.0)
              for k, p, f in ((1, 80.0, 1000.0), (2, 84.0, 2000.0), (3, 86.0, 3000.0))]
    mine = pd.DataFrame(static).assign(perf=lambda d: d["perf"])
    boot = _boot(static, {"SST-2": 1.0})
    reps = reference_replicates(REF[REF["task"] == "SST-2"], boot, mine)
    knots_x, knots_y, paired = reps["SST-2"]
    assert paired and knots_y.shape == (500, 3)
    assert knots_y[:, 1] == pytest.approx(boot.seed_mean("SST-2", "static", "layers=2")[0])
    off = mine.assign(perf=mine["perf"] + 0.5)  # not the reference's points: a fixed curve
    assert not reference_replicates(REF[REF["task"] == "SST-2"], boot, off)["SST-2"][2]


def test_hash_ablation_marks_a_paper_value_inside_our_interval():
    # The paper's Frequency hash on ElasticBERT-6L (hashee/paper/hash_ablation.csv), SST-2 column.
    from hashee.measure.results import load_paper

    paper = load_paper("hash_ablation")
    freq = paper[(paper["backbone"] == "ElasticBERT-6L") & (paper["hash"] == "Frequency")].iloc[0]
    points = [_row("SST-2", "hashee", "hash=frequency,layers=6", 1, float(freq["sst2"]) + 0.3, 2500.0, 5.0),
              _row("MRPC", "hashee", "hash=frequency,layers=6", 1, float(freq["mrpc"]) + 9.0, 1500.0, 4.6)]
    runs = pd.DataFrame(points, columns=ROW_COLUMNS)
    table = hash_ablation_table(runs, boot=_boot(points, {"SST-2": 1.0, "MRPC": 0.2}))
    delta = table[table["row"].str.startswith("Δ")].iloc[0]
    assert delta["SST-2"].endswith(INSIDE) and INSIDE not in delta["MRPC"]
    assert "[" in table[table["row"] == "ours"].iloc[0]["SST-2"]


def test_seed_mean_averages_seeds_replicate_by_replicate():
    keys = pd.DataFrame({"task": "SST-2", "method": "hashee", "setting": "hash=mi", "seed": [1, 2]})
    perf = np.array([[80.0, 90.0, 70.0], [82.0, 86.0, 74.0]])
    boot = Bootstrap(keys, perf, perf / 10, np.ones(2, bool), replicates=3)
    assert boot.seed_mean("SST-2", "hashee", "hash=mi")[0] == pytest.approx([81.0, 88.0, 72.0])
    assert boot.seed_mean("SST-2", "hashee", "hash=frequency") is None


def test_evaluate_writes_per_instance_flops_that_the_bootstrap_resamples(tmp_path, tiny_elue, minilm):
    """`hashee evaluate --predictions` writes flops.tsv (FLOPs per instance and point) whose means are the
    rows' MFLOPs, and `hashee bootstrap` reads the run as the workflow lays it out (rows.csv beside)."""
    from hashee import cli
    from hashee.core.checkpoint import save_trained
    from hashee.core.methods import get_method
    from hashee.core.modeling import EncoderConfig

    task = get_task("SST-2")  # sentences of several lengths: traces differ between instances
    method = get_method("deebert", "layers=2")  # a sweep: several points, FLOPs differ per instance
    model = method.build(EncoderConfig(vocab_size=30522, hidden_size=32, num_layers=2, num_heads=2,
                                       intermediate_size=64), task)
    save_trained(tmp_path / "model", method, model, minilm.tokenizer, task,
                 meta={"seed": 1, "train_params": {"max_length": 32}})
    run = tmp_path / "run"
    assert cli.main(["evaluate", "--model", str(tmp_path / "model"), "--data-dir", str(tiny_elue), "--splits", "test",
                     "--out", str(run / "rows.csv"), "--predictions", str(run / "predictions"), "--quiet",
                     "--device", "cpu"]) == 0
    rows = pd.read_csv(run / "rows.csv", dtype={"setting": str})
    flops = pd.read_csv(run / "predictions" / "flops.tsv", sep="\t")
    points = json.loads((run / "predictions" / "points.json").read_text())
    assert list(flops.columns) == ["index", *(Path(name).stem for name in sorted(points))]
    for name, setting in points.items():
        mflops = rows.loc[rows["setting"] == setting, "mflops"].iloc[0]
        assert flops[Path(name).stem].mean() / 1e6 == pytest.approx(mflops, abs=1e-4)
        # Instance by instance: FLOPs are a function of the trace (the `modules` of the same index).
        traces = pd.read_csv(run / "predictions" / name, sep="\t").merge(flops[["index", Path(name).stem]], on="index")
        per_trace = traces.groupby("modules")[Path(name).stem].nunique()
        assert len(per_trace) > 1 and (per_trace == 1).all(), name
    out = tmp_path / "boot.npz"
    assert cli.main(["bootstrap", "--predictions", str(run / "predictions"), "--data-dir", str(tiny_elue),
                     "--out", str(out), "--replicates", "50"]) == 0
    boot = load_bootstrap(out)
    assert len(boot.keys) == len(points) and boot.all_flops_resampled()
    perf, mflops = boot.seed_mean("SST-2", "deebert", rows["setting"].iloc[0])
    low, high = interval(perf)
    test_perf = rows.loc[(rows["split"] == "test") & (rows["setting"] == rows["setting"].iloc[0]), "perf"].iloc[0]
    assert low <= test_perf + 1e-6 and test_perf - 1e-6 <= high


def test_bounds_of_float_noise_around_zero_show_as_zero():
    from hashee.studies.elue.table import score_cell

    reps = np.array([-1e-15, 0.0, 1e-15] * 100)
    assert score_cell(0.0, reps, 0.95) == f"0.00 [0.00, 0.00] {INSIDE}"
