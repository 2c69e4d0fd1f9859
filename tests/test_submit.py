"""ELUE submission: written from real `hashee evaluate` predictions, checked by the validator.

Tiny untrained models (random weights: predictions are meaningless, their format and FLOPs are
what is tested) on the tiny demo data. SST-2 is a real HashEE model (frequency hash, 2 layers), so
its `modules` column carries token-exit layer shapes (n_active < seq_len); the other tasks are
static. `bert_base_flops` (only the speed-up column of evaluate's rows: a 12-layer BERT-base traced
per length) is stubbed to keep the suite fast; predictions and traces come from the real path.
"""

import json
import os
import re
import shutil
import sys
import zipfile

import pytest

from hashee import cli
from hashee.core.checkpoint import load_trained, save_trained
from hashee.core.errors import HasheeError
from hashee.core.methods import get_method
from hashee.core.modeling import EncoderConfig
from hashee.core.tasks import TASKS
from hashee.core.trace import ModuleCall, format_trace, parse_trace
from hashee.measure.flops import FlopCounter, analytic_layer_flops
from hashee.studies.elue.submit import (
    check_supported,
    disallowed_imports,
    load_model_file,
    submission_files,
    write_submission,
    write_zip,
)
from hashee.studies.elue.validate import MAX_ROW_PROBLEMS, validate_submission

