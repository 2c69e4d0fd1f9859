"""The rehearsal (config/rehearsal.yaml over config/paper.yaml; docs/paper-run.md): the paper's DAG, offline, on
tiny random checkpoints of every hub model it names and on generated data in the real layouts.

Checked: each hub name maps to its family and depth, and the written checkpoint loads through the paper run's own
loaders; the synthetic summarization data sets read back through their real readers; the rehearsal plans every rule
family the paper run plans (bar the train jobs' cut), with no hub name and no environment variable left; and a
slice of it (checkpoints of every family, every generated data set, the hashes and runs that load them) runs.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from snakemake_helpers import ROOT, job_stats, run_snakemake, snakemake_env

from hashee.core.errors import HasheeError

PAPER, REHEARSAL = ROOT / "config" / "paper.yaml", ROOT / "config" / "rehearsal.yaml"
CONFIGS = ["--configfile", str(PAPER), str(REHEARSAL)]
HUB_VARIABLES = ("ELUE_DIR", "SNLI_DIR", "ONTONOTES_DIR", "REDDIT_TIFU_DIR", "CNNDM_DIR", "CSL_DIR", "TTNEWS_DIR",
                 "HF_HUB_OFFLINE")


def offline_env():
    """No data variable set and the hub unreachable: the rehearsal must need neither."""
    env = {k: v for k, v in snakemake_env().items() if k not in HUB_VARIABLES}
    env.update(HF_HUB_OFFLINE="1", HF_HOME="/nonexistent/hf-home")
    return env


def repo_like(folder: Path) -> Path:
    """A folder to run from holding config/config.yaml, as the repository root does (the default config
    underneath, as `make rehearsal` has it)."""
    (folder / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config" / "config.yaml", folder / "config" / "config.yaml")
    return folder


@pytest.mark.parametrize("name, family, layers", [
    ("bert-base-uncased", "bert", 12), ("bert-base-cased", "bert", 12), ("roberta-base", "roberta", 12),
    ("albert-base-v2", "albert", 12), ("fnlp/elasticbert-base", "elasticbert", 12),
    ("distilbert-base-uncased", "distilbert", 6), ("facebook/bart-large", "bart", 12),
    ("fnlp/cpt-large", "cpt", 24), ("fnlp/bart-base-chinese", "bart", 6)])
def test_a_hub_name_gives_its_family_and_depth(name, family, layers):
    from hashee.studies.rehearsal.checkpoints import hub_shape

    shape = hub_shape(name)
    assert (shape["family"], shape["num_layers"]) == (family, layers)
    assert shape.get("cased", False) == (name == "bert-base-cased")
    assert shape.get("chinese", False) == (name == "fnlp/bart-base-chinese")


def test_an_unknown_hub_family_is_one_line_naming_it():
    from hashee.studies.rehearsal.checkpoints import hub_shape

    with pytest.raises(HasheeError, match="'gpt2'.*no tiny checkpoint family"):
        hub_shape("gpt2")


@pytest.mark.parametrize("name", ["fnlp/cpt-large", "bert-base-cased"])
def test_a_hub_checkpoint_loads_through_the_paper_runs_loader(tmp_path, name):
    """CPT through the summarization loader (S-Enc 20 + U-Dec 4 layers; G-Dec 4), cased BERT through the
    encoder loader with a tokenizer that keeps case."""
    from hashee.core.backbones import load_backbone
    from hashee.studies.rehearsal.checkpoints import write_hub_checkpoint
    from hashee.studies.summarization.modeling import load_seq2seq_backbone

    write_hub_checkpoint(name, tmp_path / name)
    files = {p.name for p in (tmp_path / name).iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"} <= files
    if name.startswith("fnlp/cpt"):
        backbone = load_seq2seq_backbone(str(tmp_path / name), enc_layers=6, dec_layers=4)
        assert (backbone.family, backbone.encoder_config.num_layers, backbone.decoder_config["decoder_layers"]) == \
            ("cpt", 6, 4)
        assert len(backbone.tokenizer("王明出国", add_special_tokens=False)["input_ids"]) == 4  # one token a character
    else:
        backbone = load_backbone(str(tmp_path / name))
        ids = backbone.tokenizer("Paris paris", add_special_tokens=False)["input_ids"]
        assert len(ids) == 2 and ids[0] != ids[1] and backbone.tokenizer.unk_token_id not in ids


@pytest.mark.parametrize("dataset", ["cnndm", "reddit", "csl", "ttnews"])
def test_synthetic_data_reads_back_through_the_real_reader(tmp_path, dataset):
    from hashee.studies.summarization.data import load_split, synthetic_files, write_synthetic

    write_synthetic(dataset, tmp_path / dataset, seed=0, size="tiny")
    assert sorted(p.name for p in (tmp_path / dataset).iterdir()) == sorted(synthetic_files(dataset))
    splits = {split: load_split(dataset, tmp_path / dataset, split) for split in ("train", "dev", "test")}
    assert all(splits.values())
    if dataset == "reddit":  # the release's posts without a tldr are not examples
        text = (tmp_path / dataset / synthetic_files(dataset)[0]).read_text()
        assert '"tldr": null' in text
        assert sum(map(len, splits.values())) < text.count("\n")


def test_the_rehearsal_plans_the_paper_runs_rule_families_offline(tmp_path):
    """Every rule family of paper.yaml's DAG is in the rehearsal's (train jobs per method, not per run), plus the
    rules that write its checkpoints and data; every --backbone of a job is a tiny checkpoint folder, and no
    data variable is needed."""
    from snakemake_helpers import load_config
    from test_workflow import (
        write_placeholder_difficulty,
        write_placeholder_elue,
        write_placeholder_summarization,
    )

    cfg = load_config("paper.yaml")
    paper_env = snakemake_env(ELUE_DIR=str(write_placeholder_elue(tmp_path / "elue", cfg["tasks"])),
                              **write_placeholder_difficulty(tmp_path / "difficulty", cfg["difficulty"]),
                              **write_placeholder_summarization(tmp_path / "summarization", cfg["summarization"]))
    paper = run_snakemake(["all", "-n", "--configfile", str(PAPER)], repo_like(tmp_path / "paper"), paper_env)
    assert paper.returncode == 0, paper.stdout[-3000:] + paper.stderr[-3000:]
    ours = run_snakemake(["all", "-n", "-p", *CONFIGS], repo_like(tmp_path / "rehearsal"), offline_env())
    assert ours.returncode == 0, ours.stdout[-3000:] + ours.stderr[-3000:]

    def families(stats):
        return {re.sub(r"^(train_[a-z]+|fit_backbone_hash|fit_hash|summ_run).*$", r"\1", rule) for rule in stats}

    paper_rules, our_rules = families(job_stats(paper.stdout)), families(job_stats(ours.stdout))
    assert paper_rules <= our_rules, sorted(paper_rules - our_rules)
    assert our_rules - paper_rules == {"tiny_checkpoint", "summ_synthetic_data", "demo_data", "difficulty_data"}
    backbones = set(re.findall(r"--backbone (\S+)", ours.stdout))
    assert backbones and all(b.startswith("resources/rehearsal/hub/") for b in backbones), backbones
    hub_names = {b.removeprefix("resources/rehearsal/hub/") for b in backbones}
    assert {"fnlp/elasticbert-base", "bert-base-uncased", "roberta-base", "albert-base-v2", "distilbert-base-uncased",
            "facebook/bart-large", "fnlp/cpt-large"} <= hub_names
    assert "resources/rehearsal/hub/bert-base-cased" in ours.stdout  # the tagging study's, inside its JSON
    assert job_stats(ours.stdout)["tiny_checkpoint"] == len(hub_names | {"bert-base-cased"})


# A slice of the rehearsal: the checkpoints of every family and every generated data set, and the jobs that load
# them first (hash fits on the three other backbones, the CPT truncation and BART HashEE runs on CSL and Reddit).
SLICE = [
    "results/rehearsal/hashes/SST-2/backbone=roberta,hash=frequency,layers=6/42/hash.pt",
    "results/rehearsal/hashes/MRPC/backbone=albert,hash=frequency,layers=6/42/hash.pt",
    "results/rehearsal/hashes/IMDb/backbone=bert,hash=frequency,layers=6/42/hash.pt",
    "results/rehearsal/summarization/csl/truncated/enc_layers=6,dec_layers=4/42/rows.csv",
    "results/rehearsal/summarization/reddit/hashee/hash=frequency,buckets=6/42/rows.csv",
    "resources/rehearsal/hub/distilbert-base-uncased",
    "resources/rehearsal/hub/bert-base-cased",
    "resources/rehearsal/hub/fnlp/elasticbert-base",
    "resources/rehearsal/data/summarization/cnndm/train.csv",
    "resources/rehearsal/data/difficulty/snli/snli_1.0_train.txt",
]


@pytest.mark.slow
def test_a_slice_of_the_rehearsal_runs_offline(tmp_path):
    root = repo_like(tmp_path)
    out = run_snakemake([*SLICE, "--cores", "2", *CONFIGS], root, offline_env(), timeout=1500)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    for target in SLICE:
        assert (root / target).exists(), target
    import pandas as pd

    for rows, backbone in zip(SLICE[3:5], ("fnlp/cpt-large", "facebook/bart-large")):
        table = pd.read_csv(root / rows)
        assert len(table) and table["rouge1"].notna().all(), rows
        assert set(table["backbone"]) == {f"resources/rehearsal/hub/{backbone}"}, rows


def test_a_hub_model_the_rehearsal_cannot_stand_in_for_is_named_before_planning(tmp_path):
    extra = tmp_path / "gpt.yaml"
    extra.write_text("backbones: {models: {gpt: gpt2}}\n")
    out = run_snakemake(["all", "-n", *CONFIGS, str(extra)], repo_like(tmp_path / "root"), offline_env())
    assert out.returncode != 0
    assert "config key 'backbones.models.gpt' (rehearsal.enabled): hub model 'gpt2': no tiny checkpoint family" in \
        out.stdout + out.stderr, (out.stdout + out.stderr)[-2000:]
