"""The three studies end to end; each returns a DataFrame of result rows (`ROW_COLUMNS`).

Everything trains through `hashee.core.training.train` with model selection on a dev split (never on
test): the multi-exit models on a dev slice of their own data, the predictors and the human
classifier on `dev_fraction` of their training instances.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hashee.core.data import make_loader
from hashee.core.errors import HasheeError
from hashee.core.methods import Method
from hashee.core.tasks import TaskSpec, get_task
from hashee.core.training import TrainParams, seed_everything, train
from hashee.studies.difficulty import data as ddata
from hashee.studies.difficulty.labels import (
    accuracy_at_exit,
    correctness,
    human_difficulty_split,
    implied_exit_layer,
    split_balanced_dev,
    split_indices,
)
from hashee.studies.difficulty.metrics import ROW_COLUMNS, micro_prf
from hashee.studies.difficulty.predictors import (
    IGNORE,
    SENTENCE_PREDICTORS,
    TOKEN_PREDICTORS,
    SummedExitMethod,
    TokenExitMethod,
    build_predictor,
    difficulty_targets,
    exit_predictions,
)

EVAL_BATCH = 64


@dataclass
class Schedule:
    """epochs / lr / batch size of one kind of model (config `difficulty.<kind>_train`)."""

    epochs: float
    lr: float
    batch_size: int

    @classmethod
    def from_config(cls, cfg: dict, key: str) -> Schedule:
        try:
            section = cfg[key]
            return cls(float(section["epochs"]), float(section["lr"]), int(section["batch_size"]))
        except (KeyError, TypeError, ValueError) as err:
            raise HasheeError(f"config key 'difficulty.{key}': needs epochs, lr and batch_size ({err})") from None

    def params(self, cfg: dict, seed: int) -> TrainParams:
        """The trainer's parameters; `difficulty.freeze_word_embeddings` applies to every model of the study."""
        return TrainParams(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                           max_length=int(cfg["max_length"]), warmup=0.1, weight_decay=0.01, clip=1.0,
                           checkpoint_every=200, seed=seed,
                           freeze_word_embeddings=bool(cfg.get("freeze_word_embeddings", False)))


# ------------------------------------------------------------------------------ encoding
def encode_pairs(tokenizer, pairs, labels, max_length: int) -> list[dict]:
    """SNLI pairs -> trainer rows (input_ids, token_type_ids, labels, index)."""
    encoded = tokenizer([p.premise for p in pairs], [p.hypothesis for p in pairs], truncation="longest_first",
                        max_length=max_length)
    token_types = encoded.get("token_type_ids") or [[0] * len(ids) for ids in encoded["input_ids"]]
    return [{"input_ids": ids, "token_type_ids": types, "labels": label, "index": i}
            for i, (ids, types, label) in enumerate(zip(encoded["input_ids"], token_types, labels))]


def encode_tagged(tokenizer, sentences, tag_ids: dict[str, int], max_length: int) -> list[dict]:
    """Tagged sentences -> rows whose labels are (max_length,) tag ids: every word-piece inherits its
    word's tag; [CLS], [SEP], padding and tags unseen in training are IGNORE."""
    encoded = tokenizer([list(s.words) for s in sentences], is_split_into_words=True, truncation=True,
                        max_length=max_length)
    rows = []
    for i, sentence in enumerate(sentences):
        tags = [IGNORE] * max_length
        for position, word in enumerate(encoded.word_ids(i)):
            if word is not None:
                tags[position] = tag_ids.get(sentence.tags[word], IGNORE)
        ids = encoded["input_ids"][i]
        rows.append({"input_ids": ids, "token_type_ids": [0] * len(ids), "labels": tags, "index": i})
    return rows


def with_labels(rows: list[dict], labels) -> list[dict]:
    return [{**row, "labels": label} for row, label in zip(rows, labels)]


def subset(rows: list, indices) -> list:
    return [rows[i] for i in indices]


def _batches(rows, pad_token_id, batch_size=EVAL_BATCH):
    return make_loader(rows, batch_size, pad_token_id, shuffle=False)


# ------------------------------------------------------------------------------ training helper
def fit(method: Method, model, train_rows, dev_rows, params: TrainParams, workdir: Path, pad_token_id: int,
        dev_score, device) -> float:
    """Train through the shared trainer (best dev epoch kept); the work dir is removed afterwards."""
    result = train(method, model, train_rows, dev_rows, params, workdir, pad_token_id, device,
                   dev_score=dev_score, progress=False)
    shutil.rmtree(workdir, ignore_errors=True)
    return result.best_dev


