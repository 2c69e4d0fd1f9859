"""Result rows (read/gather/settings), the ELUE and hash-ablation tables, and the Pareto plots."""

import math

import pandas as pd
import pytest

from hashee.core.errors import HasheeError
from hashee.core.settings import natural_key
from hashee.measure.plots import pareto_plots, pareto_points
from hashee.measure.results import (
    ROW_COLUMNS,
    format_setting,
    gather,
    load_paper,
    parse_setting,
    read_runs,
    split_setting,
    write_runs,
)
from hashee.measure.tables import DELTA, PAPER_ONLY, paper_model
from hashee.studies.elue.table import elue_table, hash_ablation_table, table_notes, write_tables

REF = pd.DataFrame({
    "task": ["SST-2"] * 3 + ["MRPC"] * 3,
    "layers": [1, 2, 3] * 2,
    "perf": [80.0, 84.0, 86.0, 70.0, 80.0, 82.0],
    "mflops": [1000.0, 2000.0, 3000.0] * 2,
    "provenance": "measured: static minilm layers 1..3, config demo",
})
FREQ = "hash=frequency,layers=6"


def row(task, method, setting, seed, perf, mflops, speedup, split="test", **extra):
    metric = "acc_f1" if task == "MRPC" else "acc"
    return {"task": task, "method": method, "setting": setting, "seed": seed, "split": split, "metric": metric,
            "perf": perf, "mflops": mflops, "speedup": speedup, "wall_ms": math.nan, "device": "cpu",
            "n_instances": 10, **extra}


def make_runs():
    # hashee: two tasks, two seeds. SST-2 84.5 ± 0.71 at 2500 MFLOPs (gap -0.5), 5.2x;
    # MRPC 83.5 ± 0.71 at 1500 (p_EB 75, gap +8.5), 4.6x -> ELUE (−0.5 + 8.5)/2 = 4.00.
    # pabee: SST-2 only, one seed -> no std, "–" on MRPC, no score.
    # hashee hash=mi: SST-2 only, one seed (an ablation row).
    return pd.DataFrame([
        row("SST-2", "hashee", FREQ, 1, 84.0, 2500.0, 5.0),
        row("SST-2", "hashee", FREQ, 2, 85.0, 2500.0, 5.4),
        row("MRPC", "hashee", FREQ, 1, 83.0, 1500.0, 4.6),
        row("MRPC", "hashee", FREQ, 2, 84.0, 1500.0, 4.6),
        row("SST-2", "pabee", "layers=6,patience=3", 1, 83.0, 2000.0, 3.0),
        row("SST-2", "hashee", "hash=mi,layers=6", 1, 86.0, 2800.0, 3.2),
        row("SST-2", "hashee", FREQ, 1, 90.0, 2500.0, 5.0, split="dev"),  # not on the test table
    ], columns=ROW_COLUMNS)


def by_row(table, method, kind, setting=None):
    hits = table[(table["method"] == method) & (table["row"] == kind)]
    if setting is not None:
        hits = hits[hits["setting"] == setting]
    assert len(hits) == 1, hits
    return hits.iloc[0]


# --- result rows -------------------------------------------------------------------------------

def test_setting_round_trip_and_errors():
    assert parse_setting("hash=frequency,layers=6") == {"hash": "frequency", "layers": "6"}
    assert parse_setting("") == {} and parse_setting(float("nan")) == {}
    for s in ["layers=6,patience=3", "patience=3,layers=6", "b=1,a=2"]:
        assert format_setting(parse_setting(s)) == s  # order kept, not sorted
    assert format_setting({"layers": 6, "threshold": 0.5, "flag": True}) == "layers=6,threshold=0.5,flag=true"
    assert split_setting("layers=6,patience=3", ("patience",)) == ("layers=6", "patience=3")
    assert split_setting("layers=6,patience=3", ()) == ("layers=6,patience=3", "")
    for bad in ["layers", "layers=6,,patience=3", "a=1,a=2", "=3", "a="]:
        with pytest.raises(HasheeError):
            parse_setting(bad)
    with pytest.raises(HasheeError):
        format_setting({"hash": "a,b"})


