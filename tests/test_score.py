"""ELUE score: curve interpolation, out-of-range policies, averaging, reference file checks."""

import pandas as pd
import pytest

from hashee.core.errors import HasheeError
from hashee.measure.results import load_paper
from hashee.measure.score import (
    POLICIES,
    describe_policy,
    elue_score,
    paper_score_inconsistency,
    per_task_gaps,
    point_gaps,
    read_reference,
    reference_curve,
    reference_from_runs,
)

# SST-2: (1000, 80) (2000, 84) (3000, 86); MRPC: (1000, 70) (2000, 80) (3000, 82)
REF = pd.DataFrame({
    "task": ["SST-2"] * 3 + ["MRPC"] * 3,
    "layers": [1, 2, 3] * 2,
    "perf": [80.0, 84.0, 86.0, 70.0, 80.0, 82.0],
    "mflops": [1000.0, 2000.0, 3000.0] * 2,
    "provenance": "hand-made test points",
})


def pts(*rows):
    return pd.DataFrame(rows, columns=["task", "perf", "mflops"])


def test_point_on_curve_scores_zero():
    # Midpoints of both SST-2 segments and of one MRPC segment lie exactly on p_EB.
    assert elue_score(pts(("SST-2", 82.0, 1500.0), ("SST-2", 85.0, 2500.0), ("MRPC", 75.0, 1500.0)), REF) == 0.0


def test_reference_model_scores_zero_by_construction():
    # The reference's own static points, every depth on every task.
    points = REF[["task", "perf", "mflops"]]
    for beyond in POLICIES:
        assert elue_score(points, REF, beyond) == 0.0
        assert str(elue_score(points, REF, beyond)) == "0.0"  # not -0.0


def test_interpolation_inside_range():
    curve = reference_curve(REF, "SST-2")
    assert curve(1250.0) == pytest.approx(81.0)
    assert curve(2750.0) == pytest.approx(85.5)
    # 83.0 at 1500 MFLOPs: p_EB = 82 -> +1.00
    assert elue_score(pts(("SST-2", 83.0, 1500.0)), REF) == 1.0
    # 84.2 at 2250: p_EB = 84.5 -> -0.30
    assert elue_score(pts(("SST-2", 84.2, 2250.0)), REF) == -0.3


@pytest.mark.parametrize("beyond, f, p_eb", [
    ("extend", 4000.0, 88.0),  # last segment's slope 2/1000 continued
    ("extend", 500.0, 78.0),  # first segment's slope 4/1000 continued backwards
    ("clamp", 4000.0, 86.0),
    ("clamp", 500.0, 80.0),
])
def test_outside_range_policies(beyond, f, p_eb):
    assert reference_curve(REF, "SST-2")(f, beyond) == pytest.approx(p_eb)
    assert elue_score(pts(("SST-2", 87.0, f)), REF, beyond) == round(87.0 - p_eb, 2)


def test_outside_range_error_policy():
    with pytest.raises(HasheeError, match=r"SST-2.*outside the reference curve's range"):
        elue_score(pts(("SST-2", 87.0, 4000.0)), REF, "error")
    # End points themselves are inside.
    assert elue_score(pts(("SST-2", 86.0, 3000.0), ("SST-2", 80.0, 1000.0)), REF, "error") == 0.0


def test_default_policy_is_extend():
    assert elue_score(pts(("SST-2", 87.0, 4000.0)), REF) == -1.0


def test_unknown_policy_refused():
    with pytest.raises(HasheeError, match="out-of-range policy 'nearest'"):
        elue_score(pts(("SST-2", 87.0, 1500.0)), REF, "nearest")
    with pytest.raises(HasheeError):
        describe_policy("nearest")


def test_describe_policy_one_sentence_each():
    texts = {b: describe_policy(b) for b in POLICIES}
    assert "linear extension" in texts["extend"] and "'extend'" in texts["extend"]
    assert "end point" in texts["clamp"]
    assert "refused" in texts["error"]
    assert all(t.count(". ") == 0 and t.endswith(".") for t in texts.values())


def test_points_averaged_within_task_then_tasks_averaged():
    # SST-2 gaps +1 and +3 (mean 2); MRPC one point, gap -1: (2 + -1)/2 = 0.5, not (1+3-1)/3 = 1.
    points = pts(("SST-2", 83.0, 1500.0), ("SST-2", 88.0, 2500.0), ("MRPC", 74.0, 1500.0))
    gaps = per_task_gaps(points, REF)
    assert list(gaps["task"]) == ["SST-2", "MRPC"]  # task-table order
    assert list(gaps["n_points"]) == [2, 1]
    assert list(gaps["gap"]) == pytest.approx([2.0, -1.0])
    assert elue_score(points, REF) == 0.5


def test_rounding_to_two_decimals():
    assert elue_score(pts(("SST-2", 82.0 + 1 / 3, 1500.0)), REF) == 0.33
    g = point_gaps(pts(("SST-2", 82.0 + 1 / 3, 1500.0)), REF)
    assert g["p_eb"].iloc[0] == pytest.approx(82.0)
    assert g["gap"].iloc[0] == pytest.approx(1 / 3)


def test_duplicate_mflops_are_averaged():
    ref = pd.concat([REF, pd.DataFrame([{"task": "SST-2", "layers": 2, "perf": 86.0, "mflops": 2000.0,
                                         "provenance": "second seed"}])])
    curve = reference_curve(ref, "SST-2")
    assert curve.mflops == (1000.0, 2000.0, 3000.0)
    assert curve.perf == (80.0, 85.0, 86.0)


def test_unsorted_reference_is_sorted_by_mflops():
    curve = reference_curve(REF.iloc[::-1], "MRPC")
    assert curve.mflops == (1000.0, 2000.0, 3000.0) and curve.perf == (70.0, 80.0, 82.0)


