"""The difficulty study's label construction, metric and readers on small data with known answers,
plus one tiny end-to-end run of each study (rows, table) on the offline data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashee.core.errors import HasheeError
from hashee.studies.difficulty import data as ddata
from hashee.studies.difficulty.labels import (
    accuracy_at_exit,
    correctness,
    human_difficulty_split,
    implied_exit_layer,
    split_balanced_dev,
    split_indices,
)
from hashee.studies.difficulty.metrics import micro_prf

ROOT = Path(__file__).resolve().parents[1]


def _pairs(n_hard: int, per_label: int) -> list[ddata.SnliPair]:
    pairs = [ddata.SnliPair("-", f"hard {i}", "h", f"f:{i}") for i in range(n_hard)]
    for label in ddata.SNLI_LABELS:
        pairs += [ddata.SnliPair(label, f"{label} {i}", "h", f"f:{label}{i}") for i in range(per_label)]
    return pairs


# ------------------------------------------------------------------------------ human-defined labels
def test_human_split_takes_every_no_majority_pair_and_balances_both_splits():
    pairs = _pairs(n_hard=10, per_label=20)
    train, test = human_difficulty_split(pairs, train_size=8, test_size=12, seed=1)
    assert len(train) == 8 and len(test) == 12
    assert Counter(y for _, y in test) == {1: 6, 0: 6}
    assert Counter(y for _, y in train) == {1: 4, 0: 4}
    # label 1 exactly for the no-majority pairs, 0 for pairs with a majority
    assert all((p.gold == "-") == (y == 1) for p, y in train + test)
    # all 10 difficult pairs are used, none twice, and nothing is in both splits
    used = [p.premise for p, _ in train + test]
    assert len(set(used)) == 20
    assert sum(p.gold == "-" for p, _ in train + test) == 10
    # simple pairs spread evenly over the three labels (10 simple: 4/3/3 in some order)
    simple = Counter(p.gold for p, y in train + test if y == 0)
    assert sorted(simple.values()) == [3, 3, 4]


def test_human_split_is_seeded():
    pairs = _pairs(n_hard=10, per_label=20)
    first = human_difficulty_split(pairs, 8, 12, seed=3)
    assert first == human_difficulty_split(pairs, 8, 12, seed=3)
    assert first != human_difficulty_split(pairs, 8, 12, seed=4)


def test_human_split_refuses_what_the_data_cannot_give():
    with pytest.raises(HasheeError, match="no-majority pairs"):
        human_difficulty_split(_pairs(n_hard=5, per_label=20), 8, 4, seed=0)
    with pytest.raises(HasheeError, match="even"):
        human_difficulty_split(_pairs(n_hard=10, per_label=20), 7, 4, seed=0)
    with pytest.raises(HasheeError, match="majority label"):
        human_difficulty_split(_pairs(n_hard=10, per_label=1), 8, 4, seed=0)


def test_balanced_dev_and_index_splits_partition_the_data():
    labels = [0] * 10 + [1] * 10
    train, dev = split_balanced_dev(labels, 0.2, seed=0)
    assert sorted(train + dev) == list(range(20))
    assert Counter(labels[i] for i in dev) == {0: 2, 1: 2}
    train, dev, test = split_indices(50, None, 0.1, seed=0, test_size=10)
    assert len(test) == 10 and len(dev) == 4 and len(train) == 36
    assert sorted(train + dev + test) == list(range(50))
    assert len(split_indices(100, 0.28, 0.1, seed=0)[2]) == 28


# ------------------------------------------------------------------------------ model-defined labels
def test_correctness_vectors_per_layer_and_per_token():
    predictions = np.array([[0, 1, 1], [2, 2, 0]])  # 2 instances x 3 exits
    gold = np.array([1, 2])
    assert correctness(predictions, gold).tolist() == [[0, 1, 1], [1, 1, 0]]  # not monotone: allowed
    tokens = np.array([[[1, 1], [0, 2]]])  # 1 sentence x 2 tokens x 2 exits
    assert correctness(tokens, np.array([[1, 2]])).tolist() == [[[1, 1], [0, 1]]]
    with pytest.raises(ValueError):
        correctness(predictions, np.array([1, 2, 3]))


def test_implied_exit_layer_is_the_first_layer_predicted_correct_else_the_last():
    predicted_wrong = np.array([[0, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]])
    assert implied_exit_layer(predicted_wrong).tolist() == [1, 2, 3, 3]
    tokens = np.array([[[1, 0], [1, 1]]])  # per token
    assert implied_exit_layer(tokens).tolist() == [[2, 2]]


def test_accuracy_at_exit_reads_the_true_bit_at_the_exit_layer():
    true_correct = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1]])
    exits = np.array([2, 2, 1])
    assert accuracy_at_exit(exits, true_correct) == pytest.approx(1 / 3)
    assert accuracy_at_exit(exits, true_correct, mask=np.array([1, 0, 0])) == 1.0


def test_micro_prf_counts_cells_with_wrong_as_positive_and_masks_padding():
    true_wrong = np.array([[1, 0], [1, 1]])
    predicted = np.array([[1, 1], [0, 1]])  # TP 2, FP 1, FN 1
    p, r, f = micro_prf(true_wrong, predicted)
    assert (p, r, f) == pytest.approx((200 / 3, 200 / 3, 200 / 3))
    # a padded token (second row) is left out entirely: TP 1, FP 1, FN 0
    p, r, f = micro_prf(true_wrong, predicted, mask=np.array([[1, 1], [0, 0]]))
    assert (p, r) == pytest.approx((50.0, 100.0))
    assert micro_prf(np.zeros((2, 2)), np.zeros((2, 2))) == (0.0, 0.0, 0.0)


# ------------------------------------------------------------------------------ readers, offline data
def test_snli_reader_finds_columns_by_header_and_keeps_no_majority(tmp_path):
    path = tmp_path / "snli_1.0_dev.txt"
    header = "\t".join(ddata.SNLI_HEADER)
    path.write_text(header + "\n" + "-\tb\tb\tp\tp\tA man .\tA person .\tc\tp1\tneutral\tentailment\n"
                    + "entailment\tb\tb\tp\tp\tA dog .\tAn animal .\tc\tp2\tentailment\n")
    pairs = ddata.read_snli(path)
    assert [(p.gold, p.premise, p.hypothesis) for p in pairs] == [("-", "A man .", "A person ."),
                                                                  ("entailment", "A dog .", "An animal .")]
    assert pairs[1].where.endswith(":3")
    path.write_text(header + "\nmaybe\tb\tb\tp\tp\tA\tB\n")
    with pytest.raises(HasheeError, match=r"snli_1.0_dev.txt:2: gold_label 'maybe'"):
        ddata.read_snli(path)
    with pytest.raises(HasheeError, match="not found"):
        ddata.read_snli(tmp_path / "snli_1.0_train.txt")


def test_tagging_reader_splits_sentences_on_blank_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART- -X- O\n\nJohn NNP B-PERSON\nran VBD O\n\nParis NNP B-GPE\n")
    sentences = ddata.read_tagging(path)
    assert [(s.words, s.tags) for s in sentences] == [(("John", "ran"), ("B-PERSON", "O")), (("Paris",), ("B-GPE",))]
    path.write_text("John\n")
    with pytest.raises(HasheeError, match=r"train.txt:1: one field"):
        ddata.read_tagging(path)


def test_tagging_reader_turns_ontonotes_brackets_into_bio(tmp_path):
    path = tmp_path / "dev.txt"
    rows = [("Barack", "(PERSON*"), ("Obama", "*)"), ("visited", "*"), ("Paris", "(GPE*)"), (".", "*")]
    path.write_text("#begin document (nw/x); part 000\n"
                    + "".join(f"nw/x 0 {i} {w} NNP (TOP*) - - - Speaker#1 {ne} *\n" for i, (w, ne) in enumerate(rows))
                    + "\n#end document\n")
    (sentence,) = ddata.read_tagging(path)
    assert sentence.words == ("Barack", "Obama", "visited", "Paris", ".")
    assert sentence.tags == ("B-PERSON", "I-PERSON", "O", "B-GPE", "O")


def test_offline_data_has_the_real_layouts_and_no_majority_pairs(tmp_path):
    ddata.write_demo(tmp_path / "snli", tmp_path / "tag", seed=0, size="tiny")
    pairs = [p for split in ddata.SNLI_SPLITS for p in ddata.read_snli_split(tmp_path / "snli", split)]
    golds = Counter(p.gold for p in pairs)
    assert golds["-"] >= 30 and all(golds[label] > 50 for label in ddata.SNLI_LABELS)
    # the vague verbs (the learnable cue) are much more frequent among no-majority pairs
    def vague_share(group):
        return np.mean([any(v in p.hypothesis for v in ddata._VAGUE) for p in group])
    assert vague_share([p for p in pairs if p.gold == "-"]) > 2 * vague_share([p for p in pairs if p.gold != "-"])
    sentences = ddata.read_tagging_split(tmp_path / "tag", "train")
    assert len(sentences) == ddata.DEMO_SIZES["tiny"]["tagging"]["train"]
    assert {t.split("-")[-1] for s in sentences for t in s.tags} >= {"O", "PERSON", "GPE", "ORG"}
    before = (tmp_path / "snli" / "snli_1.0_dev.txt").read_text()
    ddata.write_demo(tmp_path / "snli", tmp_path / "tag", seed=0, size="tiny")
    assert (tmp_path / "snli" / "snli_1.0_dev.txt").read_text() == before  # seeded


# ------------------------------------------------------------------------------ the studies, tiny
@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """config/tiny.yaml's difficulty section on freshly generated offline data, and its backbone."""
    import yaml

    from hashee.core.backbones import load_backbone

    root = tmp_path_factory.mktemp("difficulty")
    cfg = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())["difficulty"]
    cfg.update(snli_dir=str(root / "snli"), tagging_dir=str(root / "tagging"))
    ddata.write_demo(cfg["snli_dir"], cfg["tagging_dir"], seed=0, size=cfg["demo"]["size"])
    return cfg, load_backbone(cfg["backbone"], cfg["layers"]), root