CONFIG = dict(vocab_size=30522, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
META = {"seed": 1, "train_params": {"max_length": 32}}
TEST_ROWS = 4


def _hashee_model(task, tokenizer, data_dir):
    from hashee.core.data import read_split, task_file
    from hashee.core.hashing import fit_hash, vocab_fingerprint

    method = get_method("hashee", "hash=frequency,layers=2,buckets=2")
    model = method.build(EncoderConfig(**CONFIG), task)
    train = read_split(task, task_file(data_dir, task.name, "train"))
    ids = [tokenizer(ex.text_a)["input_ids"] for ex in train]
    token_hash = fit_hash("frequency", ids, [ex.label for ex in train], vocab_size=CONFIG["vocab_size"],
                          num_layers=2, num_buckets=2, special_ids=tokenizer.all_special_ids, seed=1,
                          fingerprint=vocab_fingerprint(tokenizer))
    method.attach_hash(model, token_hash)
    return method, model


def evaluate_tiny_models(root, data, tokenizer, names, rows_dir):
    """Per task an untrained tiny model (SST-2: HashEE, so token-exit traces; others: static), saved under
    root/models and evaluated on test by `hashee evaluate` (rows_dir/<TASK>.csv, predictions under root/preds)."""
    models, preds = {}, {}
    with pytest.MonkeyPatch.context() as mp:  # the speed-up column only: a BERT-base trace per length
        mp.setattr("hashee.measure.evaluation.bert_base_flops", lambda lengths, num_labels, cache=None: [1] * len(lengths))
        for name in names:
            task = TASKS[name]
            if name == "SST-2":
                method, model = _hashee_model(task, tokenizer, data)
            else:
                method = get_method("static", "layers=2")
                model = method.build(EncoderConfig(**CONFIG), task)
            models[name], preds[name] = root / "models" / name, root / "preds" / name
            save_trained(models[name], method, model, tokenizer, task, meta=META)
            assert cli.main(["evaluate", "--model", str(models[name]), "--data-dir", str(data), "--splits", "test",
                             "--out", str(rows_dir / f"{name}.csv"), "--predictions", str(preds[name]),
                             "--quiet", "--device", "cpu"]) == 0
    return models, preds


@pytest.fixture(scope="module")
def sub(tmp_path_factory, minilm):
    """Demo data, one model per task, `hashee evaluate` predictions, `hashee submit` folder + zip."""
    from hashee.studies.elue.data import write_demo_data

    root = tmp_path_factory.mktemp("submission")
    data = write_demo_data(root / "data", size="tiny", sizes={"test": TEST_ROWS})
    models, preds = evaluate_tiny_models(root, data, minilm.tokenizer, list(TASKS), root / "rows")
    out, zip_path = root / "out", root / "out.zip"
    assert cli.main(["submit", "--predictions", *map(str, preds.values()), "--model", *map(str, models.values()),
                     "--out-dir", str(out), "--zip", str(zip_path)]) == 0
    return {"root": root, "data": data, "models": models, "preds": preds, "out": out, "zip": zip_path}


def _copy_tasks(sub, dest, *names):
    for name in names:
        shutil.copytree(sub["out"] / name, dest / name)
    return dest


def _rows(path):
    lines = path.read_text().splitlines()
    return lines[0], [line.split("\t") for line in lines[1:]]


def _write_rows(path, header, rows):
    path.write_text(header + "\n" + "".join("\t".join(row) + "\n" for row in rows))


def _problems_about(problems, *needles):
    return [p for p in problems if all(n in p for n in needles)]


# ---------------------------------------------------------------- written submission

def test_written_submission_validates_clean(sub, capsys):
    out = sub["out"]
    assert cli.main(["validate-submission", str(out), "--data-dir", str(sub["data"])]) == 0
    assert "submission is valid" in capsys.readouterr().out
    for name in TASKS:
        folder = out / name
        assert sorted(p.name for p in folder.iterdir()) == sorted([f"{name}_0.tsv", "flops.json", "model.py"])
        header, rows = _rows(folder / f"{name}_0.tsv")
        assert header == "index\tpred\tmodules" and len(rows) == TEST_ROWS
        preds = [row[1] for row in rows]
        if name == "STS-B":
            assert all(repr(float(p)) == p for p in preds)  # full precision, not rounded
        else:
            assert set(preds) <= set(TASKS[name].labels)
        flops = json.loads((folder / "flops.json").read_text())
        entry = flops["files"][f"{name}_0.tsv"]
        assert entry["setting"] and entry["n_instances"] == TEST_ROWS and entry["mflops"] > 0
        assert flops["method"] == ("hashee" if name == "SST-2" else "static")
    with zipfile.ZipFile(sub["zip"]) as archive:  # the folder's files, task folders at the zip's root
        files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
        assert sorted(archive.namelist()) == files and len(files) == 3 * len(TASKS)
        assert all(archive.read(name) == (out / name).read_bytes() for name in files)


def test_hashee_traces_have_fewer_active_tokens_and_flops_match_evaluate(sub):
    _, rows = _rows(sub["out"] / "SST-2" / "SST-2_0.tsv")
    layer_calls = [c for row in rows for c in parse_trace(row[2]) if c.name.startswith("layer_")]
    assert any(c.shape[0] < c.shape[1] for c in layer_calls)  # tokens exited: fewer queries than keys
    reported = json.loads((sub["out"] / "SST-2" / "flops.json").read_text())["files"]["SST-2_0.tsv"]["mflops"]
    import pandas as pd
    evaluated = pd.read_csv(sub["root"] / "rows" / "SST-2.csv")["mflops"].iloc[0]
    assert reported == pytest.approx(evaluated, abs=5e-5)  # runs.csv rounds to 4 decimals


def test_model_file_is_self_contained_and_counts_like_ours(sub, monkeypatch):
    path = sub["out"] / "SST-2" / "model.py"
    source = path.read_text()
    assert source.startswith("# WEIGHTS ARE RANDOM")
    assert disallowed_imports(source) == []
    for package in ("hashee", "transformers"):  # an import of either would now fail
        monkeypatch.setitem(sys.modules, package, None)
    module = load_model_file(path)
    monkeypatch.undo()
    assert list(module.module_list) == ["emb", "layer_1", "layer_2", "pooler", "classifier"]
    flops = json.loads((sub["out"] / "SST-2" / "flops.json").read_text())
    assert sum(p.numel() for p in module.entire_model.parameters()) == flops["parameters"]
    trained = load_trained(sub["models"]["SST-2"])
    ours = FlopCounter(trained.method.flop_modules(trained.model))
    theirs = FlopCounter(module.module_list)
    for call in (ModuleCall("emb", (9,)), ModuleCall("layer_2", (3, 9, 32)), ModuleCall("classifier", (32,))):
        assert theirs.call_flops(call) == ours.call_flops(call)
    assert theirs.call_flops(ModuleCall("layer_1", (3, 9, 32))) == analytic_layer_flops(3, 9, 32, 64, 2)
    assert disallowed_imports("import numpy\nfrom hashee.core.modeling import Layer\nimport torch.nn\n") == \
        ["hashee", "numpy"]


def _submitted_preds(folder, name):
    _, rows = _rows(folder / name / f"{name}_0.tsv")
    return {int(row[0]): row[1] for row in rows}


def test_stsb_submission_scores_what_evaluate_scored(sub):
    """A scorer reading the submission gets exactly the score of the in-memory predictions."""
    import numpy as np

    from hashee.core.data import load_task, task_file
    from hashee.core.metrics import compute_metric
    from hashee.measure.evaluation import evaluate_sweep, labels_by_test_index

    task, data = TASKS["STS-B"], sub["data"]
    trained = load_trained(sub["models"]["STS-B"])
    test_set = load_task(task.name, data, trained.tokenizer, META["train_params"]["max_length"], splits=("test",))["test"]
    result = evaluate_sweep(trained.method, trained.model, test_set, trained.method.inference_settings()[:1],
                            trained.tokenizer.pad_token_id)[0]
    gold = labels_by_test_index(task, task_file(data, task.name, "test"), data / task.name / "test_full.tsv")
    in_memory = compute_metric(task, result.predictions, [gold[int(i)] for i in result.index])
    submitted = _submitted_preds(sub["out"], task.name)
    assert len(set(submitted.values())) > 1  # not a constant prediction: rounding would change the score
    from_file = compute_metric(task, np.array([float(submitted[i]) for i in sorted(gold)]),
                               [gold[i] for i in sorted(gold)])
    assert from_file == in_memory
    import pandas as pd
    assert pd.read_csv(sub["root"] / "rows" / "STS-B.csv")["perf"].iloc[0] == round(in_memory, 4)


def test_zip_is_byte_reproducible_and_holds_only_what_elue_reads(sub, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(sub["out"], first)
    shutil.copytree(sub["out"], second)
    (second / ".snakemake_timestamp").write_text("")  # what a Snakemake directory() output carries
    (second / "MRPC" / ".DS_Store").write_bytes(b"\0")
    (second / "MRPC" / "notes.txt").write_text("not for ELUE")
    (second / "MRPC" / "MRPC_0.tsv.bak").write_text("not for ELUE")
    (second / "scratch").mkdir()
    (second / "scratch" / "SST-2_0.tsv").write_text("not in a task folder")
    for path in second.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    write_zip(first, tmp_path / "first.zip")
    names = write_zip(second, tmp_path / "second.zip")
    assert (tmp_path / "first.zip").read_bytes() == (tmp_path / "second.zip").read_bytes()
    expected = sorted(f"{name}/{file}" for name in TASKS for file in (f"{name}_0.tsv", "flops.json", "model.py"))
    assert names == expected == submission_files(second)
    with zipfile.ZipFile(tmp_path / "second.zip") as archive:
        assert archive.namelist() == expected
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert cli.main(["zip-submission", str(second), str(tmp_path / "cli.zip")]) == 0  # the workflow's rule
    assert (tmp_path / "cli.zip").read_bytes() == (tmp_path / "first.zip").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.zip", "first", "first.zip", "second", "second.zip"]
    assert validate_submission(tmp_path / "cli.zip", sub["data"]) == []
    capsys.readouterr()
    assert cli.main(["zip-submission", str(tmp_path / "scratch-only"), str(tmp_path / "x.zip")]) == 2
    assert capsys.readouterr().err.strip() == f"hashee zip-submission: error: {tmp_path / 'scratch-only'}: submission folder not found"
    with pytest.raises(HasheeError, match="no submission files"):
        write_zip(second / "scratch", tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_test_labels_join_by_index_not_row_order(tmp_path):
    """test_full.tsv has no index column: its row i labels test.tsv's row i, whatever that row's index."""
    import numpy as np

    from hashee.measure.evaluation import SplitResult, labels_by_test_index, score_test_labels

    task = TASKS["SST-2"]
    sentences, labels, indices = ["a b", "c d", "e f", "g h"], ["0", "1", "1", "0"], [1002, 1000, 1003, 1001]
    test_file, labels_file = tmp_path / "test.tsv", tmp_path / "test_full.tsv"
    test_file.write_text("index\tsentence\n" + "".join(f"{i}\t{t}\n" for i, t in zip(indices, sentences)))
    labels_file.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(sentences, labels)))
    gold = labels_by_test_index(task, test_file, labels_file)
    assert gold == {1002: 0, 1000: 1, 1003: 1, 1001: 0}
    order = [1000, 1001, 1002, 1003]  # predictions in another order than the file's, each right
    right = SplitResult(np.array([1, 0, 0, 1]), np.full(4, -1), np.array(order), traces=[])
    assert score_test_labels(task, right, gold, test_file) == 100.0
    wrong = SplitResult(np.array([0, 1, 1, 0]), np.full(4, -1), np.array(order), traces=[])  # row-order labels
    assert score_test_labels(task, wrong, gold, test_file) == 0.0
    with pytest.raises(HasheeError, match=rf"^{re.escape(str(test_file))}: no row with index 7,"):
        score_test_labels(task, SplitResult(np.array([1]), np.full(1, -1), np.array([7]), traces=[]), gold, test_file)

    labels_file.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(sentences[::-1], labels)))
    with pytest.raises(HasheeError, match=rf"^{re.escape(str(labels_file))}:2: text differs from "
                                          rf"{re.escape(str(test_file))}:2;"):
        labels_by_test_index(task, test_file, labels_file)
    labels_file.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(sentences[:3], labels)))
    with pytest.raises(HasheeError, match=rf"^{re.escape(str(test_file))}:5: a row that {re.escape(str(labels_file))} "
                                          r"lacks \(3 labelled row\(s\), 4 test row\(s\)\)"):
        labels_by_test_index(task, test_file, labels_file)


