"""The official ELUE files as they are: byte-exact excerpts (tests/fixtures/elue/, README.md there) read,
aligned, scored and submitted; then each of their quirks alone, on files written here.

The quirks: a UTF-8 BOM before some headers, CRLF line ends in some files, test_full.tsv written with CSV
quoting that its twin test.tsv lacks (or, where test.tsv is quoted already, a second layer of it), the label
first (MRPC) or last (the others), '-' for MRPC's ids in test_full.tsv.
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr
from test_submit import evaluate_tiny_models

from hashee import cli
from hashee.core.data import comparable_text, read_split
from hashee.core.errors import HasheeError
from hashee.core.tasks import TASKS
from hashee.measure.evaluation import labels_by_test_index
from hashee.studies.elue.score_submission import score_submission
from hashee.studies.elue.validate import validate_submission

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "elue"
FULL = ("SST-2", "MRPC", "STS-B")  # every split; SNLI and SciTail: dev, test, test_full
OFFICIAL = {name: sorted(p.stem for p in (FIXTURE / name).glob("*.tsv")) for name in (*FULL, "SNLI", "SciTail")}


def _data_lines(path: Path) -> list[str]:
    """The file's data lines, decoded independently of hashee's reader."""
    return path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n").rstrip("\n").split("\n")[1:]


def test_the_fixture_keeps_the_official_quirks():
    raw = {(name, split): (FIXTURE / name / f"{split}.tsv").read_bytes() for name, splits in OFFICIAL.items()
           for split in splits}
    assert sorted(k for k, v in raw.items() if v.startswith(b"\xef\xbb\xbf")) == [
        ("MRPC", "dev"), ("MRPC", "train"), ("SNLI", "dev"), ("SNLI", "test")]
    assert sorted(k for k, v in raw.items() if b"\r\n" in v) == [
        ("SNLI", "dev"), ("SNLI", "test"), ("SciTail", "dev"), ("SciTail", "test")]
    assert b'"""A young boy jumping into a pool that says """"no diving""""."""' in raw["STS-B", "test_full"]
    assert b'"A young boy jumping into a pool that says ""no diving""."' in raw["STS-B", "test"]
    assert raw["MRPC", "test_full"].startswith(b"label\t#1 ID\t#2 ID\t") and b"\t-\t-\t" in raw["MRPC", "test_full"]


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_every_official_file_reads(name):
    task = TASKS[name]
    for split in OFFICIAL[name]:
        path = FIXTURE / name / f"{split}.tsv"
        examples = read_split(task, path, split="test" if split == "test" else "dev")
        assert len(examples) == len(_data_lines(path)), split
        texts = [t for e in examples for t in (e.text_a, e.text_b or "")]
        assert not any("\r" in t or "\ufeff" in t for t in texts), split
        if split == "test":
            assert [e.index for e in examples] == [int(line.split("\t")[0]) for line in _data_lines(path)]
        else:
            labels = [line.split("\t")[task.label] for line in _data_lines(path)]
            expected = [float(v) for v in labels] if task.is_regression else [task.labels.index(v) for v in labels]
            assert [e.label for e in examples] == expected, split


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_test_full_aligns_with_test_and_labels_it(name):
    task = TASKS[name]
    gold = labels_by_test_index(task, FIXTURE / name / "test.tsv", FIXTURE / name / "test_full.tsv")
    indices = [int(line.split("\t")[0]) for line in _data_lines(FIXTURE / name / "test.tsv")]
    labels = [line.split("\t")[task.label] for line in _data_lines(FIXTURE / name / "test_full.tsv")]
    assert list(gold) == indices
    assert [str(v) if not task.is_regression else v for v in gold.values()] == \
        [v if not task.is_regression else float(v) for v in labels]