def test_single_point_curve():
    ref = REF[(REF["task"] == "SST-2") & (REF["layers"] == 2)]
    curve = reference_curve(ref, "SST-2")
    assert curve(2000.0, "extend") == 84.0
    assert curve(3000.0, "clamp") == 84.0
    with pytest.raises(HasheeError, match="single point"):
        curve(3000.0, "extend")


def test_point_task_missing_from_reference():
    with pytest.raises(HasheeError, match="no points for task.*SciTail"):
        elue_score(pts(("SciTail", 80.0, 1000.0)), REF)


def test_empty_points_refused():
    with pytest.raises(HasheeError, match="no points"):
        elue_score(pts(), REF)


def test_read_reference_missing_task_names_file_and_task(tmp_path):
    path = tmp_path / "reference.csv"
    REF.to_csv(path, index=False)
    ref = read_reference(path, tasks=["SST-2", "MRPC"])
    assert len(ref) == 6 and ref["layers"].dtype == "int64"
    with pytest.raises(HasheeError) as err:
        read_reference(path, tasks=["SST-2", "STS-B", "IMDb"])
    assert str(path) in str(err.value) and "STS-B, IMDb" in str(err.value)
    # Later lookups name the file too.
    with pytest.raises(HasheeError, match=str(path)):
        elue_score(pts(("SNLI", 80.0, 1000.0)), ref)


def test_read_reference_missing_columns_and_bad_values(tmp_path):
    path = tmp_path / "reference.csv"
    REF.drop(columns=["provenance", "mflops"]).to_csv(path, index=False)
    with pytest.raises(HasheeError) as err:
        read_reference(path)
    assert str(path) in str(err.value) and "mflops, provenance" in str(err.value)
    bad = REF.astype({"perf": object})
    bad.loc[1, "perf"] = "n/a"
    bad.to_csv(path, index=False)
    with pytest.raises(HasheeError, match=r"reference.csv:3: column 'perf'"):
        read_reference(path)
    with pytest.raises(HasheeError, match="not found"):
        read_reference(tmp_path / "absent.csv")


def test_paper_scores_not_recomputable_from_table_rows():
    # BERT-3L and ElasticBERT-3L share one cost (4.0x), and ElasticBERT-3L scores 0.00 (on the
    # curve): BERT-3L's score must then be the mean per-task difference. It is not.
    table = load_paper("elue_test")
    bert, elastic = (table[table["model"] == m].set_index("task") for m in ("BERT-3L", "ElasticBERT-3L"))
    assert (bert["speedup"] == elastic["speedup"]).all()
    assert round((bert["perf"] - elastic["perf"]).mean(), 2) == -5.47
    inc = paper_score_inconsistency()
    assert inc.table_gap == -5.47
    assert inc.published_gap == -3.70
    assert inc.table_gap != inc.published_gap


def _static_runs():
    rows = []
    for task, perfs in (("MRPC", (70.0, 80.0, 82.0)), ("SST-2", (80.0, 84.0, 86.0))):
        for layers, perf in zip((1, 2, 3), perfs):
            for seed, jitter in ((1, -0.5), (2, 0.5)):
                rows.append({"task": task, "method": "static", "setting": f"layers={layers}", "seed": seed,
                             "split": "test", "metric": "acc", "perf": perf + jitter, "mflops": 1000.0 * layers,
                             "speedup": 12 / layers, "wall_ms": "", "device": "cpu", "n_instances": 10})
    rows.append({**rows[0], "method": "hashee", "setting": "hash=frequency,layers=6", "perf": 99.0})
    return pd.DataFrame(rows)


def test_reference_from_runs_static_scores_zero(tmp_path):
    runs_path, out = tmp_path / "runs.csv", tmp_path / "reference.csv"
    _static_runs().to_csv(runs_path, index=False)
    ref = reference_from_runs(runs_path, "static", out)
    assert list(ref["task"]) == ["SST-2"] * 3 + ["MRPC"] * 3 and list(ref["layers"]) == [1, 2, 3] * 2
    assert list(ref["perf"]) == [80.0, 84.0, 86.0, 70.0, 80.0, 82.0]  # seed means
    assert ref["provenance"].iloc[0].startswith("measured: static layers 1..3, test split, seeds 1 2")
    back = read_reference(out, tasks=["SST-2", "MRPC"])
    static = _static_runs().query("method == 'static'")
    for layers in (1, 2, 3):  # every static depth, every seed-mean point: 0.00 by construction
        points = static[static["setting"] == f"layers={layers}"].groupby("task", as_index=False)[
            ["perf", "mflops"]].mean()
        assert elue_score(points, back) == 0.0
    assert reference_from_runs(runs_path, provenance="user note")["provenance"].eq("user note").all()


def test_reference_from_runs_errors(tmp_path):
    runs_path = tmp_path / "runs.csv"
    _static_runs().to_csv(runs_path, index=False)
    with pytest.raises(HasheeError, match="no 'pabee' runs"):
        reference_from_runs(runs_path, "pabee")
    runs = _static_runs()
    runs.loc[0, "setting"] = "layers=1,variant=b"  # (backbone=<label> runs are left out: another model)
    runs.to_csv(runs_path, index=False)
    with pytest.raises(HasheeError, match="several static settings with layers=1 on MRPC"):
        reference_from_runs(runs_path)
    runs.loc[0, "setting"] = "width=3"
    runs.to_csv(runs_path, index=False)
    with pytest.raises(HasheeError, match="no integer layers"):
        reference_from_runs(runs_path, out=tmp_path / "ref.csv")
    assert not (tmp_path / "ref.csv").exists()