def test_read_runs_missing_columns_named(tmp_path):
    path = tmp_path / "runs.csv"
    make_runs().drop(columns=["mflops", "speedup"]).to_csv(path, index=False)
    with pytest.raises(HasheeError) as err:
        read_runs(path)
    assert str(path) in str(err.value) and "mflops, speedup" in str(err.value)
    with pytest.raises(HasheeError, match="not found"):
        read_runs(tmp_path / "absent.csv")


def test_write_read_runs_round_trip(tmp_path):
    path = tmp_path / "runs.csv"
    runs = make_runs()
    write_runs(runs, path)
    back = read_runs(path)
    assert list(back.columns) == ROW_COLUMNS
    assert back["seed"].dtype == "int64" and back["wall_ms"].isna().all()
    pd.testing.assert_series_equal(back["perf"], runs["perf"])


def test_gather_joins_batch_one_timings(tmp_path):
    runs = make_runs()
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    runs.iloc[:3].to_csv(a, index=False)
    runs.iloc[3:].to_csv(b, index=False)
    times = tmp_path / "time.csv"
    pd.DataFrame([
        {"task": "SST-2", "method": "hashee", "setting": FREQ, "seed": 1, "batch_size": 1, "wall_ms": 7.5,
         "device": "NVIDIA H100", "dtype": "float32"},
        {"task": "SST-2", "method": "hashee", "setting": FREQ, "seed": 1, "batch_size": 32, "wall_ms": 99.0,
         "device": "NVIDIA H100", "dtype": "float32"},
    ]).to_csv(times, index=False)
    out = tmp_path / "out" / "runs.csv"
    gathered = gather([b, a], [times], out)
    assert out.is_file() and len(gathered) == len(runs)
    assert list(gathered["task"].drop_duplicates()) == ["SST-2", "MRPC"]  # task-table order
    timed = gathered[(gathered["task"] == "SST-2") & (gathered["method"] == "hashee")
                     & (gathered["setting"] == FREQ) & (gathered["seed"] == 1)]
    assert list(timed["wall_ms"]) == [7.5, 7.5]  # dev and test rows of that model; batch 1, not 32
    assert set(timed["device"]) == {"NVIDIA H100"}
    assert gathered["wall_ms"].isna().sum() == len(runs) - 2
    pd.testing.assert_frame_equal(read_runs(out), gathered)


def test_gather_errors(tmp_path):
    runs = make_runs()
    a = tmp_path / "a.csv"
    runs.to_csv(a, index=False)
    with pytest.raises(HasheeError, match="duplicate result row"):
        gather([a, a], [], tmp_path / "runs.csv")
    bad = tmp_path / "bad.csv"
    runs.drop(columns=["split"]).to_csv(bad, index=False)
    with pytest.raises(HasheeError, match=r"bad.csv.*split"):
        gather([a, bad], [], tmp_path / "runs.csv")
    times = tmp_path / "time.csv"
    pd.DataFrame([{"task": "SST-2", "method": "hashee", "setting": "hash=frequency", "seed": 1,
                   "batch_size": 1, "wall_ms": 1.0, "device": "cpu", "dtype": "float32"}]).to_csv(times, index=False)
    with pytest.raises(HasheeError, match="matches no result row"):
        gather([a], [times], tmp_path / "runs.csv")
    assert not (tmp_path / "runs.csv").exists()
    with pytest.raises(HasheeError, match="no rows files"):
        gather([], [], tmp_path / "runs.csv")


# --- ELUE table ---------------------------------------------------------------------------------

def test_paper_model_mapping():
    assert paper_model("hashee", FREQ) == "HashEE"
    assert paper_model("hashee", "hash=mi,layers=6") is None and paper_model("hashee", "hash=frequency") is None
    assert paper_model("static", "layers=3") == "ElasticBERT-3L"  # default backbone: ElasticBERT
    assert paper_model("static", "layers=3,backbone=bert-base-uncased") == "BERT-3L"
    assert paper_model("static", "layers=3", backbone="roberta-base") == "RoBERTa-3L"
    assert paper_model("static", "layers=6") is None
    assert paper_model("berxit", "backbone=bert") == "BERxiT w/ BERT"
    assert paper_model("berxit", "") == "BERxiT w/ ElasticBERT"
    assert paper_model("static", "layers=3,backbone=minilm") is None


