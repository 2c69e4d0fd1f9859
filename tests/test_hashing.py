"""Tests of hashee.core.hashing on small synthetic vocabularies (no tokenizer or model downloads)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hashee.core.errors import HasheeError
from hashee.core.hashing import HASH_NAMES, TokenHash, bucket_layers, fit_hash, vocab_fingerprint

V = 200
SPECIAL = (0, 1, 2)  # pad, cls, sep
FP = "fp-test"


def _corpus(seed: int = 0, n: int = 120, length: int = 20, high: int = 150):
    """Random sentences over ids 3..high-1 wrapped in [CLS] ... [SEP]; ids >= high never occur."""
    rng = np.random.default_rng(seed)
    rows = [[1, *rng.integers(3, high, size=length).tolist(), 2] for _ in range(n)]
    labels = rng.integers(0, 2, size=n).tolist()
    return rows, labels


def _fit(name, rows=None, labels=None, **kw):
    if rows is None:
        rows, labels = _corpus()
    kw.setdefault("num_layers", 12)
    kw.setdefault("seed", 7)
    if name == "clustered" and "word_embeddings" not in kw:
        kw["word_embeddings"] = torch.randn(V, 8, generator=torch.Generator().manual_seed(0))
    return fit_hash(name, rows, labels, vocab_size=V, special_ids=SPECIAL, fingerprint=FP, **kw)


def test_bucket_layers():
    assert bucket_layers(12, 6) == [1, 3, 5, 7, 9, 11]
    assert bucket_layers(6, 6) == [1, 2, 3, 4, 5, 6]
    assert bucket_layers(12, 4) == [1, 4, 7, 10]
    with pytest.raises(HasheeError):
        bucket_layers(6, 7)


def test_unknown_hash_name_lists_valid_names():
    with pytest.raises(HasheeError, match="frequency") as err:
        _fit("entropy")
    assert "rand-cons" in str(err.value) and "clustered" in str(err.value)


def test_frequency_equal_buckets_most_frequent_first():
    # Type 3+k occurs (40 - k) times: strictly decreasing frequency with id, 32 seen types.
    rows = [[1] + [3 + k] * (40 - k) + [2] for k in range(32)]
    h = _fit("frequency", rows, [0] * len(rows), num_layers=12, num_buckets=6)
    layers = h.exit_layer[3:35].tolist()
    # 32 types / 6 buckets: 5 each, the last takes 5 + 2.
    assert layers == [1] * 5 + [3] * 5 + [5] * 5 + [7] * 5 + [9] * 5 + [11] * 7
    assert h.exit_layer[3] == 1 and h.exit_layer[34] == 11


def test_frequency_ties_broken_by_id():
    rows = [[1, *range(3, 15), 2]]  # 12 types, all count 1
    h = _fit("frequency", rows, [0], num_layers=6, num_buckets=6)
    assert h.exit_layer[3:15].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]


def test_rand_cons_is_a_function_of_the_id_and_seeded():
    h = _fit("rand-cons", seed=3)
    ids = torch.tensor([[5, 9, 5, 17, 9, 5], [9, 5, 17, 17, 5, 9]])
    a, b = h.assign(ids), h.assign(ids, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    for tok in (5, 9, 17):
        assert len(set(a[ids == tok].tolist())) == 1
    assert torch.equal(_fit("rand-cons", seed=3).exit_layer, h.exit_layer)
    assert not torch.equal(_fit("rand-cons", seed=4).exit_layer, h.exit_layer)
    # equal buckets over the seen non-special types (147 types: 24 each, the last 27)
    sizes = [int((h.exit_layer[h.seen] == layer).sum()) for layer in bucket_layers(12, 6)]
    assert sizes == [24] * 5 + [27]


def test_rand_incons_varies_per_occurrence_and_is_reproducible():
    h = _fit("rand-incons")
    ids = torch.full((4, 50), 5)
    ids[:, 0], ids[:, -1] = 1, 2
    drawn = h.assign(ids, generator=torch.Generator().manual_seed(11))
    inner = drawn[:, 1:-1]
    assert len(set(inner.flatten().tolist())) > 1
    assert set(inner.flatten().tolist()) <= set(bucket_layers(12, 6))
    assert torch.equal(drawn, h.assign(ids, generator=torch.Generator().manual_seed(11)))
    assert not torch.equal(drawn, h.assign(ids, generator=torch.Generator().manual_seed(12)))
    # No generator: deterministic, still varying, independent of batch and trailing padding.
    det = h.assign(ids)
    assert torch.equal(det, h.assign(ids))
    assert len(set(det[:, 1:-1].flatten().tolist())) > 1
    one_row = h.assign(torch.cat([ids[:1], torch.zeros(1, 7, dtype=torch.long)], dim=1))
    assert torch.equal(one_row[0, :50], det[0])
    assert not torch.equal(det, dataclasses.replace(h, seed=h.seed + 1).assign(ids))


@pytest.mark.parametrize("name", HASH_NAMES)
def test_special_and_unseen_exit_last(name):
    h = _fit(name)
    unseen = list(range(150, V))  # never in the corpus
    ids = torch.tensor([[1, *SPECIAL, *unseen[:20], 2]])
    out = h.assign(ids, generator=torch.Generator().manual_seed(0))
    assert out.tolist() == [[12] * ids.shape[1]]
    assert (h.exit_layer[list(SPECIAL)] == 12).all() and (h.exit_layer[unseen] == 12).all()
    assert not h.seen[unseen].any()
    seen_out = h.assign(torch.arange(3, 150).unsqueeze(0), generator=torch.Generator().manual_seed(0))
    assert ((seen_out >= 1) & (seen_out <= 12)).all()
    if name != "rand-incons":
        assert torch.equal(h.assign(torch.arange(3, 150)), h.exit_layer[3:150])


def test_mi_three_classes_class_specific_token_exits_earlier():
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for i in range(90):
        y = i % 3
        body = rng.integers(10, 60, size=8).tolist() + [5]  # 5: in every instance, all classes
        if y == 2:
            body.append(7)  # 7: only in class 2
        rows.append([1, *body, 2])
        labels.append(["neutral", "entailment", "contradiction"][y])
    h = _fit("mi", rows, labels, num_layers=6, num_buckets=6)
    assert h.exit_layer[7] == 1
    assert h.exit_layer[5] > h.exit_layer[7]


def test_mi_regression_bins_target():
    rng = np.random.default_rng(1)
    rows, target = [], []
    for _ in range(100):
        score = float(rng.uniform(0, 5))
        body = rng.integers(10, 60, size=6).tolist() + [5]
        if score > 4.0:
            body.append(7)  # 7 marks the top of the score range
        rows.append([1, *body, 2])
        target.append(score)
    h = _fit("mi", rows, target, num_layers=6, num_buckets=6, is_regression=True, regression_bins=5)
    assert h.exit_layer[7] == 1 and h.exit_layer[5] > h.exit_layer[7]
    with pytest.raises(HasheeError):
        _fit("mi", rows, ["x"] * len(rows), is_regression=True)


def test_clustered_orders_clusters_by_summed_norm():
    # Three tight clusters along separate axes with norms 1, 10 and 100.
    g = torch.Generator().manual_seed(0)
    emb = torch.zeros(V, 3)
    scale_of = {0: 100.0, 1: 1.0, 2: 10.0}
    for i in range(V):
        axis = i % 3
        emb[i, axis] = scale_of[axis]
    emb += 0.01 * torch.randn(V, 3, generator=g)
    rows = [[1, *range(3, 150), 2]]
    h = _fit("clustered", rows, [0], num_layers=6, num_buckets=3, word_embeddings=emb)
    layers = bucket_layers(6, 3)  # [1, 3, 5]
    for i in (3, 4, 5, 30, 31, 32):
        assert h.exit_layer[i] == layers[[1, 10, 100].index(scale_of[i % 3])]
    assert h.exit_layer[170] == 6 and h.exit_layer[0] == 6  # unseen, special
    assert torch.equal(
        h.exit_layer,
        _fit("clustered", rows, [0], num_layers=6, num_buckets=3, word_embeddings=emb).exit_layer,
    )
    with pytest.raises(HasheeError, match="word_embeddings"):
        fit_hash(
            "clustered", rows, [0], vocab_size=V, num_layers=6, special_ids=SPECIAL, seed=0, fingerprint=FP
        )


def test_clustered_summed_norm_not_mean_norm():
    # Many small-norm members outweigh a few large-norm ones: the big cluster exits later.
    emb = torch.zeros(V, 2)
    emb[:180, 0] = 1.0  # 180 members of norm 1 -> sum 180
    emb[180:, 1] = 5.0  # 20 members of norm 5 -> sum 100
    emb += 0.001 * torch.randn(V, 2, generator=torch.Generator().manual_seed(0))
    rows = [[*range(3, V)]]
    h = _fit("clustered", rows, [0], num_layers=2, num_buckets=2, word_embeddings=emb)
    assert h.exit_layer[190] == 1 and h.exit_layer[10] == 2


@pytest.mark.parametrize("name", HASH_NAMES)
def test_save_load_round_trip(tmp_path, name):
    h = _fit(name)
    path = tmp_path / "sub" / f"{name}.pt"
    h.save(path)
    back = TokenHash.load(path, vocab_fingerprint=FP, vocab_size=V)
    assert back == h
    assert back.exit_layer.dtype == torch.long and back.special_ids == SPECIAL
    ids = torch.randint(0, V, (3, 16), generator=torch.Generator().manual_seed(2))
    assert torch.equal(back.assign(ids), h.assign(ids))
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_a_saved_hash_is_the_same_bytes_every_time(tmp_path):
    """Two saves of one hash are one file: the atomic writer's random temporary name stays out of it (torch.save
    to a path names the zip's records after that path), so runs on two machines give identical results/."""
    h = _fit("frequency")
    h.save(tmp_path / "a" / "hash.pt")
    h.save(tmp_path / "b" / "hash.pt")
    assert (tmp_path / "a" / "hash.pt").read_bytes() == (tmp_path / "b" / "hash.pt").read_bytes()