def test_tiny_studies_write_rows_and_the_table_beside_the_paper(tiny_study):
    from hashee.studies.difficulty import study
    from hashee.studies.difficulty.table import write_difficulty_tables

    cfg, backbone, root = tiny_study
    files = []
    for name in ("human", "sentence", "token"):
        frame = study.check_finite(getattr(study, f"run_{name}")(cfg, backbone, 42, root / "work", "cpu"), name)
        files.append(root / f"{name}.csv")
        frame.to_csv(files[-1], index=False)
        if name == "human":
            assert frame["chance"].tolist() == [50.0] and 0 <= frame["accuracy"][0] <= 100
            assert frame["n_test"][0] == cfg["human"]["test_size"]
        else:
            expected = study.SENTENCE_PREDICTORS if name == "sentence" else study.TOKEN_PREDICTORS
            assert tuple(frame["predictor"]) == expected
            assert (frame["num_layers"] == cfg["layers"]).all()
            assert frame["exit_layer"].between(1, cfg["layers"]).all()
    assert not (root / "work").exists() or not any((root / "work").rglob("resume.pt"))
    write_difficulty_tables(files, root / "tables", "tiny")
    table = pd.read_csv(root / "tables" / "difficulty.csv")
    bert = table[(table["Level"] == "sentence") & (table["Predictor"] == "BERT")].iloc[0]
    assert float(bert["F1 (paper)"]) == 54.9  # the published number beside ours, and the difference
    assert float(bert["F1 Δ (ours − paper)"]) == pytest.approx(float(bert["F1 (ours)"]) - 54.9, abs=0.06)
    assert "not comparable" in (root / "tables" / "difficulty.md").read_text()
    assert "\\begin{tabular}" in (root / "tables" / "difficulty.tex").read_text()