def test_models_read_the_text_raw_in_every_split():
    """Quotes are characters to the model (as GLUE's processors and the reference loaders read them):
    STS-B's CSV-quoted test field reaches it with its quotes; comparable_text is for matching rows only."""
    test = read_split(TASKS["STS-B"], FIXTURE / "STS-B" / "test.tsv", split="test")
    row = next(e for e in test if "no diving" in e.text_a)
    assert row.text_a == '"A young boy jumping into a pool that says ""no diving""."'
    assert comparable_text(row.text_a) == 'A young boy jumping into a pool that says "no diving".'
    mrpc = read_split(TASKS["MRPC"], FIXTURE / "MRPC" / "train.tsv", split="train")
    assert any(e.text_b.startswith("Referring to him as only \" the witness \"") for e in mrpc)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_fixed_predictions_score_as_computed_by_hand(name):
    """Predictions fixed by row (alternating classes; for STS-B the row number): the metric through
    labels_by_test_index equals one computed from the raw labelled lines with scipy."""
    from hashee.core.metrics import compute_metric

    task = TASKS[name]
    gold = labels_by_test_index(task, FIXTURE / name / "test.tsv", FIXTURE / name / "test_full.tsv")
    indices = np.array(list(gold))
    labels = np.array(list(gold.values()))
    raw = [line.split("\t")[task.label] for line in _data_lines(FIXTURE / name / "test_full.tsv")]
    if task.is_regression:
        predictions = np.arange(len(indices), dtype=float)
        truth = np.array([float(v) for v in raw])
        expected = 50 * (pearsonr(predictions, truth)[0] + spearmanr(predictions, truth)[0])
    else:
        predictions = indices % task.num_labels
        truth = np.array([int(v) for v in raw])
        accuracy = 100 * float(np.mean(predictions == truth))
        if task.metric == "acc_f1":
            tp = np.sum((predictions == 1) & (truth == 1))
            f1 = 100 * 2 * tp / (np.sum(predictions == 1) + np.sum(truth == 1))
            expected = (accuracy + f1) / 2
        else:
            expected = accuracy
    assert compute_metric(task, predictions, labels) == pytest.approx(expected, abs=1e-9)


@pytest.fixture(scope="module")
def submitted(tmp_path_factory, minilm):
    """Untrained tiny models on the official excerpts (SST-2 HashEE, the others static), then `hashee submit`."""
    root = tmp_path_factory.mktemp("official")
    data = root / "elue"
    shutil.copytree(FIXTURE, data, ignore=shutil.ignore_patterns("*.py", "*.md"))
    names = list(OFFICIAL)
    models, preds = evaluate_tiny_models(root, data, minilm.tokenizer, names, root)
    out = root / "submission"
    assert cli.main(["submit", "--predictions", *map(str, preds.values()), "--model", *map(str, models.values()),
                     "--out-dir", str(out)]) == 0
    rows = {name: pd.read_csv(root / f"{name}.csv").iloc[0] for name in names}
    return {"root": root, "data": data, "out": out, "names": names, "rows": rows}


def test_a_submission_from_the_official_files_validates_and_scores(submitted):
    names, out = submitted["names"], submitted["out"]
    assert validate_submission(out, submitted["data"], tasks=names) == []
    reference = submitted["root"] / "reference.csv"
    mflops = {name: json.loads((out / name / "flops.json").read_text())["files"][f"{name}_0.tsv"]["mflops"]
              for name in names}
    pd.DataFrame([{"task": name, "layers": layers, "perf": perf, "mflops": mflops[name] * factor,
                   "provenance": "test"} for name in names for layers, perf, factor in ((1, 40.0, 0.5), (2, 70.0, 2.0))]
                 ).to_csv(reference, index=False)
    result = score_submission(out, submitted["data"], reference, tasks=names)
    for name in names:
        row = result.files.set_index("task").loc[name]
        assert row["n_instances"] == len(_data_lines(submitted["data"] / name / "test.tsv"))
        assert row["perf"] == pytest.approx(submitted["rows"][name]["perf"], abs=1e-3)  # what evaluate scored
        assert row["p_eb"] == pytest.approx(50.0, abs=1e-3)
    assert cli.main(["score-submission", str(out), "--data-dir", str(submitted["data"]), "--reference",
                     str(reference), "--tasks", ",".join(names)]) == 0


# --- each quirk alone, on files written here -------------------------------------------------------------

STSB_HEADER = "sentence1\tsentence2\tlabel"
STSB_TEST = ["index\tsentence1\tsentence2", '0\tA man "sings".\tA man plays.', "1\tTwo dogs run.\tA cat sleeps.",
             '2\t"A boy says ""no""."\tA boy talks.']


