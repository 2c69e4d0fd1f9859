"""ELUE loaders: TSV files -> examples -> tokenized `datasets.Dataset` -> padded torch batches.

Files are `<data_dir>/<TASK>/{train,dev,test}.tsv` (header row first). Columns are located by
position from `hashee.core.tasks.TaskSpec`. Quirks of the real release handled here: a UTF-8 BOM
before the header, CRLF line endings, `"` inside fields (read with quoting off: a quote is
just a character, as GLUE's processors and the reference loaders read them, in every split; some
official files are CSV-quoted and others not, so the same sentence can reach the model quoted in one
file and raw in another, exactly as it reaches the reference code), blank trailing lines and very long
IMDb reviews (no csv field-size limit, since the csv module is not used at all). `comparable_text`
undoes the quoting for matching rows across files only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import datasets
import torch
from torch.utils.data import DataLoader

from hashee.core.errors import HasheeError
from hashee.core.io import read_text_checked, split_text_lines, temp_dir_beside
from hashee.core.tasks import TaskSpec, get_task

SPLITS = ("train", "dev", "test")
# Bump when the cached dataset's content or layout changes, so old caches are not reused.
_CACHE_FORMAT = 1


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None
    label: int | float | None  # class index, regression score, or None on test files
    index: int | None  # the test file's `index` column; None on train/dev
    line: int  # 1-based line number in the file (the header is line 1)


def task_file(data_dir, task_name: str, split: str) -> Path:
    return Path(data_dir) / task_name / f"{split}.tsv"


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise HasheeError(
            f"{path}: ELUE file not found; data_dir / $ELUE_DIR must point at the folder holding "
            f"<TASK>/{{train,dev,test}}.tsv")
    return split_text_lines(read_text_checked(path))


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _parse_label(task: TaskSpec, value: str, where: str) -> int | float:
    value = value.strip()
    if task.labels is not None:
        try:
            return task.labels.index(value)
        except ValueError:
            raise HasheeError(
                f"{where}: label {_short(value)} is not one of {task.name}'s labels "
                f"{', '.join(task.labels)}") from None
    try:
        score = float(value)
    except ValueError:
        raise HasheeError(f"{where}: {task.name} score {_short(value)} is not a number") from None
    low, high = task.score_range or (-math.inf, math.inf)
    if not (math.isfinite(score) and low <= score <= high):
        raise HasheeError(f"{where}: {task.name} score {_short(value)} is outside [{low:g}, {high:g}]")
    return score


def _split_of(path: Path) -> str:
    return "test" if path.stem == "test" else "labeled"


def read_split(task: TaskSpec, path, split: str | None = None) -> list[Example]:
    """Parse one ELUE TSV file. `split` ('train' | 'dev' | 'test') defaults to the file's stem,
    any stem other than 'test' meaning a labeled file."""
    path = Path(path)
    is_test = (split or _split_of(path)) == "test"
    header = task.test_header if is_test else task.labeled_header
    lines = _read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise HasheeError(f"{path}:1: empty file; expected header {' | '.join(header)}")

    head = lines[0].split("\t")
    if len(head) != len(header):
        raise HasheeError(
            f"{path}:1: header has {len(head)} field(s), expected {len(header)}: {' | '.join(header)}")
    if is_test and head[0].strip() != "index":
        raise HasheeError(
            f"{path}:1: test file must start with an 'index' column, got {_short(head[0])}; "
            f"expected {' | '.join(header)}")

    examples: list[Example] = []
    seen_index: dict[int, int] = {}
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue  # blank lines carry no data
        where = f"{path}:{line_no}"
        fields = line.split("\t")
        if len(fields) != len(header):
            raise HasheeError(
                f"{where}: row has {len(fields)} field(s), expected {len(header)} ({' | '.join(header)})")
        if is_test:
            raw = fields[0].strip()
            try:
                index = int(raw)
            except ValueError:
                raise HasheeError(f"{where}: index {_short(raw)} is not an integer") from None
            if index < 0:
                raise HasheeError(f"{where}: index {index} is negative")
            if index in seen_index:
                raise HasheeError(f"{where}: duplicate index {index} (first on line {seen_index[index]})")
            seen_index[index] = line_no
            text_b = fields[task.test_text_b] if task.test_text_b is not None else None
            examples.append(Example(fields[task.test_text_a], text_b, None, index, line_no))
        else:
            label = _parse_label(task, fields[task.label], where)
            text_b = fields[task.text_b] if task.text_b is not None else None
            examples.append(Example(fields[task.text_a], text_b, label, None, line_no))
    if not examples:
        raise HasheeError(f"{path}:2: no data rows after the header")
    return examples


def _csv_unquoted(text: str) -> str | None:
    """`text` without one layer of CSV quoting (outer quotes dropped, doubled inner quotes halved), or None
    when it is not quoted."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return None
    inner = text[1:-1]
    if inner.replace('""', "").count('"'):
        return None  # a lone quote inside: raw text that happens to start and end with one
    return inner.replace('""', '"')


