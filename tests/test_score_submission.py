"""`hashee score-submission`: the ELUE score of a submission folder before the upload.

Two tasks (SST-2 with a real HashEE model, so token-exit traces; STS-B static, a regression task) from
tiny untrained models on the tiny demo data, submitted by `hashee submit` as test_submit.py does. The
scores are checked against `hashee evaluate`'s own test rows and a reference curve built so that
p_EB is known by hand.
"""

import json
import random
import shutil

import pandas as pd
import pytest
from test_submit import evaluate_tiny_models

from hashee import cli
from hashee.core.errors import HasheeError
from hashee.studies.elue.score_submission import score_submission

NAMES = ("SST-2", "STS-B")
TEST_ROWS = 12


@pytest.fixture(scope="module")
def scored(tmp_path_factory, minilm):
    from hashee.studies.elue.data import write_demo_data

    root = tmp_path_factory.mktemp("score")
    data = write_demo_data(root / "data", size="tiny", sizes={"test": TEST_ROWS}, tasks=list(NAMES))
    models, preds = evaluate_tiny_models(root, data, minilm.tokenizer, list(NAMES), root)
    rows = {name: pd.read_csv(root / f"{name}.csv").iloc[0] for name in NAMES}
    out = root / "submission"
    assert cli.main(["submit", "--predictions", *map(str, preds.values()), "--model", *map(str, models.values()),
                     "--out-dir", str(out)]) == 0
    # A reference curve through (m/2, 40) and (2m, 70) at each task's m (flops.json: 6 decimals): p_EB(m) = 50.
    reference = root / "reference.csv"
    mflops = {name: json.loads((out / name / "flops.json").read_text())["files"][f"{name}_0.tsv"]["mflops"]
              for name in NAMES}
    pd.DataFrame([{"task": name, "layers": layers, "perf": perf, "mflops": mflops[name] * factor,
                   "provenance": "test"} for name in NAMES for layers, perf, factor in ((1, 40.0, 0.5), (2, 70.0, 2.0))]
                 ).to_csv(reference, index=False)
    return {"root": root, "data": data, "out": out, "rows": rows, "reference": reference}


def _score(scored, directory=None, **kwargs):
    return score_submission(directory or scored["out"], scored["data"], scored["reference"], tasks=list(NAMES), **kwargs)


def test_score_is_what_evaluate_measured_against_the_curve(scored, capsys):
    result = _score(scored)
    for name in NAMES:
        evaluated = scored["rows"][name]
        row = result.files.set_index("task").loc[name]
        assert row["file"] == f"{name}_0.tsv" and row["n_instances"] == TEST_ROWS
        assert row["perf"] == pytest.approx(evaluated["perf"], abs=1e-3)  # evaluate's rows hold 4 decimals
        assert row["mflops"] == pytest.approx(evaluated["mflops"], abs=1e-4)  # rebuilt from `modules`
        assert row["p_eb"] == pytest.approx(50.0, abs=1e-3)
    expected = sum(scored["rows"][name]["perf"] - 50.0 for name in NAMES) / len(NAMES)
    assert result.tasks["gap"].mean() == pytest.approx(expected, abs=1e-3)
    assert result.score == round(result.tasks["gap"].mean(), 2) and not result.complete

    assert cli.main(["score-submission", str(scored["out"]), "--data-dir", str(scored["data"]),
                     "--reference", str(scored["reference"]), "--tasks", ",".join(NAMES),
                     "--out", str(scored["root"] / "files.csv")]) == 0
    printed = capsys.readouterr().out
    assert f"ELUE score: {result.score:.2f}" in printed and "| SST-2 " in printed and "| STS-B " in printed
    assert "Partial: IMDb, SNLI, SciTail, MRPC not scored" in printed
    assert pd.read_csv(scored["root"] / "files.csv")["file"].tolist() == ["SST-2_0.tsv", "STS-B_0.tsv"]