def test_test_labels_are_read_once_per_evaluation_not_once_per_sweep_point(sub, tmp_path, minilm, monkeypatch):
    import pandas as pd

    from hashee.measure import evaluation

    task = TASKS["MRPC"]
    method = get_method("deebert", "layers=2")  # a sweep of entropy thresholds: several points per model
    assert len(method.inference_settings()) > 1
    save_trained(tmp_path / "model", method, method.build(EncoderConfig(**CONFIG), task), minilm.tokenizer, task,
                 meta=META)
    reads, read_labels = [], evaluation.labels_by_test_index
    monkeypatch.setattr(evaluation, "labels_by_test_index", lambda *args: reads.append(args) or read_labels(*args))
    monkeypatch.setattr(evaluation, "bert_base_flops", lambda lengths, num_labels, cache=None: [1] * len(lengths))
    result = evaluation.evaluate_trained(tmp_path / "model", sub["data"], tmp_path / "rows.csv", device="cpu")
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert len(reads) == 1
    assert result.rows["perf"].tolist() == rows["perf"].tolist()
    test_rows = rows[rows["split"] == "test"]
    assert len(test_rows) == len(method.inference_settings()) and test_rows["perf"].notna().all()


def test_reindexed_test_set_scores_and_submits_by_index(sub, tmp_path):
    """Indices not 0..n-1 in file order (reversed, from 1000): evaluate and the submission follow them."""
    name = "STS-B"
    data = tmp_path / "data"
    shutil.copytree(sub["data"] / name, data / name)
    test_file = data / name / "test.tsv"
    header, *lines = test_file.read_text(encoding="utf-8-sig").splitlines()
    new_index = [1000 + k for k in reversed(range(len(lines)))]
    old_index = [int(line.split("\t")[0]) for line in lines]
    test_file.write_text("\n".join([header, *(f"{i}\t{line.split(chr(9), 1)[1]}" for i, line in zip(new_index, lines))])
                         + "\n")
    preds, rows, out = tmp_path / "preds", tmp_path / "rows.csv", tmp_path / "out"
    assert cli.main(["evaluate", "--model", str(sub["models"][name]), "--data-dir", str(data), "--splits", "test",
                     "--out", str(rows), "--predictions", str(preds), "--quiet", "--device", "cpu"]) == 0
    import pandas as pd
    assert pd.read_csv(rows)["perf"].iloc[0] == pd.read_csv(sub["root"] / "rows" / f"{name}.csv")["perf"].iloc[0]
    assert cli.main(["submit", "--predictions", str(preds), "--model", str(sub["models"][name]),
                     "--out-dir", str(out)]) == 0
    before, after = _submitted_preds(sub["out"], name), _submitted_preds(out, name)
    assert {new: after[new] for new in new_index} == {new: before[old] for new, old in zip(new_index, old_index)}
    assert validate_submission(out, data, tasks=[name]) == []