def test_elue_table_cells_paper_and_delta():
    table = elue_table(make_runs(), REF)
    assert list(table.columns) == ["method", "setting", "row", "SST-2", "MRPC", "ELUE score"]
    ours = by_row(table, "hashee", "ours", FREQ)
    assert ours["SST-2"] == "84.5 ± 0.71 (5.2×)"
    assert ours["MRPC"] == "83.5 ± 0.71 (4.6×)"
    # ± the std of the per-seed scores: seed 1 (−1 + 8)/2 = 3.5, seed 2 (0 + 9)/2 = 4.5.
    assert ours["ELUE score"] == "4.00 ± 0.71"
    paper = by_row(table, "hashee", "paper")
    assert (paper["setting"], paper["SST-2"], paper["MRPC"], paper["ELUE score"]) == \
        ("HashEE", "85.5 (4.8×)", "84.0 (4.8×)", "1.20")
    delta = by_row(table, "hashee", DELTA)
    assert (delta["SST-2"], delta["MRPC"], delta["ELUE score"]) == ("-1.0 (+0.4×)", "-0.5 (-0.2×)", "+2.80")

    pabee = by_row(table, "pabee", "ours")
    assert pabee["setting"] == "layers=6 [patience=*]"
    assert pabee["SST-2"] == "83.0 (3.0×)"  # one seed: no std
    assert pabee["MRPC"] == "–" and pabee["ELUE score"] == "–"
    # The paper's PABEE ran on BERT-base: this run (no backbone key: ElasticBERT) gets no paper row under it,
    # and the paper's row is shown at the end, "paper only".
    assert not len(table[(table["method"] == "pabee") & (table["row"] == "paper")])
    only = by_row(table, "pabee", PAPER_ONLY)
    assert (only["setting"], only["MRPC"], only["ELUE score"]) == ("PABEE", "75.2 (3.5×)", "-1.31")
    # Order: baselines before HashEE; paper and Δ rows right under their model; paper-only rows last.
    assert list(table["row"][:4]) == ["ours", "ours", "paper", DELTA] and table["method"].iloc[0] == "pabee"
    kinds = list(table["row"])
    assert kinds.index(PAPER_ONLY) == len(kinds) - kinds.count(PAPER_ONLY)


def test_every_paper_row_is_in_the_table_and_a_class_claims_its_own():
    """All of the paper's ELUE rows appear: under our model where one maps to it, else "paper only" with the
    method whose class's paper_rows name it (blank while no class does); a newly registered class's
    paper_rows are picked up without naming it anywhere."""
    from hashee.core.methods import METHODS, Method, available_methods

    paper = list(dict.fromkeys(load_paper("elue_test")["model"]))
    table = elue_table(make_runs(), REF)
    shown = table[table["row"].isin(["paper", PAPER_ONLY])]
    assert sorted(shown["setting"]) == sorted(paper)
    claimed = {row: m for m, cls in available_methods().items() for _, _, row in cls.paper_rows}
    for record in table[table["row"] == PAPER_ONLY].to_dict("records"):
        assert record["method"] == claimed.get(record["setting"], ""), record
    assert by_row(table, "pabee", PAPER_ONLY)["setting"] == "PABEE"

    # Every paper row has a class today: take one away, see its row lose the owner, then a new class claim it.
    row = "TinyBERT"
    owner = claimed[row]
    owner_cls = METHODS._classes.pop(owner)

    class Claims(Method):
        name = "claims-a-paper-row"
        paper_rows = ((None, "", row),)

    try:
        orphaned = elue_table(make_runs(), REF)
        assert orphaned[orphaned["setting"] == row]["method"].tolist() == [""]
        METHODS.register(Claims)
        again = elue_table(make_runs(), REF)
        assert by_row(again, "claims-a-paper-row", PAPER_ONLY)["setting"] == row
    finally:
        METHODS._classes.pop(Claims.name, None)
        METHODS._classes[owner] = owner_cls


