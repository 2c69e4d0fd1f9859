"""Summarization data: the four real layouts with their quirks, the demo generator, the Chinese checks."""

import json
import re
from pathlib import Path

import pytest

from hashee.cli import main
from hashee.core.errors import HasheeError
from hashee.studies.summarization.data import (
    DATASETS,
    DEMO_SIZES,
    REDDIT_FILE,
    REDDIT_SPLITS_FILE,
    check_tokenizer,
    load_split,
    write_demo,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("summ") / "data", seed=0, size="tiny")


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    from hashee.core.backbones import minilm_path

    return AutoTokenizer.from_pretrained(minilm_path())


def _minilm_vocab() -> set[str]:
    from hashee.core.backbones import minilm_path

    return set((minilm_path() / "vocab.txt").read_text(encoding="utf-8").split("\n"))


# ------------------------------------------------------------------ demo data
def test_demo_sizes_layouts_and_determinism(demo, tmp_path):
    for name in ("demo-en", "demo-zh"):
        for split, n in DEMO_SIZES["tiny"].items():
            assert len(load_split(name, demo, split)) == n  # the parent folder is accepted ...
            assert len(load_split(name, demo / name, split)) == n  # ... and the data set's own
    assert sorted(p.name for p in (demo / "demo-en").iterdir()) == ["test.csv", "train.csv", "validation.csv"]
    assert sorted(p.name for p in (demo / "demo-zh").iterdir()) == ["dev.json", "test.json", "train.json"]
    again = write_demo(tmp_path / "again", seed=0, size="tiny")
    other = write_demo(tmp_path / "other", seed=1, size="tiny")
    for path in demo.rglob("*.*"):
        assert (again / path.relative_to(demo)).read_bytes() == path.read_bytes()
    assert (other / "demo-en" / "train.csv").read_bytes() != (demo / "demo-en" / "train.csv").read_bytes()
    assert not list(demo.rglob("*.tmp"))


def test_demo_quirks_are_present(demo):
    test_csv = (demo / "demo-en" / "test.csv").read_bytes()
    assert test_csv.startswith(b"\xef\xbb\xbf") and b"\r\n" in test_csv
    assert (demo / "demo-zh" / "dev.json").read_bytes().startswith(b"\xef\xbb\xbf")
    train = load_split("demo-en", demo, "train")
    assert any('"' in ex.source for ex in train)
    assert any("\n" in ex.target for ex in train)  # multi-sentence references exercise rougeLsum
    for name in ("demo-en", "demo-zh"):
        for split in ("train", "dev", "test"):
            lengths = sorted(len(ex.source) for ex in load_split(name, demo, split))
            assert lengths[-1] > 5 * lengths[-2]  # one very long document per split (truncation)


def test_demo_references_are_recoverable_and_short(demo):
    for ex in load_split("demo-en", demo, "train") + load_split("demo-en", demo, "test"):
        words = ex.source.split()
        assert len(ex.target.split()) <= 14
        for line in ex.target.split("\n"):  # each reference sentence is a subsequence of the text
            it = iter(words)
            assert all(w in it for w in line.split()), (line, ex.source)
    for ex in load_split("demo-zh", demo, "train"):
        assert len(ex.target) <= 12
        assert re.search(f"的{ex.target}。", ex.source), (ex.target, ex.source)


def test_demo_text_is_whole_minilm_vocabulary(tmp_path, minilm_tokenizer):
    small = write_demo(tmp_path, seed=0, size="small")  # enough stories to use every word of the pools
    vocab = _minilm_vocab()
    words = {w for ex in load_split("demo-en", small, "train") for w in (ex.source + " " + ex.target).split()}
    assert words <= vocab, sorted(words - vocab)
    zh = load_split("demo-zh", small, "train")
    chars = {c for ex in zh for c in ex.source + ex.target if not c.isascii()}
    assert chars <= vocab, sorted(chars - vocab)
    check_tokenizer("demo-zh", minilm_tokenizer, zh)  # MiniLM reads the demo's characters
    check_tokenizer("demo-zh", minilm_tokenizer)


