"""The effect of backbones: the backbones table and plot (hashee.measure.backbones), the `backbone=<label>`
setting key, and the backbones experiment's runs in the ELUE table (PLM rows), the hash ablation and the
reference curve."""

import math

import pandas as pd
import pytest

from hashee.core.errors import HasheeError
from hashee.core.methods import get_method
from hashee.core.settings import backbone_label, with_backbone
from hashee.measure.backbones import NO_PAPER_NUMBERS, backbones_table, display_table, write_backbones
from hashee.measure.results import ROW_COLUMNS, write_runs
from hashee.measure.score import reference_from_runs
from hashee.measure.tables import paper_model
from hashee.studies.elue.table import elue_table, hash_ablation_table

FREQ = "hash=frequency,layers=6"


def row(task, method, setting, seed, perf, speedup, split="test"):
    return {"task": task, "method": method, "setting": setting, "seed": seed, "split": split,
            "metric": "acc", "perf": perf, "mflops": 1000.0 / speedup, "speedup": speedup, "wall_ms": math.nan,
            "device": "cpu", "n_instances": 10}


def make_runs():
    # minilm (the config's own backbone, no key): SST-2 HashEE 84/86 (2 seeds) at 4.0x vs static 6L 85 at 2.0x.
    # bert: SST-2 HashEE 80 at 5.0x vs static 6L 82 at 2.0x; MRPC HashEE only.
    return pd.DataFrame([
        row("SST-2", "hashee", FREQ, 1, 84.0, 4.0),
        row("SST-2", "hashee", FREQ, 2, 86.0, 4.0),
        row("SST-2", "static", "layers=6", 1, 85.0, 2.0),
        row("SST-2", "static", "layers=6", 2, 85.0, 2.0),
        row("SST-2", "static", "layers=3", 1, 80.0, 4.0),
        row("SST-2", "hashee", f"backbone=bert,{FREQ}", 1, 80.0, 5.0),
        row("SST-2", "static", "backbone=bert,layers=6", 1, 82.0, 2.0),
        row("SST-2", "static", "backbone=bert,layers=3", 1, 79.0, 4.0),
        row("SST-2", "static", "backbone=distilbert", 1, 83.0, 2.0),
        row("MRPC", "hashee", f"backbone=bert,{FREQ}", 1, 70.0, 4.5),
        row("SST-2", "hashee", FREQ, 1, 99.0, 4.0, split="dev"),  # not the test table's
    ], columns=ROW_COLUMNS)


def test_backbone_key_in_settings_and_methods():
    assert with_backbone(FREQ, "bert") == f"backbone=bert,{FREQ}"
    assert with_backbone(FREQ, None) == FREQ
    assert backbone_label(f"backbone=bert,{FREQ}") == "bert" and backbone_label(FREQ) is None
    with pytest.raises(HasheeError, match="already names a backbone"):
        with_backbone("backbone=bert,layers=6", "roberta")
    # every method takes the key, and it stays in the setting the run's rows carry
    method = get_method("static", "backbone=roberta,layers=3")
    assert method.num_layers == 3 and method.setting_text() == "backbone=roberta,layers=3"
    with pytest.raises(HasheeError, match="unknown setting key"):
        get_method("static", "backbone_name=roberta,layers=3")


def test_backbones_table_per_backbone_and_task():
    points, notes = backbones_table(make_runs(), ["minilm", "bert", "roberta"], "minilm", FREQ, "layers=6")
    assert list(zip(points["backbone"], points["task"])) == [("minilm", "SST-2"), ("bert", "SST-2"), ("bert", "MRPC")]
    own = points.iloc[0]
    assert own["hashee_perf"] == pytest.approx(85.0) and own["hashee_n_seeds"] == 2
    assert own["delta_perf"] == pytest.approx(0.0) and own["delta_speedup"] == pytest.approx(2.0)
    bert = points.iloc[1]
    assert (bert["hashee_perf"], bert["static_perf"]) == (80.0, 82.0)
    assert bert["delta_perf"] == pytest.approx(-2.0) and bert["delta_speedup"] == pytest.approx(3.0)
    assert math.isnan(points.iloc[2]["static_perf"]) and math.isnan(points.iloc[2]["delta_perf"])
    shown = display_table(points)
    assert list(shown.iloc[0][["HashEE perf", "HashEE speed-up", "static perf", "Δ perf (HashEE − static)",
                               "Δ speed-up"]]) == ["85.0 ± 1.41", "4.0×", "85.0 ± 0.00", "+0.0", "+2.0×"]
    assert list(shown.iloc[1][["HashEE perf", "static perf", "Δ perf (HashEE − static)"]]) == ["80.0", "82.0", "-2.0"]
    assert shown.iloc[2]["static perf"] == "–" and shown.iloc[2]["Δ speed-up"] == "–"
    assert NO_PAPER_NUMBERS in notes and any("roberta" in note for note in notes)  # no runs: said so