def test_load_vocab_mismatch_names_file(tmp_path):
    path = tmp_path / "freq.pt"
    _fit("frequency").save(path)
    with pytest.raises(HasheeError) as err:
        TokenHash.load(path, vocab_fingerprint="other-vocab")
    assert str(path) in str(err.value) and "other-vocab" in str(err.value) and FP in str(err.value)
    with pytest.raises(HasheeError) as err:
        TokenHash.load(path, vocab_size=V + 1)
    assert str(path) in str(err.value) and str(V + 1) in str(err.value) and str(V) in str(err.value)
    with pytest.raises(HasheeError, match="does not exist"):
        TokenHash.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("not a hash")
    with pytest.raises(HasheeError, match="junk.pt"):
        TokenHash.load(tmp_path / "junk.pt")


def test_out_of_range_ids_rejected():
    h = _fit("frequency")
    with pytest.raises(HasheeError):
        h.assign(torch.tensor([[V]]))
    with pytest.raises(HasheeError):
        _fit("frequency", [[1, V + 5]], [0])


def test_vocab_fingerprint_stable_and_sensitive():
    class Tok:
        def __init__(self, vocab):
            self.vocab = vocab

        def get_vocab(self):
            return dict(self.vocab)

    a = vocab_fingerprint(Tok({"[PAD]": 0, "a": 1, "b": 2}))
    assert a == vocab_fingerprint(Tok({"b": 2, "[PAD]": 0, "a": 1}))
    assert a != vocab_fingerprint(Tok({"[PAD]": 0, "a": 2, "b": 1}))
    assert len(a) == 16 and int(a, 16) >= 0


