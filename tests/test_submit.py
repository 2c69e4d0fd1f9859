"""ELUE submission: written from real `hashee evaluate` predictions, checked by the validator.

Tiny untrained models (random weights: predictions are meaningless, their format and FLOPs are
what is tested) on the tiny demo data. SST-2 is a real HashEE model (frequency hash, 2 layers), so
its `modules` column carries token-exit layer shapes (n_active < seq_len); the other tasks are
static. `bert_base_flops` (only the speed-up column of evaluate's rows: a 12-layer BERT-base traced
per length) is stubbed to keep the suite fast; predictions and traces come from the real path.
"""

import json
import re
import shutil
import sys
import zipfile

import pytest

from hashee import cli
from hashee.checkpoint import load_trained, save_trained
from hashee.errors import HasheeError
from hashee.flops import FlopCounter, analytic_layer_flops
from hashee.methods import get_method
from hashee.modeling import EncoderConfig
from hashee.submit import (
    MAX_ROW_PROBLEMS,
    check_supported,
    disallowed_imports,
    load_model_file,
    validate_submission,
    write_submission,
    write_zip,
)
from hashee.tasks import TASKS
from hashee.trace import ModuleCall, format_trace, parse_trace

CONFIG = dict(vocab_size=30522, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
META = {"seed": 1, "train_params": {"max_length": 32}}
TEST_ROWS = 4


def _hashee_model(task, tokenizer, data_dir):
    from hashee.data import read_split, task_file
    from hashee.hashing import fit_hash, vocab_fingerprint

    method = get_method("hashee", "hash=frequency,layers=2,buckets=2")
    model = method.build(EncoderConfig(**CONFIG), task)
    train = read_split(task, task_file(data_dir, task.name, "train"))
    ids = [tokenizer(ex.text_a)["input_ids"] for ex in train]
    token_hash = fit_hash("frequency", ids, [ex.label for ex in train], vocab_size=CONFIG["vocab_size"],
                          num_layers=2, num_buckets=2, special_ids=tokenizer.all_special_ids, seed=1,
                          fingerprint=vocab_fingerprint(tokenizer))
    method.attach_hash(model, token_hash)
    return method, model


@pytest.fixture(scope="module")
def sub(tmp_path_factory, minilm):
    """Demo data, one model per task, `hashee evaluate` predictions, `hashee submit` folder + zip."""
    from hashee.demo_data import write_demo_data

    root = tmp_path_factory.mktemp("submission")
    data = write_demo_data(root / "data", size="tiny", sizes={"test": TEST_ROWS})
    models, preds = {}, {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("hashee.evaluation.bert_base_flops", lambda lengths, num_labels, cache=None: [1] * len(lengths))
        for name, task in TASKS.items():
            if name == "SST-2":
                method, model = _hashee_model(task, minilm.tokenizer, data)
            else:
                method = get_method("static", "layers=2")
                model = method.build(EncoderConfig(**CONFIG), task)
            models[name], preds[name] = root / "models" / name, root / "preds" / name
            save_trained(models[name], method, model, minilm.tokenizer, task, meta=META)
            assert cli.main(["evaluate", "--model", str(models[name]), "--data-dir", str(data), "--splits", "test",
                             "--out", str(root / "rows" / f"{name}.csv"), "--predictions", str(preds[name]),
                             "--quiet", "--device", "cpu"]) == 0
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
            assert all(len(p.split(".")[1]) == 3 for p in preds)
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
    assert disallowed_imports("import numpy\nfrom hashee.modeling import Layer\nimport torch.nn\n") == \
        ["hashee", "numpy"]


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