def test_the_experiment_compares_the_methods_the_registry_names():
    """The compared method is the class with a backbones_setting (HashEE), the reference the is_reference class
    (static); either may be given instead, and the table names them by their classes' labels."""
    from hashee.core.methods import available_methods, backbones_method, reference_method
    from hashee.measure.backbones import compared_methods

    assert compared_methods() == (backbones_method(), reference_method()) == ("hashee", "static")
    assert available_methods()["hashee"].backbones_setting == FREQ
    runs = make_runs()
    runs = pd.concat([runs, pd.DataFrame([row("SST-2", "pabee", "backbone=bert,layers=6,patience=3", 1, 81.0, 2.5)])])
    points, notes = backbones_table(runs, ["bert"], "minilm", "layers=6,patience=3", "layers=6", method="pabee")
    assert points.iloc[0]["pabee_perf"] == 81.0 and points.iloc[0]["delta_perf"] == pytest.approx(-1.0)
    assert "pabee perf" in display_table(points).columns and "of pabee [layers=6,patience=3]" in notes[0]


def test_backbones_table_errors():
    with pytest.raises(HasheeError, match="no backbone labels"):
        backbones_table(make_runs(), [], None, FREQ, "layers=6")
    swept = pd.concat([make_runs(), pd.DataFrame([row("SST-2", "hashee", FREQ, 1, 50.0, 4.0)])])
    with pytest.raises(HasheeError, match="several rows for seed 1"):
        backbones_table(swept, ["minilm"], "minilm", FREQ, "layers=6")


def test_write_backbones_files(tmp_path):
    runs = tmp_path / "runs.csv"
    write_runs(make_runs(), runs)
    paths = write_backbones(runs, tmp_path / "tables", tmp_path / "plots" / "backbones.png", ["minilm", "bert"],
                            "minilm", FREQ, "layers=6", config_name="demo")
    assert sorted(p.name for p in paths) == ["backbones.csv", "backbones.md", "backbones.png", "backbones.tex"]
    assert (tmp_path / "plots" / "backbones.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "tables" / "backbones.md").read_text()
    assert "| bert       | SST-2  | 80.0" in md and NO_PAPER_NUMBERS in md and "Synthetic demo data" in md
    assert r"\begin{tabular}" in (tmp_path / "tables" / "backbones.tex").read_text()
    csv = pd.read_csv(tmp_path / "tables" / "backbones.csv")
    assert csv.loc[csv["backbone"] == "bert", "delta_perf"].iloc[0] == pytest.approx(-2.0)
    assert not list(tmp_path.rglob("*.tmp"))


def test_nothing_written_when_there_is_nothing_to_draw(tmp_path):
    runs = tmp_path / "runs.csv"
    write_runs(make_runs(), runs)
    with pytest.raises(HasheeError, match="no test runs of any backbone"):
        write_backbones(runs, tmp_path / "tables", tmp_path / "plots" / "backbones.png", ["roberta"], None,
                        FREQ, "layers=6")
    assert not (tmp_path / "tables").exists() and not (tmp_path / "plots" / "backbones.png").exists()


def test_elue_table_gains_the_plm_rows_with_the_paper_beside_them():
    runs = make_runs()
    ref = pd.DataFrame({"task": ["SST-2"] * 2, "layers": [3, 6], "perf": [80.0, 85.0], "mflops": [250.0, 500.0],
                        "provenance": "test"})
    table = elue_table(runs[runs["task"] == "SST-2"], ref)
    paper_rows = table[table["row"] == "paper"]
    named = dict(zip(paper_rows["setting"], paper_rows["SST-2"]))
    assert named["BERT-3L"] == "79.3 (4.0×)" and named["DistilBERT"] == "84.8 (2.0×)"
    assert named["ElasticBERT-3L"] == "84.1 (4.0×)"  # the config's own backbone: ElasticBERT by default
    # the paper's HashEE row is HashEE on ElasticBERT: HashEE on BERT gets no paper row
    assert paper_model("hashee", f"backbone=bert,{FREQ}") is None and paper_model("hashee", FREQ) == "HashEE"
    assert list(paper_rows["setting"]).count("HashEE") == 1


def test_hash_ablation_and_reference_keep_to_the_configs_backbone(tmp_path):
    ablation = hash_ablation_table(make_runs(), paper=False)
    assert list(ablation["row"]) == ["ours"] and "setting" not in ablation.columns
    runs = tmp_path / "runs.csv"
    write_runs(make_runs(), runs)
    ref = reference_from_runs(runs, "static")  # backbone=bert,layers=3 is another model, not a second curve
    assert sorted(ref["layers"]) == [3, 6] and ref.loc[ref["layers"] == 3, "perf"].iloc[0] == 80.0