# ---------------------------------------------------------------- problems found

def test_missing_tasks_are_named(sub, tmp_path, capsys):
    only = _copy_tasks(sub, tmp_path / "sub", "MRPC")
    problems = validate_submission(only, sub["data"])
    assert len(problems) == 5
    for name in TASKS:
        assert bool(_problems_about(problems, f"task {name} is missing")) == (name != "MRPC")
    assert validate_submission(only, sub["data"], tasks=["MRPC"]) == []
    assert cli.main(["validate-submission", str(only), "--data-dir", str(sub["data"])]) == 1
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == problems  # one line per problem


def test_dropped_row_and_wrong_index(sub, tmp_path):
    dest = _copy_tasks(sub, tmp_path / "sub", "MRPC")
    tsv = dest / "MRPC" / "MRPC_0.tsv"
    header, rows = _rows(tsv)
    _write_rows(tsv, header, rows[:-1])
    problems = validate_submission(dest, sub["data"], tasks=["MRPC"])
    assert _problems_about(problems, "MRPC_0.tsv", f"{TEST_ROWS - 1} prediction row(s)", f"has {TEST_ROWS}")
    assert _problems_about(problems, "MRPC_0.tsv", "without a prediction", rows[-1][0])

    rows[2][0] = "999"
    _write_rows(tsv, header, rows)
    problems = validate_submission(dest, sub["data"], tasks=["MRPC"])
    assert _problems_about(problems, "MRPC/MRPC_0.tsv:4:", "index 999 is not in MRPC's test set")