@torch.no_grad()
def predict_wrong(model, rows, pad_token_id, device) -> tuple[np.ndarray, np.ndarray]:
    """A predictor's "wrong" bits and the mask of real cells: (N, L) (sentence) or (N, T, L) padded
    to the rows' label width (token)."""
    model.eval()
    predicted, masks = [], []
    for batch in _batches(rows, pad_token_id):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(batch)
        _, mask = difficulty_targets(batch, logits)
        wrong = (logits > 0).long()
        if wrong.dim() == 3:  # back to the stored label width, so batches concatenate
            width = batch["labels"].shape[1]
            wrong = torch.nn.functional.pad(wrong, (0, 0, 0, width - wrong.shape[1]))
            mask = torch.nn.functional.pad(mask, (0, 0, 0, width - mask.shape[1]))
        predicted.append(wrong.cpu())
        masks.append(mask.cpu())
    return torch.cat(predicted).numpy(), torch.cat(masks).numpy()


def _true_wrong(rows) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray([row["labels"] for row in rows])
    return np.clip(labels, 0, None), labels >= 0


def prf_scorer(rows, pad_token_id, device):
    """Dev score of a predictor: micro F1 of its "wrong" bits."""
    true, _ = _true_wrong(rows)

    def score(model) -> float:
        predicted, mask = predict_wrong(model, rows, pad_token_id, device)
        return micro_prf(true, predicted, mask)[2]
    return score


def evaluate_predictor(name, predicted, true_wrong, mask, level, n_train, num_layers, backbone) -> dict:
    """One row: P/R/F1 over the cells, the exit each instance (token) would take, its accuracy."""
    precision, recall, f1 = micro_prf(true_wrong, predicted, mask)
    cell_mask = mask[..., 0]  # (N,) or (N, T): an instance/token is real if its cells are
    exits = implied_exit_layer(predicted)
    true_correct = 1 - true_wrong
    return {"level": level, "predictor": name, "precision": precision, "recall": recall, "f1": f1,
            "exit_layer": float(exits[cell_mask].mean()),
            "exit_accuracy": 100 * accuracy_at_exit(exits, true_correct, cell_mask),
            "full_accuracy": 100 * float(true_correct[..., -1][cell_mask].mean()),
            "n_train": n_train, "n_test": int(cell_mask.sum()), "num_layers": num_layers, "backbone": backbone}


def run_predictors(names, level, train_rows, dev_rows, test_rows, backbone, num_layers, cfg, seed, workdir,
                   device) -> list[dict]:
    pad = backbone.tokenizer.pad_token_id
    true_test, mask_test = _true_wrong(test_rows)
    rows = []
    for name in names:
        if name == "Majority":
            train_true, train_mask = _true_wrong(train_rows)
            layers = train_true.shape[-1]
            # Per layer, the more frequent value over the training cells (instances, or tokens).
            wrong = (train_true * train_mask).reshape(-1, layers).sum(axis=0)
            majority = (wrong * 2 > train_mask.reshape(-1, layers).sum(axis=0)).astype(np.int64)
            predicted = np.broadcast_to(majority, true_test.shape).copy()
        else:
            seed_everything(seed)
            model, method = build_predictor(name, backbone, num_layers, level == "token", int(cfg["lstm_hidden"]))
            key = "predictor_train" if name == "BERT" else "shallow_train"
            params = Schedule.from_config(cfg, key).params(cfg, seed)
            fit(method, model, train_rows, dev_rows, params, workdir / level / name, pad,
                prf_scorer(dev_rows, pad, device), device)
            predicted, _ = predict_wrong(model, test_rows, pad, device)
        rows.append(evaluate_predictor(name, predicted, true_test, mask_test, level, len(train_rows), num_layers,
                                       backbone.name))
    return rows


# ------------------------------------------------------------------------------ human-defined
HUMAN_TASK = TaskSpec("SNLI-difficulty", ("sentence1", "sentence2", "difficult"), (), 0, 1, 2, 0, 1, ("0", "1"),
                      "acc")


class HumanDifficultyClassifier(Method):
    """The backbone + pooler + linear head (`SequenceClassifier`), cross-entropy on difficult/simple."""

    name = "difficulty-human"