# ------------------------------------------------------------------------------ workflow errors
def test_paper_config_names_the_difficulty_key_when_its_data_is_missing(tmp_path):
    import yaml
    from snakemake_helpers import run_snakemake, snakemake_env
    from test_workflow import write_placeholder_elue

    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    env = snakemake_env(ELUE_DIR=str(write_placeholder_elue(tmp_path / "elue", cfg["tasks"])))
    env.pop("SNLI_DIR", None)
    out = run_snakemake(["-n", "--configfile", str(ROOT / "config" / "paper.yaml")], tmp_path, env)
    assert out.returncode != 0
    assert "config key 'difficulty.snli_dir' is '${SNLI_DIR}' but environment variable SNLI_DIR is not set" \
        in out.stdout + out.stderr
    (tmp_path / "snli").mkdir()
    out = run_snakemake(["-n", "--configfile", str(ROOT / "config" / "paper.yaml")], tmp_path,
                        {**env, "SNLI_DIR": str(tmp_path / "snli"), "ONTONOTES_DIR": str(tmp_path)})
    assert out.returncode != 0
    assert (f"missing difficulty data file {tmp_path}/snli/snli_1.0_train.txt -- config key 'difficulty.snli_dir'"
            in out.stdout + out.stderr)


def test_majority_predictor_predicts_each_layers_majority_and_its_exit():
    from types import SimpleNamespace

    from hashee.studies.difficulty import study

    backbone = SimpleNamespace(tokenizer=SimpleNamespace(pad_token_id=0), name="none")
    train = [{"labels": bits} for bits in ([1, 1, 0], [1, 0, 0], [0, 1, 0])]  # majority: wrong, wrong, right
    test = [{"labels": bits} for bits in ([1, 1, 1], [0, 0, 0])]
    (row,) = study.run_predictors(["Majority"], "sentence", train, train, test, backbone, 3, {}, 0, None, "cpu")
    # predicted [1, 1, 0] for both: TP 2, FP 2, FN 1
    assert (row["precision"], row["recall"]) == pytest.approx((50.0, 200 / 3))
    assert row["exit_layer"] == 3.0  # the first layer predicted right
    assert row["exit_accuracy"] == 50.0 and row["full_accuracy"] == 50.0