def test_duplicate_index_and_unparseable_modules_are_one_line_each(sub, tmp_path):
    dest = _copy_tasks(sub, tmp_path / "sub", "MRPC")
    tsv = dest / "MRPC" / "MRPC_0.tsv"
    header, rows = _rows(tsv)
    rows[2][0] = rows[0][0]
    _write_rows(tsv, header, rows)
    problems = validate_submission(dest, sub["data"], tasks=["MRPC"])
    assert f"{dest}/MRPC/MRPC_0.tsv:4: duplicate index {rows[0][0]} (first on line 2)" in problems
    assert all("\n" not in p for p in problems)

    _, rows = _rows(sub["out"] / "MRPC" / "MRPC_0.tsv")
    rows[1][2] = "[" + rows[1][2][1:]  # '(12),emb; ...' -> '[12),emb; ...'
    _write_rows(tsv, header, rows)
    problems = validate_submission(dest, sub["data"], tasks=["MRPC"])
    call = rows[1][2].split(";")[0].strip()
    assert problems == [f"{dest}/MRPC/MRPC_0.tsv:3: modules: cannot parse module call {call!r} "
                        f"(expected '(d1,d2,...),name')"]


def test_classification_pred_outside_label_set(sub, tmp_path):
    dest = _copy_tasks(sub, tmp_path / "sub", "MRPC")
    tsv = dest / "MRPC" / "MRPC_0.tsv"
    header, rows = _rows(tsv)
    rows[0][1], rows[1][1] = "2", "1.0"
    _write_rows(tsv, header, rows)
    problems = validate_submission(dest, sub["data"], tasks=["MRPC"])
    assert problems == [f"{dest}/MRPC/MRPC_0.tsv:2: MRPC prediction '2' is not one of its labels 0, 1",
                        f"{dest}/MRPC/MRPC_0.tsv:3: MRPC prediction '1.0' is not one of its labels 0, 1"]


def test_stsb_pred_must_be_a_finite_float(sub, tmp_path):
    dest = _copy_tasks(sub, tmp_path / "sub", "STS-B")
    tsv = dest / "STS-B" / "STS-B_0.tsv"
    header, rows = _rows(tsv)
    rows[0][1], rows[1][1], rows[2][1] = "high", "nan", "5.200"  # outside [0, 5] is accepted
    _write_rows(tsv, header, rows)
    problems = validate_submission(dest, sub["data"], tasks=["STS-B"])
    assert problems == [f"{dest}/STS-B/STS-B_0.tsv:2: STS-B prediction 'high' is not a number",
                        f"{dest}/STS-B/STS-B_0.tsv:3: STS-B prediction 'nan' is not finite"]