def _write(path: Path, lines: list[str], bom: bool = False, newline: str = "\n") -> Path:
    path.write_bytes((("\ufeff" if bom else "") + newline.join(lines) + newline).encode("utf-8"))
    return path


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if '"' in text else text


def _labelled(test_lines: list[str], labels: list[str], quote) -> list[str]:
    rows = [line.split("\t")[1:] for line in test_lines[1:]]
    return [STSB_HEADER, *("\t".join([*map(quote, fields), label]) for fields, label in zip(rows, labels))]


@pytest.mark.parametrize("quirk", ["plain", "one layer", "two layers", "bom", "crlf", "spaces"])
def test_each_quirk_alone_aligns(tmp_path, quirk):
    task = TASKS["STS-B"]
    test = _write(tmp_path / "test.tsv", STSB_TEST, bom=quirk == "bom", newline="\r\n" if quirk == "crlf" else "\n")
    quote = {"one layer": _csv, "two layers": lambda t: _csv(_csv(t)), "spaces": lambda t: f"  {t} "}.get(quirk, str)
    full = _write(tmp_path / "test_full.tsv", _labelled(STSB_TEST, ["1.0", "2.5", "4"], quote))
    assert labels_by_test_index(task, test, full) == {0: 1.0, 1: 2.5, 2: 4.0}


def test_the_label_column_is_where_the_task_puts_it(tmp_path):
    """MRPC's labelled files put the label first (and test_full.tsv has '-' ids); STS-B's put it last."""
    test = _write(tmp_path / "test.tsv", ["index\t#1 ID\t#2 ID\t#1 String\t#2 String", "5\t11\t12\tA \" b .\tC d ."])
    full = _write(tmp_path / "test_full.tsv", ["label\t#1 ID\t#2 ID\t#1 String\t#2 String", '1\t-\t-\t"A "" b ."\tC d .'])
    assert labels_by_test_index(TASKS["MRPC"], test, full) == {5: 1}


def test_swapped_rows_are_refused_naming_both_files_and_lines(tmp_path):
    test = _write(tmp_path / "test.tsv", STSB_TEST)
    lines = _labelled(STSB_TEST, ["1.0", "2.5", "4"], _csv)
    full = _write(tmp_path / "test_full.tsv", [lines[0], lines[2], lines[1], lines[3]])
    with pytest.raises(HasheeError, match=rf"^{re.escape(str(full))}:2: text differs from {re.escape(str(test))}:2; the labelled file must list"):
        labels_by_test_index(TASKS["STS-B"], test, full)


@pytest.mark.parametrize("missing", ["labelled", "test"])
def test_a_missing_row_is_refused_naming_the_row_the_other_file_lacks(tmp_path, missing):
    lines = _labelled(STSB_TEST, ["1.0", "2.5", "4"], _csv)
    test = _write(tmp_path / "test.tsv", STSB_TEST[:-1] if missing == "test" else STSB_TEST)
    full = _write(tmp_path / "test_full.tsv", lines[:-1] if missing == "labelled" else lines)
    longer = test if missing == "labelled" else full
    with pytest.raises(HasheeError, match=rf"^{re.escape(str(longer))}:4: a row that .* lacks \((2|3) labelled row\(s\), (3|2) test"):
        labels_by_test_index(TASKS["STS-B"], test, full)


def test_quoting_that_changes_the_text_is_still_a_difference(tmp_path):
    test = _write(tmp_path / "test.tsv", STSB_TEST)
    lines = _labelled(STSB_TEST, ["1.0", "2.5", "4"], _csv)
    full = _write(tmp_path / "test_full.tsv", [*lines[:3], lines[3].replace("no", "yes")])
    with pytest.raises(HasheeError, match=rf"^{re.escape(str(full))}:4: text differs from {re.escape(str(test))}:4"):
        labels_by_test_index(TASKS["STS-B"], test, full)


@pytest.mark.parametrize(("text", "expected"), [
    ('"a ""b"" c"', 'a "b" c'), ('"""a ""b"""""', '"a "b""'), ('" Hello . "', "Hello ."),
    ('" x " said "y"', '" x " said "y"'), ('"a"b"', '"a"b"'), ("a  b\tc", "a b c"), ('""', "")])
def test_comparable_text(text, expected):
    assert comparable_text(text) == expected