def run_human(cfg: dict, backbone, seed: int, workdir: Path, device) -> pd.DataFrame:
    human = cfg["human"]
    pairs = [p for split in ddata.SNLI_SPLITS for p in ddata.read_snli_split(cfg["snli_dir"], split)]
    train_pairs, test_pairs = human_difficulty_split(pairs, int(human["train_size"]), int(human["test_size"]), seed)
    train_idx, dev_idx = split_balanced_dev([y for _, y in train_pairs], float(cfg["dev_fraction"]), seed)
    tokenizer, pad = backbone.tokenizer, backbone.tokenizer.pad_token_id
    max_length = int(cfg["max_length"])
    train_rows = encode_pairs(tokenizer, [p for p, _ in train_pairs], [y for _, y in train_pairs], max_length)
    test_rows = encode_pairs(tokenizer, [p for p, _ in test_pairs], [y for _, y in test_pairs], max_length)
    method = HumanDifficultyClassifier({})
    seed_everything(seed)
    model = method.build(backbone.config, HUMAN_TASK)
    method.init_from_backbone(model, backbone)

    def predict_labels(model, rows) -> np.ndarray:
        hits = []
        for batch in _batches(rows, pad):
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.no_grad():
                logits, _ = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            hits.append(logits.argmax(dim=-1).cpu())
        return torch.cat(hits).numpy()

    dev_rows = subset(train_rows, dev_idx)
    params = Schedule.from_config(cfg, "predictor_train").params(cfg, seed)
    fit(method, model, subset(train_rows, train_idx), dev_rows, params, workdir / "human", pad,
        lambda m: float((predict_labels(m, dev_rows) == [r["labels"] for r in dev_rows]).mean()), device)
    predicted = predict_labels(model, test_rows)
    gold = np.asarray([r["labels"] for r in test_rows])
    # Positive class = difficult; P/R/F1 via the same helper (one "layer": the label itself).
    precision, recall, f1 = micro_prf(gold[:, None], predicted[:, None])
    chance = 100 * max(gold.mean(), 1 - gold.mean())  # the majority class share: 50 % on a balanced test set
    row = {"level": "human", "predictor": "BERT", "precision": precision, "recall": recall, "f1": f1,
           "accuracy": 100 * float((predicted == gold).mean()), "chance": chance,
           "n_train": len(train_idx), "n_test": len(test_rows), "num_layers": backbone.config.num_layers,
           "backbone": backbone.name}
    return pd.DataFrame([row], columns=ROW_COLUMNS)


# ------------------------------------------------------------------------------ model-defined, sentence
def _exit_accuracy_scorer(rows, pad, device, token_level: bool):
    """Dev score of a multi-exit model: its accuracy averaged over the exits."""
    def score(model) -> float:
        hits = []
        for batch in _batches(rows, pad):
            batch = {k: v.to(device) for k, v in batch.items()}
            predictions = exit_predictions(model, batch)  # (B, L) / (B, T, L)
            gold = batch["labels"][:, : predictions.shape[1]] if token_level else batch["labels"]
            correct = (predictions == gold.unsqueeze(-1)).float()
            hits.append(correct[gold != IGNORE] if token_level else correct)
        return 100 * float(torch.cat(hits).mean())
    return score


def annotate(model, rows, pad, device, token_level: bool) -> list:
    """Per-layer correctness labels of `rows` under the trained multi-exit model: (L,) per pair, or
    (max_length, L) per sentence with -1 where a position has no tag."""
    labels = []
    for batch in _batches(rows, pad):
        batch = {k: v.to(device) for k, v in batch.items()}
        predictions = exit_predictions(model, batch).cpu().numpy()
        gold = batch["labels"].cpu().numpy()
        if token_level:
            width = gold.shape[1]
            predictions = np.pad(predictions, ((0, 0), (0, width - predictions.shape[1]), (0, 0)))
            wrong = 1 - correctness(predictions, gold)  # (B, max_length, L)
            wrong[gold == IGNORE] = -1
        else:
            wrong = 1 - correctness(predictions, gold)  # (B, L)
        labels.extend(wrong.tolist())
    return labels


def _multi_exit(method, backbone, task, train_rows, dev_rows, cfg, seed, workdir, device, token_level):
    seed_everything(seed)
    model = method.build(backbone.config, task)
    method.init_from_backbone(model, backbone)
    params = Schedule.from_config(cfg, "exit_train").params(cfg, seed)
    pad = backbone.tokenizer.pad_token_id
    fit(method, model, train_rows, dev_rows, params, workdir, pad,
        _exit_accuracy_scorer(dev_rows, pad, device, token_level), device)
    return model


