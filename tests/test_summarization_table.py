"""The summarization table: speed-ups against `full`, paper rows and Δ, errors, the CLI verb."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from hashee.cli import main
from hashee.core.errors import HasheeError
from hashee.studies.summarization.table import (
    PAPER_DATASETS,
    RUN_COLUMNS,
    paper_model,
    read_summ_runs,
    summarization_table,
)

ROOT = Path(__file__).resolve().parents[1]

HEADER = ",".join(RUN_COLUMNS)
# Two seeds on CNN/DM (BART-large): per-seed encoder speed-ups of HashEE 10/4 = 2.5 and 10/2 = 5
# (mean 3.75), total 15/9 and 15/7 (mean 1.905), time per instance 10/5 = 2 both seeds.
# Reddit: one seed, no timing. demo-en: synthetic, no paper row.
ROWS = f"""{HEADER}
cnndm,facebook/bart-large,full,,1,test,44.0,21.0,40.0,10,5,15,60,3,10.0,cuda:NVIDIA H100,100
cnndm,facebook/bart-large,full,,2,test,44.2,21.2,40.4,10,5,15,60,3,10.0,cuda:NVIDIA H100,100
cnndm,facebook/bart-large,hashee,hash=frequency,1,test,41.0,18.0,37.0,4,5,9,60,3,5.0,cuda:NVIDIA H100,100
cnndm,facebook/bart-large,hashee,hash=frequency,2,test,41.2,18.4,37.6,2,5,7,61,3,5.0,cuda:NVIDIA H100,100
cnndm,facebook/bart-large,hashee,hash=frequency,1,dev,50,30,45,1,1,2,60,0,5.0,cuda:NVIDIA H100,100
reddit,facebook/bart-large,full,,1,test,29.0,9.0,23.0,8,4,12,30,0,,,50
reddit,facebook/bart-large,dat,threshold=0.9,1,test,27.0,8.5,22.0,8,2,10,30,0,,,50
demo-en,minilm-seq2seq,full,,7,test,60,40,55,0.4,0.2,0.6,8,1,2.0,cpu:x86,8
demo-en,minilm-seq2seq,truncated,enc_layers=3,7,test,50,30,45,0.2,0.2,0.4,8,1,1.0,cpu:x86,8
"""


@pytest.fixture
def rows_file(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(ROWS)
    return path


def _row(table, dataset, method, row="ours"):
    hit = table[(table["dataset"] == dataset) & (table["method"] == method) & (table["row"] == row)]
    assert len(hit) == 1, (dataset, method, row)
    return hit.iloc[0]


def test_speedups_and_seed_means(rows_file):
    table = summarization_table(read_summ_runs([rows_file]))
    hashee = _row(table, "CNN/DM", "hashee")
    assert (hashee["ROUGE-1"], hashee["ROUGE-2"], hashee["ROUGE-L"]) == ("41.10 ± 0.14", "18.20 ± 0.28", "37.30 ± 0.42")
    assert (hashee["enc ×"], hashee["dec ×"], hashee["total ×"], hashee["time ×"]) == ("3.8×", "1.0×", "1.9×", "2.0×")
    assert hashee["gen. tokens"] == "60.5"
    full = _row(table, "CNN/DM", "full")
    assert (full["enc ×"], full["total ×"], full["time ×"]) == ("1.0×", "1.0×", "1.0×")
    dat = _row(table, "Reddit", "dat")
    assert (dat["ROUGE-1"], dat["dec ×"], dat["total ×"], dat["time ×"]) == ("27.00", "2.0×", "1.2×", "–")
    demo = _row(table, "demo-en", "truncated")
    assert (demo["enc ×"], demo["total ×"], demo["time ×"]) == ("2.0×", "1.5×", "2.0×")
    # The paper's row order: datasets Reddit, CNN/DM, then ours; methods full, DAT, truncated, HashEE.
    ours = table[table["row"] == "ours"]
    assert list(zip(ours["dataset"], ours["method"])) == [
        ("Reddit", "full"), ("Reddit", "dat"), ("CNN/DM", "full"), ("CNN/DM", "hashee"),
        ("demo-en", "full"), ("demo-en", "truncated")]


def test_paper_rows_and_delta(rows_file):
    table = summarization_table(read_summ_runs([rows_file]))
    paper = _row(table, "CNN/DM", "hashee", "paper")
    assert paper["setting"] == "HashEE w/ BART"
    assert (paper["ROUGE-1"], paper["ROUGE-L"], paper["enc ×"], paper["total ×"]) == ("41.04", "37.65", "3.3×", "1.8×")
    delta = _row(table, "CNN/DM", "hashee", "Δ (ours − paper)")
    # 41.10 - 41.04, 18.20 - 18.41, 37.30 - 37.65; 3.8 - 3.3, 1.9 - 1.8 (displayed values)
    assert (delta["ROUGE-1"], delta["ROUGE-2"], delta["ROUGE-L"]) == ("+0.06", "-0.21", "-0.35")
    assert (delta["enc ×"], delta["dec ×"], delta["total ×"], delta["time ×"]) == ("+0.5×", "+0.0×", "+0.1×", "–")
    assert _row(table, "Reddit", "dat", "paper")["ROUGE-2"] == "8.89"
    assert set(table[table["dataset"] == "demo-en"]["row"]) == {"ours"}  # synthetic: no paper or Δ rows
    notes = " ".join(table.attrs["notes"])
    assert "rougeLsum" in notes and "FLOPs or time" in notes and "cuda:NVIDIA H100, cpu:x86" in notes
    assert "demo-en: synthetic" in notes and "cnndm hashee [hash=frequency]: 3 of 100 test sources truncated" in notes
    no_paper = summarization_table(read_summ_runs([rows_file]), paper=False)
    assert set(no_paper["row"]) == {"ours"}


def test_paper_model_names():
    assert paper_model("full", "", "facebook/bart-large") == "BART"
    assert paper_model("full", "", "fnlp/cpt-large") == "CPT"
    assert paper_model("truncated", "enc_layers=6,dec_layers=6", "fnlp/cpt-large") is None  # CPT-6L keeps 4
    assert paper_model("truncated", "enc_layers=3,dec_layers=3", "facebook/bart-large") is None
    assert paper_model("hashee", "hash=mi", "fnlp/cpt-large") == "HashEE w/ CPT"
    assert paper_model("dat", "threshold=0.9", "facebook/bart-large") == "DAT"
    assert paper_model("pabee", "", "facebook/bart-large") is None


def test_every_truncated_setting_of_the_paper_config_is_its_paper_row():
    """With the very settings config/paper.yaml plans: each dataset's truncated model is the paper's
    BART-6L or CPT-6L row, and the paper lists that row for that dataset."""
    summ = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["summarization"]
    paper = pd.read_csv(ROOT / "hashee" / "paper" / "summarization.csv")
    seen = set()
    for name, dataset in summ["datasets"].items():
        for setting in dataset.get("methods", summ["methods"])["truncated"]:
            model = paper_model("truncated", setting, dataset["backbone"])
            assert model is not None, (name, setting)
            assert ((paper["model"] == model) & (paper["dataset"] == PAPER_DATASETS[name])).any(), (name, model)
            seen.add(model)
    assert seen == {"BART-6L", "CPT-6L"}


def test_missing_full_run_names_the_dataset(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(line for line in ROWS.splitlines() if not line.startswith("reddit,facebook/bart-large,full")))
    with pytest.raises(HasheeError, match=r"^dataset reddit: no 'full' run \(backbone facebook/bart-large, seed 1"):
        summarization_table(read_summ_runs([path]))


@pytest.mark.parametrize("extra, message", [
    ("cnndm,facebook/bart-large,full,,1,test,1,1,1,1,1,1,1,0,,,100", r"duplicate row .*rows\.csv:2, .*extra\.csv:2"),
    ("cnndm,facebook/bart-large,full,big,1,test,1,1,1,1,1,1,1,0,,,100", r"several 'full' runs"),
    ("xsum,facebook/bart-large,full,,1,test,1,1,1,1,1,1,1,0,,,100", r"unknown summarization dataset 'xsum'"),
    ("demo-en,minilm-seq2seq,hashee,,7,test,1,1,1,1,1,1,1,0,,,9", r"extra\.csv:2: hashee on demo-en has n=9"),
    ("demo-en,minilm-seq2seq,dat,,7,test,1,1,1,0,1,1,1,0,,,8", r"extra\.csv:2: column 'enc_gflops' must be > 0"),
    ("demo-en,minilm-seq2seq,dat,,7,test,x,1,1,1,1,1,1,0,,,8", r"extra\.csv:2: column 'rouge1' needs a number"),
])
def test_bad_rows(rows_file, tmp_path, extra, message):
    path = tmp_path / "extra.csv"
    path.write_text(f"{HEADER}\n{extra}\n")
    with pytest.raises(HasheeError, match=message):
        summarization_table(read_summ_runs([rows_file, path]))


def test_summ_table_verb(rows_file, tmp_path, capsys):
    prefix = tmp_path / "tables" / "summarization"
    assert main(["summ-table", "--runs", str(rows_file), "--out-prefix", str(prefix)]) == 0
    md = (tmp_path / "tables" / "summarization.md").read_text()
    assert "HashEE w/ BART" in md and "- English ROUGE" in md
    tex = (tmp_path / "tables" / "summarization.tex").read_text()
    assert r"\begin{tabular}" in tex and r"3.8$\times$" in tex
    csv = pd.read_csv(tmp_path / "tables" / "summarization.csv", dtype=str, keep_default_na=False)
    assert list(csv.columns[:5]) == ["dataset", "backbone", "method", "setting", "row"]
    missing = tmp_path / "no.csv"
    assert main(["summ-table", "--runs", str(missing), "--out-prefix", str(prefix)]) == 2
    assert f"{missing}: summarization rows file not found" in capsys.readouterr().err


CSL_TWO_BACKBONES = f"""{HEADER}
csl,fnlp/cpt-large,full,,1,test,65.0,53.0,62.0,10,4,14,30,0,,,50
csl,fnlp/cpt-large,hashee,hash=frequency,1,test,62.0,49.0,59.0,4,4,8,30,0,,,50
csl,fnlp/bart-large-chinese,full,backbone=bart,1,test,64.0,52.0,61.0,12,6,18,30,0,,,50
"""


def test_a_dataset_on_two_backbones_gets_each_backbones_paper_row(tmp_path):
    """CSL on CPT and on the Chinese BART (a more_backbones entry: backbone=bart): each backbone's full
    model is its own speed-up base and gets its own paper row, BART's 64.49/52.48/61.81."""
    path = tmp_path / "rows.csv"
    path.write_text(CSL_TWO_BACKBONES)
    table = summarization_table(read_summ_runs([path]))
    ours = table[(table["dataset"] == "CSL") & (table["row"] == "ours")]
    assert list(zip(ours["backbone"], ours["method"])) == [
        ("fnlp/bart-large-chinese", "full"), ("fnlp/cpt-large", "full"), ("fnlp/cpt-large", "hashee")]
    bart = table[(table["dataset"] == "CSL") & (table["backbone"] == "fnlp/bart-large-chinese")]
    assert list(bart["row"]) == ["ours", "paper", "Δ (ours − paper)"]
    paper = bart.iloc[1]
    assert (paper["setting"], paper["ROUGE-1"], paper["ROUGE-2"], paper["ROUGE-L"]) == ("BART", "64.49", "52.48", "61.81")
    assert bart.iloc[0]["enc ×"] == "1.0×" and bart.iloc[2]["ROUGE-1"] == "-0.49"
    cpt = table[(table["dataset"] == "CSL") & (table["backbone"] == "fnlp/cpt-large") & (table["row"] == "paper")]
    assert list(cpt["setting"]) == ["CPT", "HashEE w/ CPT"]
    # TTNews' BART (53.84/38.09/49.85) is not run here: the paper's row is still shown, "paper only".
    only = table[(table["dataset"] == "TTNews") & (table["setting"] == "BART")]
    assert list(only["row"]) == ["paper only"] and only.iloc[0]["method"] == "full"
    assert (only.iloc[0]["ROUGE-1"], only.iloc[0]["ROUGE-2"], only.iloc[0]["ROUGE-L"]) == ("53.84", "38.09", "49.85")


def test_every_paper_row_is_in_the_summarization_table(rows_file):
    """Each (model, dataset) of the paper's table appears once: as the paper row under ours, or "paper only"."""
    table = summarization_table(read_summ_runs([rows_file]))
    published = pd.read_csv(ROOT / "hashee" / "paper" / "summarization.csv")
    shown = table[table["row"].isin(["paper", "paper only"]) & (table["setting"] != "–")]
    assert sorted(zip(shown["setting"], shown["dataset"])) == sorted(zip(published["model"], published["dataset"]))
    kinds = list(table["row"])
    assert kinds.index("paper only") == len(kinds) - kinds.count("paper only")  # after ours
    assert summarization_table(read_summ_runs([rows_file]), paper=False)["row"].eq("ours").all()