def test_check_tokenizer_rejects_english_tokenizer_on_chinese(minilm_tokenizer, tmp_path):
    with pytest.raises(HasheeError, match="cannot read Chinese"):
        check_tokenizer("csl", minilm_tokenizer)
    (tmp_path / "test.json").write_text(json.dumps([{"article": "中文的语言模型很好，我们研究自然语言处理。",
                                                      "summarization": "语言模型研究"}], ensure_ascii=False))
    examples = load_split("csl", tmp_path, "test")
    with pytest.raises(HasheeError, match=r"test\.json:1: tokenizer .* cannot read Chinese"):
        check_tokenizer("csl", minilm_tokenizer, examples)
    check_tokenizer("cnndm", minilm_tokenizer)  # English data sets are not checked


def test_summ_demo_data_verb(tmp_path, capsys):
    assert main(["summ-demo-data", "--out", str(tmp_path / "d"), "--seed", "3", "--size", "tiny"]) == 0
    assert len(load_split("demo-en", tmp_path / "d", "dev")) == DEMO_SIZES["tiny"]["dev"]
    assert "demo-en" in capsys.readouterr().out


# ------------------------------------------------------------------ CNN/DM
def test_cnndm_csv_quirks_and_line_numbers(tmp_path, capsys):
    long_article = "word " * 60_000  # 300 kB: beyond the csv module's default field limit
    text = ("id,article,highlights\r\n"
            'a1,"He said ""hello"", then left.","first line .\nsecond line ."\r\n'
            f"a2,{long_article},short .\r\n"
            'a3,"  ",empty article .\r\n'
            "a4,plain,plain .\r\n")
    (tmp_path / "test.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    examples = load_split("cnndm", tmp_path, "test")
    assert [ex.source[:7] for ex in examples] == ['He said', "word wo", "plain"]
    assert examples[0].source == 'He said "hello", then left.'
    assert examples[0].target == "first line .\nsecond line ."
    path = tmp_path / "test.csv"
    assert [ex.where for ex in examples] == [f"{path}:2", f"{path}:4", f"{path}:6"]  # a1 spans lines 2-3
    err = capsys.readouterr().err
    assert f"skipped 1 example(s) with an empty source or target (first at {path}:5)" in err


def test_cnndm_fairseq_layout_and_errors(tmp_path):
    (tmp_path / "val.source").write_text("doc one\r\ndoc two\r\n")
    (tmp_path / "val.target").write_text("sum one\nsum two\n")
    examples = load_split("cnndm", tmp_path, "dev")
    assert [(ex.source, ex.target) for ex in examples] == [("doc one", "sum one"), ("doc two", "sum two")]
    assert examples[1].where == f"{tmp_path / 'val.source'}:2"
    (tmp_path / "val.target").write_text("sum one\n")
    with pytest.raises(HasheeError, match="line-aligned"):
        load_split("cnndm", tmp_path, "dev")
    with pytest.raises(HasheeError, match=r"no CNN/DM test data: expected test\.csv"):
        load_split("cnndm", tmp_path, "test")
    (tmp_path / "train.csv").write_text("id,text,summary\n1,a,b\n")
    with pytest.raises(HasheeError, match=r"train\.csv:1: header .* lacks article/highlights"):
        load_split("cnndm", tmp_path, "train")
    with pytest.raises(HasheeError, match="data folder not found"):
        load_split("cnndm", tmp_path / "nowhere", "train")
    with pytest.raises(HasheeError, match="unknown summarization dataset 'xsum'"):
        load_split("xsum", tmp_path, "train")


# ------------------------------------------------------------------ Reddit TIFU
def _write_tifu(path: Path, n: int) -> set[str]:
    eligible, lines = set(), []
    for i in range(n):
        tldr = None if i % 5 == 0 else f"tldr {i}"  # the long variant drops posts without a tldr
        text = "" if i == 7 else f"post {i} text"
        lines.append(json.dumps({"id": f"p{i}", "title": f"t{i}", "selftext_without_tldr": text, "tldr": tldr}))
        if tldr and text:
            eligible.add(text)
    path.write_text("\n".join(lines) + "\n")
    return eligible


def test_reddit_seeded_split(tmp_path, capsys):
    eligible = _write_tifu(tmp_path / REDDIT_FILE, 100)  # 80 with a tldr, one of them without text
    splits = {s: load_split("reddit", tmp_path, s) for s in ("train", "dev", "test")}
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [63, 7, 9]  # int(.8*79), int(.1*79), rest
    sources = [ex.source for s in splits.values() for ex in s]
    assert sorted(sources) == sorted(eligible)
    assert all(ex.target.startswith("tldr ") for ex in splits["test"])
    lines = [int(ex.where.rsplit(":", 1)[1]) for ex in splits["train"]]
    assert lines == sorted(lines)  # file order within a split
    assert [ex.source for ex in load_split("reddit", tmp_path, "test")] == [ex.source for ex in splits["test"]]
    other = load_split("reddit", tmp_path, "test", split_seed=1)
    assert [ex.source for ex in other] != [ex.source for ex in splits["test"]]
    assert "skipped 1 example(s)" in capsys.readouterr().err


def test_reddit_tfds_split_file(tmp_path):
    _write_tifu(tmp_path / REDDIT_FILE, 20)
    (tmp_path / REDDIT_SPLITS_FILE).write_text(json.dumps(
        {"train": ["p1", "p2", "p3"], "validation": ["p4", "p5"], "test": ["p6", "p0", "p9"]}))
    assert [ex.source for ex in load_split("reddit", tmp_path, "dev")] == ["post 4 text"]  # p5: no tldr
    assert [ex.source for ex in load_split("reddit", tmp_path, "test")] == ["post 6 text", "post 9 text"]
    (tmp_path / REDDIT_SPLITS_FILE).write_text(json.dumps({"train": "p1"}))
    with pytest.raises(HasheeError, match="lists of post ids"):
        load_split("reddit", tmp_path, "train")


def test_reddit_bad_lines(tmp_path):
    path = tmp_path / REDDIT_FILE
    path.write_text(json.dumps({"selftext_without_tldr": "a", "tldr": "b"}) + "\n{not json\n")
    with pytest.raises(HasheeError, match=rf"{re.escape(str(path))}:2: invalid JSON"):
        load_split("reddit", tmp_path, "train")
    path.write_text(json.dumps({"text": "a"}) + "\n")
    with pytest.raises(HasheeError, match=r":1: expected a post object"):
        load_split("reddit", tmp_path, "train")
    path.unlink()
    with pytest.raises(HasheeError, match=re.escape(str(path)) + ": file not found"):
        load_split("reddit", tmp_path, "train")


# ------------------------------------------------------------------ CSL / TTNews (CPT layout)
def test_cpt_json_list_and_lines(tmp_path):
    rows = [{"article": "中文摘要一。", "summarization": "标题一"}, {"article": "中文摘要二。", "summarization": "标题二"}]
    (tmp_path / "train.json").write_text("\ufeff" + json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    examples = load_split("csl", tmp_path, "train")
    assert [(ex.source, ex.target) for ex in examples] == [(r["article"], r["summarization"]) for r in rows]
    assert [ex.where.rsplit(":", 1)[1] for ex in examples] == ["2", "6"]
    (tmp_path / "dev.json").write_text("\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    assert [ex.where.rsplit(":", 1)[1] for ex in load_split("ttnews", tmp_path, "dev")] == ["1", "2"]


@pytest.mark.parametrize("text, message", [
    ('[{"article": "中文", "summarization": "标题"},\n {"article": "中文"}]', r":2: missing field 'summarization'"),
    ('[{"article": "中文", "summarization": "标题"},\n {"article": "中文", "summarization": 3}]',
     r":2: field 'summarization' must be a string"),
    ('[{"article": "中文", "summarization": "标题"},\n\n {"article": "中文" "summarization": "x"}]', r":3: invalid JSON"),
    ('[{"article": "中文", "summarization": "标题"}', r":1: invalid JSON \(the list is not closed"),
    ('[{"article": "english only", "summarization": "x"}, {"article": "also english", "summarization": "y"}]',
     r":1: csl is a Chinese data set, but 2 of 2 sources contain no CJK"),
])
def test_cpt_json_errors(tmp_path, text, message):
    (tmp_path / "test.json").write_text(text, encoding="utf-8")
    with pytest.raises(HasheeError, match=message):
        load_split("csl", tmp_path, "test")


def test_dataset_registry():
    assert {n: (d.language, d.layout) for n, d in DATASETS.items()} == {
        "cnndm": ("en", "cnndm"), "reddit": ("en", "reddit-tifu"), "csl": ("zh", "cpt-json"),
        "ttnews": ("zh", "cpt-json"), "demo-en": ("en", "cnndm"), "demo-zh": ("zh", "cpt-json")}