def run_sentence(cfg: dict, backbone, seed: int, workdir: Path, device) -> pd.DataFrame:
    section = cfg["sentence"]
    labelled = [p for p in ddata.read_snli_split(cfg["snli_dir"], "train") if p.gold != ddata.NO_MAJORITY]
    n_train, n_dev = int(section["exit_train_size"]), int(section["exit_dev_size"])
    if len(labelled) < n_train + n_dev:
        raise HasheeError(f"difficulty.sentence: exit_train_size + exit_dev_size = {n_train + n_dev} but "
                          f"{ddata.snli_file(cfg['snli_dir'], 'train')} has {len(labelled)} labelled pairs")
    # The multi-exit model learns on the first pairs of SNLI train (as the reference) and is
    # selected on the next ones; the pairs it annotates are SNLI dev's, which it never saw.
    annotated = [p for p in ddata.read_snli_split(cfg["snli_dir"], "dev") if p.gold != ddata.NO_MAJORITY]
    task, tokenizer, max_length = get_task("SNLI"), backbone.tokenizer, int(cfg["max_length"])
    label_of = [ddata.SNLI_LABELS.index(p.gold) for p in labelled[: n_train + n_dev]]
    exit_rows = encode_pairs(tokenizer, labelled[: n_train + n_dev], label_of, max_length)
    method = SummedExitMethod({})
    model = _multi_exit(method, backbone, task, exit_rows[:n_train], exit_rows[n_train:], cfg, seed,
                        workdir / "sentence" / "multiexit", device, token_level=False)
    rows = encode_pairs(tokenizer, annotated, [ddata.SNLI_LABELS.index(p.gold) for p in annotated], max_length)
    rows = with_labels(rows, annotate(model, rows, tokenizer.pad_token_id, device, token_level=False))
    train_idx, dev_idx, test_idx = split_indices(len(rows), None, float(cfg["dev_fraction"]), seed,
                                                 test_size=int(section["test_size"]))
    results = run_predictors(SENTENCE_PREDICTORS, "sentence", subset(rows, train_idx), subset(rows, dev_idx),
                             subset(rows, test_idx), backbone, model.num_layers, cfg, seed, workdir, device)
    return pd.DataFrame(results, columns=ROW_COLUMNS)


# ------------------------------------------------------------------------------ model-defined, token
def run_token(cfg: dict, backbone, seed: int, workdir: Path, device) -> pd.DataFrame:
    section = cfg["token"]
    train_sentences = ddata.read_tagging_split(cfg["tagging_dir"], "train")
    dev_sentences = ddata.read_tagging_split(cfg["tagging_dir"], "dev")
    annotated = ddata.read_tagging_split(cfg["tagging_dir"], "test")
    tags = sorted({t for s in train_sentences + dev_sentences for t in s.tags})
    tag_ids = {t: i for i, t in enumerate(tags)}
    task = TaskSpec("tagging", (), (), 0, None, 0, 0, None, tuple(tags), "acc")
    tokenizer, max_length = backbone.tokenizer, int(cfg["max_length"])
    method = TokenExitMethod({})
    model = _multi_exit(method, backbone, task, encode_tagged(tokenizer, train_sentences, tag_ids, max_length),
                        encode_tagged(tokenizer, dev_sentences, tag_ids, max_length), cfg, seed,
                        workdir / "token" / "multiexit", device, token_level=True)
    rows = encode_tagged(tokenizer, annotated, tag_ids, max_length)
    rows = with_labels(rows, annotate(model, rows, tokenizer.pad_token_id, device, token_level=True))
    train_idx, dev_idx, test_idx = split_indices(len(rows), float(section["test_fraction"]),
                                                 float(cfg["dev_fraction"]), seed)
    results = run_predictors(TOKEN_PREDICTORS, "token", subset(rows, train_idx), subset(rows, dev_idx),
                             subset(rows, test_idx), backbone, model.num_layers, cfg, seed, workdir, device)
    return pd.DataFrame(results, columns=ROW_COLUMNS)


def check_finite(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    bad = [c for c in ("precision", "recall", "f1") if frame[c].map(lambda v: not math.isfinite(v)).any()]
    if bad:
        raise HasheeError(f"difficulty {what}: non-finite {', '.join(bad)} in the results")
    return frame