def test_rows_name_their_backbone_when_the_table_has_several():
    """A baseline on BERT (backbone=bert) and on the config's own backbone: a backbone column names each row's;
    the paper's PABEE (BERT-base) stands under the BERT run only."""
    runs = pd.concat([make_runs(), pd.DataFrame([
        row("SST-2", "pabee", "backbone=bert,layers=6,patience=3", 1, 82.0, 2000.0, 3.1),
        row("MRPC", "pabee", "backbone=bert,layers=6,patience=3", 1, 74.0, 2000.0, 3.2),
    ], columns=ROW_COLUMNS)])
    table = elue_table(runs, REF, own_backbone="elasticbert")
    assert list(table.columns[:4]) == ["method", "backbone", "setting", "row"]
    bert = by_row(table, "pabee", "ours", "backbone=bert,layers=6 [patience=*]")
    own = by_row(table, "pabee", "ours", "layers=6 [patience=*]")
    assert (bert["backbone"], own["backbone"]) == ("bert", "elasticbert")
    paper = by_row(table, "pabee", "paper")
    assert (paper["backbone"], paper["setting"], paper["SST-2"]) == ("bert", "PABEE", "83.1 (2.9×)")
    assert by_row(table, "pabee", DELTA)["SST-2"] == "-1.1 (+0.2×)"
    assert not len(table[table["row"] == PAPER_ONLY].query("setting == 'PABEE'"))
    assert set(table["backbone"]) >= {"bert", "elasticbert"}
    # one backbone: no column (the demo's tables)
    assert "backbone" not in elue_table(make_runs(), REF, own_backbone="elasticbert").columns


def test_elue_table_without_paper_rows():
    table = elue_table(make_runs(), REF, paper=False)
    assert set(table["row"]) == {"ours"} and len(table) == 3


@pytest.mark.parametrize("values", [("0.6", "0.55"), ("0.01", "0.001"), ("1e-2", "1e-3")])
def test_a_tie_on_dev_goes_to_the_numerically_smallest_sweep_value(values):
    """Two thresholds with the same dev gap: the smaller value wins whatever their text or input order
    (as text, 0.55 sorts after 0.6 and 0.001 next to 0.01)."""
    larger, smaller = (f"layers=6,threshold={v}" for v in values)
    runs = pd.DataFrame([
        row("SST-2", "deebert", larger, 1, 84.0, 2000.0, 3.0),
        row("SST-2", "deebert", smaller, 1, 80.0, 2000.0, 3.0),
        row("SST-2", "deebert", larger, 1, 86.0, 2000.0, 3.0, split="dev"),
        row("SST-2", "deebert", smaller, 1, 86.0, 2000.0, 3.0, split="dev"),
    ], columns=ROW_COLUMNS)
    table = elue_table(runs, REF, paper=False)
    assert by_row(table, "deebert", "ours")["SST-2"] == "80.0 (3.0×)"
    assert any(f"SST-2 threshold={values[1]}" in n for n in table.attrs["notes"])


def test_natural_key_orders_numbers_by_value():
    texts = ["threshold=0.9", "threshold=0.55", "threshold=0.6", "threshold=0.5", "lr=0.01", "lr=0.001",
             "patience=10", "patience=3", "x=1e-4", "x=-0.5", "rand-cons", "ElasticBERT-12L", "ElasticBERT-3L"]
    assert sorted(texts, key=natural_key) == [
        "ElasticBERT-3L", "ElasticBERT-12L", "lr=0.001", "lr=0.01", "patience=3", "patience=10", "rand-cons",
        "threshold=0.5", "threshold=0.55", "threshold=0.6", "threshold=0.9", "x=-0.5", "x=1e-4"]