def test_rows_in_any_order_and_a_zip_score_the_same(scored, tmp_path):
    baseline = _score(scored)
    shuffled = tmp_path / "shuffled"
    shutil.copytree(scored["out"], shuffled)
    for name in NAMES:
        path = shuffled / name / f"{name}_0.tsv"
        header, *rows = path.read_text().splitlines()
        random.Random(3).shuffle(rows)
        path.write_text("\n".join([header, *rows]) + "\n")
    assert _score(scored, shuffled).files["perf"].tolist() == pytest.approx(baseline.files["perf"].tolist())
    zip_path = tmp_path / "submission.zip"
    assert cli.main(["zip-submission", str(scored["out"]), str(zip_path)]) == 0
    assert _score(scored, zip_path).score == baseline.score


def test_files_of_a_task_are_averaged_before_tasks(scored, tmp_path):
    """A second SST-2 file, all predictions flipped: SST-2's gap is the mean of its two files' gaps,
    and each task weighs the same in the score whatever its number of files."""
    folder = tmp_path / "two"
    shutil.copytree(scored["out"], folder)
    sst = folder / "SST-2"
    header, *rows = (sst / "SST-2_0.tsv").read_text().splitlines()
    flipped = ["\t".join([f[0], "1" if f[1] == "0" else "0", f[2]]) for f in (row.split("\t") for row in rows)]
    (sst / "SST-2_1.tsv").write_text("\n".join([header, *flipped]) + "\n")
    flops = json.loads((sst / "flops.json").read_text())
    flops["files"]["SST-2_1.tsv"] = flops["files"]["SST-2_0.tsv"]
    (sst / "flops.json").write_text(json.dumps(flops))
    result = _score(scored, folder)
    files = result.files[result.files["task"] == "SST-2"]
    assert files["perf"].sum() == pytest.approx(100.0)  # flipped binary predictions: acc and 100 - acc
    tasks = result.tasks.set_index("task")
    assert tasks.loc["SST-2", "n_files"] == 2 and tasks.loc["SST-2", "gap"] == pytest.approx(0.0, abs=1e-3)
    # each task weighs the same: the mean of the two task gaps (SST-2's is 0 only to the flops.json rounding)
    assert result.tasks["gap"].mean() == pytest.approx((tasks.loc["SST-2", "gap"] + tasks.loc["STS-B", "gap"]) / 2)


def _one_line_error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hashee score-submission: error: "), err
    return err


def test_wrong_label_file_missing_task_and_reference_are_one_line_errors(scored, tmp_path, capsys):
    base = ["score-submission", str(scored["out"]), "--data-dir", str(scored["data"]),
            "--reference", str(scored["reference"]), "--tasks", ",".join(NAMES)]
    # Labels of STS-B's test rows in another order: the join would score the wrong gold labels.
    labels = tmp_path / "labels"
    shutil.copytree(scored["data"], labels)
    path = labels / "STS-B" / "test_full.tsv"
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header, *reversed(rows)]) + "\n")
    err = _one_line_error(capsys, [*base, "--labels-dir", str(labels)])
    assert f"{path}:2: text differs" in err
    # A labelled file of another task's layout.
    shutil.copy(labels / "SST-2" / "test_full.tsv", path)
    assert str(path) in _one_line_error(capsys, [*base, "--labels-dir", str(labels)])
    # No labelled file at all.
    path.unlink()
    assert f"{path}: labelled test file not found" in _one_line_error(capsys, [*base, "--labels-dir", str(labels)])
    # A task the submission lacks.
    partial = tmp_path / "partial"
    shutil.copytree(scored["out"] / "SST-2", partial / "SST-2")
    err = _one_line_error(capsys, ["score-submission", str(partial), "--data-dir", str(scored["data"]),
                                   "--reference", str(scored["reference"]), "--tasks", ",".join(NAMES)])
    assert "not a valid submission" in err and f"{partial}/STS-B: task STS-B is missing" in err
    # A reference curve without one of the tasks.
    reference = tmp_path / "reference.csv"
    frame = pd.read_csv(scored["reference"])
    frame[frame["task"] == "SST-2"].to_csv(reference, index=False)
    err = _one_line_error(capsys, [*base[:4], "--reference", str(reference), "--tasks", ",".join(NAMES)])
    assert f"{reference}: reference has no points for task(s) STS-B" in err
    with pytest.raises(HasheeError, match="unknown task"):
        score_submission(scored["out"], scored["data"], scored["reference"], tasks=["SST2"])