def comparable_text(text: str) -> str:
    """A field's text for matching rows across files that serialize it differently: every layer of CSV
    quoting undone (the official test_full.tsv quotes what test.tsv holds raw, and quotes again what
    test.tsv already quotes), whitespace runs collapsed. Only for comparing: models read fields raw."""
    text = text.strip()
    while (unquoted := _csv_unquoted(text)) is not None:
        text = unquoted.strip()
    return " ".join(text.split())


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _lowercases(tokenizer) -> bool | None:
    value = getattr(tokenizer, "do_lower_case", None)
    if value is None:
        value = getattr(tokenizer, "init_kwargs", {}).get("do_lower_case")
    return None if value is None else bool(value)


def cache_key(task_name: str, split: str, file_hash: str, tokenizer, max_length: int) -> str:
    parts = {
        "format": _CACHE_FORMAT,
        "task": task_name,
        "split": split,
        "file_sha256": file_hash,
        "tokenizer": str(getattr(tokenizer, "name_or_path", "")),
        "tokenizer_class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "lowercase": _lowercases(tokenizer),
        "max_length": int(max_length),
        "truncation": "longest_first",
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def _quiet_progress():
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _encode_batch(batch: dict, tokenizer, max_length: int, is_pair: bool) -> dict:
    texts_b = batch["text_b"] if is_pair else None
    encoded = tokenizer(batch["text_a"], texts_b, truncation="longest_first", max_length=max_length)
    input_ids = encoded["input_ids"]
    # Tokenizers without segment ids (RoBERTa-style) get all-zero ones so batches look alike.
    token_type_ids = encoded.get("token_type_ids") or [[0] * len(ids) for ids in input_ids]
    return {"input_ids": input_ids, "token_type_ids": token_type_ids}


def _to_dataset(task: TaskSpec, examples: list[Example]) -> datasets.Dataset:
    if task.is_regression:
        labels = [math.nan if e.label is None else float(e.label) for e in examples]
        label_type = datasets.Value("float32")
    else:
        labels = [-1 if e.label is None else int(e.label) for e in examples]
        label_type = datasets.Value("int64")
    columns = {
        "text_a": [e.text_a for e in examples],
        "labels": labels,
        # Test rows keep their file index (predictions are submitted under it); others their row number.
        "index": [e.index if e.index is not None else row for row, e in enumerate(examples)],
    }
    features = {"text_a": datasets.Value("string"), "labels": label_type, "index": datasets.Value("int64")}
    if task.is_pair:
        columns["text_b"] = [e.text_b for e in examples]
        features["text_b"] = datasets.Value("string")
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


def tokenize_split(task: TaskSpec, path, tokenizer, max_length: int, split: str) -> datasets.Dataset:
    """One split, tokenized (no disk cache; see `load_task`)."""
    raw = _to_dataset(task, read_split(task, path, split))
    text_columns = ["text_a", "text_b"] if task.is_pair else ["text_a"]
    # An explicit fingerprint: datasets cannot hash a tokenizer reliably and would warn.
    fingerprint = cache_key(task.name, split, _file_sha256(Path(path)), tokenizer, max_length)[:32]
    with _quiet_progress():
        return raw.map(
            partial(_encode_batch, tokenizer=tokenizer, max_length=max_length, is_pair=task.is_pair),
            batched=True, remove_columns=text_columns, new_fingerprint=fingerprint)


def _save_once(dataset: datasets.Dataset, target: Path) -> None:
    """Save beside `target`, then rename onto it; if a parallel job got there first, keep theirs
    (same key, same content) rather than replacing a directory someone may be reading."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(target)
    try:
        with _quiet_progress():
            dataset.save_to_disk(str(tmp))
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_task(task_name: str, data_dir, tokenizer, max_length: int, splits: Sequence[str] = SPLITS,
              cache_dir=None) -> dict[str, datasets.Dataset]:
    """Tokenized splits with columns input_ids, token_type_ids, labels (-1 / nan on test), index.

    `data_dir` None means $ELUE_DIR. With `cache_dir`, each tokenized split is saved under a key
    of (task, split, file content, tokenizer identity, max_length) and reloaded on later calls.
    """
    task = get_task(task_name)
    if data_dir is None:
        data_dir = os.environ.get("ELUE_DIR")
        if not data_dir:
            raise HasheeError("no data_dir given and $ELUE_DIR is not set")
    result: dict[str, datasets.Dataset] = {}
    for split in splits:
        if split not in SPLITS:
            raise HasheeError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        path = task_file(data_dir, task.name, split)
        if cache_dir is None:
            result[split] = tokenize_split(task, path, tokenizer, max_length, split)
            continue
        if not path.is_file():
            _read_lines(path)  # raises the missing-file error
        key = cache_key(task.name, split, _file_sha256(path), tokenizer, max_length)
        cached = Path(cache_dir) / task.name / f"{split}-{key[:20]}"
        if not cached.is_dir():
            _save_once(tokenize_split(task, path, tokenizer, max_length, split), cached)
        result[split] = datasets.load_from_disk(str(cached))
    return result


def _stack(values, name: str) -> torch.Tensor:
    tensors = [torch.as_tensor(v) for v in values]
    try:
        return torch.stack(tensors)
    except RuntimeError as err:
        raise HasheeError(f"collate: cannot stack {name!r}: {err}") from None


def collate(features: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest sequence of the batch; attention_mask is 1 on real tokens, 0 on padding."""
    if not features:
        raise HasheeError("collate: empty batch")
    lengths = [len(f["input_ids"]) for f in features]
    width = max(lengths)
    input_ids = torch.full((len(features), width), int(pad_token_id), dtype=torch.long)
    token_type_ids = torch.zeros((len(features), width), dtype=torch.long)
    attention_mask = torch.zeros((len(features), width), dtype=torch.long)
    for row, (feature, length) in enumerate(zip(features, lengths)):
        input_ids[row, :length] = torch.as_tensor(feature["input_ids"], dtype=torch.long)
        if "token_type_ids" in feature:
            token_type_ids[row, :length] = torch.as_tensor(feature["token_type_ids"], dtype=torch.long)
        attention_mask[row, :length] = 1
    labels = _stack([f["labels"] for f in features], "labels")
    labels = labels.float() if labels.is_floating_point() else labels.long()
    return {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "index": _stack([f["index"] for f in features], "index").long(),
    }


def make_loader(dataset, batch_size: int, pad_token_id: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader whose order depends only on `seed` (its own generator, not the global RNG)."""
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=partial(collate, pad_token_id=pad_token_id))