def test_elue_table_sweep_best_point_chosen_on_dev():
    s3, s4 = "layers=6,patience=3", "layers=6,patience=4"
    runs = pd.DataFrame([
        # test: patience=4 is better (gap -0.4 vs -1.0) ...
        row("SST-2", "pabee", s3, 1, 83.0, 2000.0, 3.0),
        row("SST-2", "pabee", s4, 1, 84.6, 2500.0, 2.5),
        # ... but dev picks patience=3 (gap +2.0 vs 0.0): the shown point is not selected on test.
        row("SST-2", "pabee", s3, 1, 86.0, 2000.0, 3.0, split="dev"),
        row("SST-2", "pabee", s4, 1, 85.0, 2500.0, 2.5, split="dev"),
    ], columns=ROW_COLUMNS)
    table = elue_table(runs, REF, paper=False)
    ours = by_row(table, "pabee", "ours")
    assert ours["SST-2"] == "83.0 (3.0×)"
    assert ours["ELUE score"] == "-1.00" and ours["ELUE (all points)"] == "-0.70"
    assert any("SST-2 patience=3" in n for n in table.attrs["notes"])

    fallback = elue_table(runs[runs["split"] == "test"], REF, paper=False)
    ours = by_row(fallback, "pabee", "ours")
    assert ours["SST-2"] == "84.6 (2.5×)†" and ours["ELUE score"] == "-0.40"
    assert any("† chosen on test" in n for n in fallback.attrs["notes"])
    on_test = elue_table(runs, REF, paper=False, select_on="test")
    assert by_row(on_test, "pabee", "ours")["SST-2"] == "84.6 (2.5×)"  # asked for: no † mark


def plugin_sweep_runs():
    """docs/examples/fixed_exit.py's sweep (key `exit`, declared on its class), two points per split."""
    return pd.DataFrame([
        row(task, "fixed-exit", f"layers=2,exit={k}", 1, perf + k, 1000.0 * k, 6.0 / k, split=split)
        for task, perf in (("SST-2", 80.0), ("MRPC", 75.0)) for split in ("test", "dev") for k in (1, 2)
    ], columns=ROW_COLUMNS)


def test_plugin_sweep_is_one_model_in_the_table_and_the_plot(fixed_exit_plugin):
    runs = plugin_sweep_runs()
    table = elue_table(runs, REF, paper=False)
    ours = table[(table["method"] == "fixed-exit") & (table["row"] == "ours")]
    assert list(ours["setting"]) == ["layers=2 [exit=*]"]  # one model, its sweep a curve
    assert ours["ELUE (all points)"].iloc[0] != "–"
    points = pareto_points(runs)
    assert set(points["model"]) == {"fixed-exit layers=2"}  # one plot line per task
    assert points.groupby("task").size().to_dict() == {"SST-2": 2, "MRPC": 2}


def test_unregistered_method_names_the_runs_file_and_the_plugins_key(tmp_path):
    runs = pd.concat([make_runs(), plugin_sweep_runs()], ignore_index=True)  # no plugin loaded
    runs_path, ref_path = write_inputs(tmp_path, runs=runs)
    with pytest.raises(HasheeError, match="fixed-exit") as err:
        write_tables(runs_path, ref_path, tmp_path / "tables")
    assert str(runs_path) in str(err.value) and "`plugins`" in str(err.value)
    with pytest.raises(HasheeError, match="fixed-exit"):
        pareto_plots(runs, REF, tmp_path / "plots")
    assert not (tmp_path / "tables").exists() and not (tmp_path / "plots").exists()


def test_elue_table_reference_missing_task():
    with pytest.raises(HasheeError, match="no points for task.*MRPC"):
        elue_table(make_runs(), REF[REF["task"] == "SST-2"])


def test_elue_table_policy_error_raises_for_out_of_range():
    runs = pd.DataFrame([row("SST-2", "static", "layers=6", 1, 90.0, 6000.0, 2.0)], columns=ROW_COLUMNS)
    assert by_row(elue_table(runs, REF), "static", "ours")["ELUE score"] == "-2.00"  # extend: p_EB 92
    assert by_row(elue_table(runs, REF, "clamp"), "static", "ours")["ELUE score"] == "4.00"
    with pytest.raises(HasheeError, match="outside"):
        elue_table(runs, REF, "error")


# --- hash ablation --------------------------------------------------------------------------------