def test_unknown_module_and_bad_columns(sub, tmp_path):
    dest = _copy_tasks(sub, tmp_path / "sub", "MRPC")
    tsv = dest / "MRPC" / "MRPC_0.tsv"
    header, rows = _rows(tsv)
    rows[1][2] += "; (32),exit_1"
    _write_rows(tsv, header, rows)
    problems = validate_submission(dest, sub["data"], tasks=["MRPC"])
    assert len(problems) == 1 and _problems_about(problems, "MRPC_0.tsv:3:", "exit_1", "module_list")

    _write_rows(tsv, "index\tprediction\tmodules", rows)
    problems = validate_submission(dest, sub["data"], tasks=["MRPC"])
    assert _problems_about(problems, "MRPC_0.tsv:1:", "expected exactly index | pred | modules")


def test_row_problems_are_capped(sub, tmp_path):
    dest = _copy_tasks(sub, tmp_path / "sub", "MRPC")
    tsv = dest / "MRPC" / "MRPC_0.tsv"
    header, rows = _rows(tsv)
    rows = [[row[0], "7", row[2]] for row in rows] * 3
    _write_rows(tsv, header, rows)
    problems = validate_submission(dest, sub["data"], tasks=["MRPC"])
    row_lines = [p for p in problems if re.search(r"MRPC_0\.tsv:\d+:", p)]
    assert len(row_lines) == MAX_ROW_PROBLEMS
    assert _problems_about(problems, "more row problem(s) not shown")


def test_tampered_flops_json_is_a_mismatch(sub, tmp_path):
    dest = _copy_tasks(sub, tmp_path / "sub", "IMDb")
    folder = dest / "IMDb"
    shutil.copy(folder / "IMDb_0.tsv", folder / "IMDb_1.tsv")  # same rows: same true FLOPs
    flops = json.loads((folder / "flops.json").read_text())
    true = flops["files"]["IMDb_0.tsv"]["mflops"]
    flops["files"]["IMDb_0.tsv"]["mflops"] = true * 1.005  # within 1 %
    flops["files"]["IMDb_1.tsv"] = {"mflops": true * 1.05}
    (folder / "flops.json").write_text(json.dumps(flops))
    problems = validate_submission(dest, sub["data"], tasks=["IMDb"])
    assert len(problems) == 1 and _problems_about(problems, "IMDb_1.tsv", "FLOPs mismatch", "-4.76 %")