def test_predictors_name_their_word_embeddings_for_the_trainers_freeze():
    """`difficulty.freeze_word_embeddings` is the trainer's option: the embedding-based predictors
    name their matrix (get_input_embeddings), the BERT ones hold a core encoder."""
    import torch

    from hashee.core.modeling import EncoderConfig, TokenExitEncoder
    from hashee.core.training import word_embedding_parameters
    from hashee.studies.difficulty.predictors import BertPredictor, BiLstmPredictor, MeanEmbeddingPredictor

    embedding = torch.randn(30, 8)
    for model in (MeanEmbeddingPredictor(embedding, 3), BiLstmPredictor(embedding, 3, 4, token_level=True)):
        assert word_embedding_parameters(model) == {id(model.embed.weight)}
    config = EncoderConfig(vocab_size=30, hidden_size=8, num_layers=2, num_heads=2, intermediate_size=16)
    bert = BertPredictor(TokenExitEncoder(config), 2, token_level=False)
    assert word_embedding_parameters(bert) == {id(bert.bert.embeddings.word_embeddings.weight)}


def test_every_model_of_the_study_gets_the_configs_freeze():
    from hashee.studies.difficulty.study import Schedule

    cfg = {"max_length": 24, "freeze_word_embeddings": True, "exit_train": {"epochs": 1, "lr": 0.1, "batch_size": 4}}
    params = Schedule.from_config(cfg, "exit_train").params(cfg, seed=5)
    assert (params.freeze_word_embeddings, params.max_length, params.seed) == (True, 24, 5)
    assert not Schedule.from_config(cfg, "exit_train").params({"max_length": 24}, seed=5).freeze_word_embeddings