def test_hash_ablation_table():
    table = hash_ablation_table(make_runs())
    assert list(table.columns) == ["hash", "layers", "row", "SST-2", "SNLI", "MRPC", "speed-up"]
    assert list(table["row"]) == ["ours", "paper: ElasticBERT-6L", DELTA] * 2
    freq = table.iloc[0]
    assert (freq["hash"], freq["layers"], freq["SST-2"], freq["SNLI"], freq["MRPC"], freq["speed-up"]) == \
        ("frequency", "6", "84.5 ± 0.71", "–", "83.5 ± 0.71", "4.9×")
    paper = table.iloc[1]
    assert (paper["hash"], paper["SST-2"], paper["SNLI"], paper["MRPC"], paper["speed-up"]) == \
        ("Frequency", "85.5 ± 0.41", "89.6", "84.0 ± 0.27", "4.9×")  # SNLI std not published
    delta = table.iloc[2]
    assert (delta["SST-2"], delta["SNLI"], delta["MRPC"], delta["speed-up"]) == ("-1.0", "–", "-0.5", "+0.0×")
    mi = table.iloc[3:]
    assert list(mi["hash"]) == ["mi", "MI", "MI"]
    assert list(mi["SST-2"]) == ["86.0", "85.5 ± 0.49", "+0.5"]
    assert list(mi["speed-up"]) == ["3.2×", "3.3×", "-0.1×"]


def test_hash_ablation_without_hashee_runs():
    runs = make_runs()
    table = hash_ablation_table(runs[runs["method"] == "pabee"])
    assert len(table) == 0 and any("No 'hashee' runs" in n for n in table.attrs["notes"])


# --- writing ------------------------------------------------------------------------------------

def write_inputs(tmp_path, runs=None, ref=None):
    runs_path, ref_path = tmp_path / "runs.csv", tmp_path / "reference.csv"
    (make_runs() if runs is None else runs).to_csv(runs_path, index=False)
    (REF if ref is None else ref).to_csv(ref_path, index=False)
    return runs_path, ref_path