def test_token_exit_row_rebuilds_our_flops(sub, tmp_path):
    """A hand-written hashee-like row: layer_2 ran on fewer active tokens than the sequence length."""
    dest = _copy_tasks(sub, tmp_path / "sub", "MRPC")
    tsv = dest / "MRPC" / "MRPC_0.tsv"
    header, rows = _rows(tsv)
    trace = list(parse_trace(rows[0][2]))
    length = trace[0].shape[0]
    trace[2] = ModuleCall("layer_2", (length // 3, length, 32))
    rows[0][2] = format_trace(tuple(trace))
    _write_rows(tsv, header, rows)
    flops_file = dest / "MRPC" / "flops.json"
    flops = json.loads(flops_file.read_text())
    before = flops["files"]["MRPC_0.tsv"]["mflops"]

    trained = load_trained(sub["models"]["MRPC"])
    counter = FlopCounter(trained.method.flop_modules(trained.model))
    ours = counter.mean_mflops(parse_trace(row[2]) for row in rows)
    saved = analytic_layer_flops(length, length, 32, 64, 2) - analytic_layer_flops(length // 3, length, 32, 64, 2)
    assert ours == pytest.approx(before - saved / TEST_ROWS / 1e6, rel=1e-9)
    assert [p for p in validate_submission(dest, sub["data"], tasks=["MRPC"]) if "FLOPs mismatch" in p]
    flops["files"]["MRPC_0.tsv"]["mflops"] = ours
    flops_file.write_text(json.dumps(flops))
    assert validate_submission(dest, sub["data"], tasks=["MRPC"]) == []


def test_broken_model_file_and_missing_parts(sub, tmp_path):
    dest = _copy_tasks(sub, tmp_path / "sub", "MRPC", "IMDb")
    (dest / "MRPC" / "model.py").write_text("import torch\nraise RuntimeError('boom')\n")
    (dest / "IMDb" / "flops.json").unlink()
    (dest / "IMDb" / "IMDb_0.tsv").rename(dest / "IMDb" / "IMDb_0.txt")
    (dest / "sst2").mkdir()
    problems = validate_submission(dest, sub["data"], tasks=["MRPC", "IMDb"])
    assert _problems_about(problems, "MRPC/model.py", "fails to execute: RuntimeError: boom")
    assert _problems_about(problems, "IMDb/flops.json", "missing")
    assert _problems_about(problems, "IMDb", "no prediction file")
    assert _problems_about(problems, "sst2", "not an ELUE task")
    write_zip(dest, tmp_path / "sub.zip")  # a zip is checked like its folder, paths shown inside it
    assert validate_submission(tmp_path / "sub.zip", sub["data"], tasks=["MRPC", "IMDb"]) == \
        [p.replace(str(dest), str(tmp_path / "sub.zip")) for p in problems if "sst2" not in p]  # empty: not zipped
    assert validate_submission(tmp_path / "nowhere", sub["data"]) == [f"{tmp_path / 'nowhere'}: submission folder (or zip) not found"]
    with pytest.raises(HasheeError, match="data dir not found"):
        validate_submission(dest, tmp_path / "no-data")


# ---------------------------------------------------------------- writing fails cleanly

def test_failed_write_leaves_nothing(sub, tmp_path):
    out, zip_path = tmp_path / "out", tmp_path / "out.zip"
    bad_model = tmp_path / "not-a-model"
    bad_model.mkdir()
    with pytest.raises(HasheeError, match="no meta.json"):
        write_submission([sub["preds"]["MRPC"], sub["preds"]["STS-B"]], [sub["models"]["MRPC"], bad_model],
                         out, zip_path=zip_path)
    assert not out.exists() and not zip_path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["not-a-model"]  # no temporary left behind

    out.mkdir()
    (out / "keep").write_text("previous submission")
    with pytest.raises(HasheeError, match="wrong model for these predictions"):  # HashEE preds, static model
        write_submission([sub["preds"]["SST-2"]], [sub["models"]["MRPC"]], out)
    with pytest.raises(HasheeError, match=r"point00\.tsv:2: MRPC prediction .* not a label index"):
        write_submission([sub["preds"]["STS-B"]], [sub["models"]["MRPC"]], out)
    assert [p.name for p in out.iterdir()] == ["keep"]
    with pytest.raises(HasheeError, match="second model for task MRPC"):
        write_submission([sub["preds"]["MRPC"]] * 2, [sub["models"]["MRPC"]] * 2, tmp_path / "dup")
    with pytest.raises(HasheeError, match="one predictions dir per model dir"):
        write_submission([sub["preds"]["MRPC"]], [], tmp_path / "x")
    assert cli.main(["submit", "--predictions", str(sub["preds"]["MRPC"]), "--model", str(bad_model),
                     "--out-dir", str(tmp_path / "y")]) == 2


def test_methods_with_other_modules_fail_loudly():
    from torch import nn

    method = get_method("static", "layers=2")
    model = method.build(EncoderConfig(**CONFIG), TASKS["MRPC"])
    check_supported(method, model)  # the plain encoder is fine
    plain = method.flop_modules

    def with_exit(m):
        return {**plain(m), "exit_1": nn.Linear(32, 2)}

    method.flop_modules = with_exit
    with pytest.raises(HasheeError, match="method static: .*exit_1.*submission_source"):
        check_supported(method, model)


def test_flops_cache_from_evaluate_gives_the_same_submission(sub, tmp_path):
    """The workflow passes the train jobs' FLOPs cache to `submit`: same counts, not recounted."""
    name, cache = "SST-2", tmp_path / "flops-cache"
    assert cli.main(["evaluate", "--model", str(sub["models"][name]), "--data-dir", str(sub["data"]), "--splits", "test",
                     "--out", str(tmp_path / "rows.csv"), "--flops-cache", str(cache), "--quiet", "--device", "cpu"]) == 0
    assert list(cache.glob("*.json"))
    out = tmp_path / "out"
    assert cli.main(["submit", "--predictions", str(sub["preds"][name]), "--model", str(sub["models"][name]),
                     "--out-dir", str(out), "--flops-cache", str(cache)]) == 0
    assert (out / name / "flops.json").read_text() == (sub["out"] / name / "flops.json").read_text()