def test_mi_uses_presence_per_instance():
    from hashee.core.hashing import _mutual_information

    # 4 instances, labels 0,0,1,1. Token 5: in instances 0 (three times) and 2 -> independent of the
    # label when presence is counted once per instance (MI 0). Token 6: only in the two class-0
    # instances -> MI = p(x,0) log(p(x,0) / (p(x) p(0))) = 0.5 * log 2.
    rows = [[5, 5, 5, 6], [6], [5], [9]]
    flat = np.array([t for r in rows for t in r])
    row = np.repeat(np.arange(4), [len(r) for r in rows])
    mi = _mutual_information(flat, row, np.array([0, 0, 1, 1]), 10)
    assert mi[5] == pytest.approx(0.0, abs=1e-12)
    assert mi[6] == pytest.approx(0.5 * np.log(2))
    assert mi[7] == 0.0


def test_a_hash_must_fit_the_setting_and_the_model_it_is_attached_to():
    token_hash = _fit("frequency", num_layers=6)
    token_hash.check_fits("frequency", 6)
    with pytest.raises(HasheeError, match="holds a 'frequency' hash but the setting asks for 'mi'"):
        token_hash.check_fits("mi", 6)
    with pytest.raises(HasheeError, match="fitted for 6 layers, the model's encoder has 12"):
        token_hash.check_fits("frequency", 12)