def test_write_tables_markdown_csv_latex(tmp_path):
    runs_path, ref_path = write_inputs(tmp_path)
    out = tmp_path / "tables"
    paths = write_tables(runs_path, ref_path, out, beyond="clamp", config_name="demo")
    assert sorted(p.name for p in paths) == sorted(f"{s}.{e}" for s in ("elue", "hash_ablation")
                                                   for e in ("md", "csv", "tex"))
    md = (out / "elue.md").read_text()
    for text in ["84.5 ± 0.71 (5.2×)", "83.0 (3.0×)", "| –", "85.5 (4.8×)", "-1.0 (+0.4×)", "+2.80",
                 DELTA, "policy 'clamp'", "Synthetic demo data", "not comparable with the paper",
                 "measured: static minilm layers 1..3, config demo", "-5.47", "-3.70"]:
        assert text in md, text
    ablation_md = (out / "hash_ablation.md").read_text()
    assert "85.5 ± 0.41" in ablation_md and "policy 'clamp'" in ablation_md and "-5.47" in ablation_md

    table = elue_table(make_runs(), REF, "clamp")
    back = pd.read_csv(out / "elue.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, table.astype(str).reset_index(drop=True), check_dtype=False)

    tex = (out / "elue.tex").read_text()
    assert r"\begin{tabular}" in tex and r"84.5 $\pm$ 0.71 (5.2$\times$)" in tex
    assert "±" not in tex.split(r"\end{tabular}")[0] and "% " in tex
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


def test_notes_for_real_config():
    notes = table_notes(REF, "extend", config_name="elue")
    assert not any("Synthetic" in n for n in notes)
    assert any("linear extension" in n for n in notes)


def test_write_tables_errors_leave_out_dir_unchanged(tmp_path):
    out = tmp_path / "tables"
    out.mkdir()
    (out / "elue.md").write_text("previous")
    runs_path, ref_path = write_inputs(tmp_path, runs=make_runs().drop(columns=["perf", "device"]))
    with pytest.raises(HasheeError) as err:
        write_tables(runs_path, ref_path, out)
    assert str(runs_path) in str(err.value) and "perf, device" in str(err.value)
    runs_path, ref_path = write_inputs(tmp_path, ref=REF[REF["task"] == "MRPC"])
    with pytest.raises(HasheeError, match="SST-2"):
        write_tables(runs_path, ref_path, out)
    runs_path, ref_path = write_inputs(tmp_path)
    with pytest.raises(HasheeError, match="policy"):
        write_tables(runs_path, ref_path, out, beyond="nearest")
    assert [p.name for p in out.iterdir()] == ["elue.md"] and (out / "elue.md").read_text() == "previous"
    with pytest.raises(HasheeError):
        write_tables(runs_path, ref_path, tmp_path / "fresh", beyond="nearest")
    assert not (tmp_path / "fresh").exists()


def test_paper_tables_ship_with_package():
    assert set(load_paper("elue_test.csv")["model"]) >= {"HashEE", "PABEE", "ElasticBERT-3L"}
    with pytest.raises(HasheeError, match="paper table"):
        load_paper("glue")


# --- plots ----------------------------------------------------------------------------------------

def test_pareto_plots_write_pngs(tmp_path):
    paths = pareto_plots(make_runs(), REF, tmp_path / "plots")
    assert [p.name for p in paths] == ["pareto_SST-2.png", "pareto_MRPC.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["pareto_MRPC.png", "pareto_SST-2.png"]


# --- speed-up column ------------------------------------------------------------------------------

def _hand_layer_flops(n_active, length, hidden, intermediate, heads):
    """One transformer layer in ELUE's convention (a multiply-add is 1 FLOP), n_active query tokens
    attending over `length` tokens."""
    head_dim = hidden // heads
    query, key_value = n_active * hidden * hidden, 2 * length * hidden * hidden
    per_head = (n_active * length  # scaling
                + head_dim * n_active * length  # scores
                + n_active * length  # softmax
                + n_active * length * head_dim)  # context
    attention_output = n_active * hidden * hidden
    feed_forward = n_active * hidden * intermediate + n_active * intermediate * hidden
    layer_norms = 2 * (2 * n_active * hidden)  # two LayerNorms, 2 per element
    return query + key_value + heads * per_head + attention_output + feed_forward + layer_norms


def _hand_model_flops(lengths_and_active, hidden, intermediate, heads, num_labels):
    length = lengths_and_active[0]
    embeddings = 2 * length * hidden  # the embedding LayerNorm; lookups are free
    layers = sum(_hand_layer_flops(n, length, hidden, intermediate, heads) for n in lengths_and_active[1:])
    return embeddings + layers + hidden * hidden + hidden * num_labels  # + pooler + classifier


def test_cost_summary_speedup_against_a_hand_count():
    """The speed-up column: 12-layer BERT-base FLOPs over ours, summed over instances (a ratio of
    sums, not a mean of ratios); BERT-base is counted by hand here, bert_base_flops is not stubbed."""
    from hashee.core.methods import get_method
    from hashee.core.modeling import EncoderConfig
    from hashee.core.tasks import TASKS
    from hashee.core.trace import ModuleCall
    from hashee.measure.evaluation import cost_summary
    from hashee.measure.flops import FlopCounter

    hidden, intermediate, heads, task = 32, 64, 2, TASKS["SNLI"]  # 3 labels
    method = get_method("static", "layers=2")
    model = method.build(EncoderConfig(vocab_size=100, hidden_size=hidden, num_layers=2, num_heads=heads,
                                       intermediate_size=intermediate), task)
    counter = FlopCounter(method.flop_modules(model))
    instances = [(5, 5, 5), (9, 9, 4)]  # (length, active tokens in layer 1, in layer 2): the second exits tokens
    traces = [(ModuleCall("emb", (length,)),
               *(ModuleCall(f"layer_{i}", (n, length, hidden)) for i, n in enumerate(active, start=1)),
               ModuleCall("pooler", (hidden,)), ModuleCall("classifier", (hidden,)))
              for length, *active in instances]
    ours = [_hand_model_flops(instance, hidden, intermediate, heads, task.num_labels) for instance in instances]
    bert_base = [_hand_model_flops((length,) * 13, 768, 3072, 12, task.num_labels) for length, *_ in instances]
    mflops, speedup = cost_summary(counter, traces, task.num_labels)
    assert mflops == pytest.approx(sum(ours) / len(ours) / 1e6, rel=1e-12)
    assert speedup == pytest.approx(sum(bert_base) / sum(ours), rel=1e-12)
    assert speedup != pytest.approx(sum(b / o for b, o in zip(bert_base, ours)) / len(ours), rel=1e-6)
