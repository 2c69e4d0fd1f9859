"""The ELUE and summarization method registries are two instances of one mechanism
(hashee.core.methods.Registry), and both HashEE methods share one hash plumbing (hashee_method.TokenHashExits): they
answer unknown names, unknown setting keys, "all" and hash fitting the same way."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from hashee.core.errors import HasheeError
from hashee.core.hashee_method import HashSource, TokenHashExits
from hashee.core.methods import METHODS, Registry
from hashee.studies.summarization.methods import SUMM_METHODS

REGISTRIES = [(METHODS, "method"), (SUMM_METHODS, "summarization method")]
VOCAB = 40


def source(num_layers: int = 4) -> HashSource:
    tokenizer = SimpleNamespace(all_special_ids=[0, 1, 2], get_vocab=lambda: {f"t{i}": i for i in range(VOCAB)})
    return HashSource(tokenizer, VOCAB, num_layers, torch.randn(VOCAB, 8, generator=torch.Generator().manual_seed(0)))


IDS = [[0, 5, 6, 7, 5, 1], [0, 8, 5, 9, 1], [0, 6, 6, 10, 11, 1]]


@pytest.mark.parametrize("registry, kind", REGISTRIES)
def test_both_registries_refuse_an_unknown_name_alike(registry, kind):
    assert isinstance(registry, Registry)
    names = ", ".join(sorted(registry.classes()))
    with pytest.raises(HasheeError, match=rf"^unknown {kind} 'no-such-method'; valid: {re.escape(names)}$"):
        registry.get("no-such-method")
    assert "hashee" in registry.classes()  # the names overlap: one registry per study


@pytest.mark.parametrize("registry", [METHODS, SUMM_METHODS])
def test_both_registries_refuse_an_unknown_setting_key_alike(registry):
    with pytest.raises(HasheeError, match=r"^method hashee: unknown setting key\(s\) colour; valid: hash, "):
        registry.get("hashee", "hash=frequency,colour=red")


def test_all_means_every_layer_in_both_registries():
    assert METHODS.get("static", "layers=all").num_layers is None
    truncated = SUMM_METHODS.get("truncated", "enc_layers=all,dec_layers=all")
    assert (truncated.enc_layers, truncated.dec_layers) == (None, None)
    # a HashEE hash for layers=all spreads over every layer of the backbone, as one without `layers`
    hashee = METHODS.get("hashee", "hash=frequency,layers=all,buckets=2")
    assert hashee.fit_hash(IDS, [0, 1, 0], source(4), seed=1).num_layers == 4


def test_both_hashee_methods_fit_the_same_hash_from_the_same_tokens():
    elue = METHODS.get("hashee", "hash=frequency,buckets=2")
    summ = SUMM_METHODS.get("hashee", "hash=frequency,buckets=2")
    assert isinstance(elue, TokenHashExits) and isinstance(summ, TokenHashExits)
    fitted = [method.fit_hash(IDS, [], source(4), seed=3) for method in (elue, summ)]
    assert torch.equal(fitted[0].exit_layer, fitted[1].exit_layer)
    assert sorted(set(fitted[0].exit_layer.tolist())) == [1, 3, 4]  # two buckets on 4 layers; unseen/special at 4
    # a --buckets value applies to settings that name none, never over the setting's own
    three = SUMM_METHODS.get("hashee", "hash=frequency").fit_hash(IDS, [], source(4), seed=3, buckets=4)
    assert sorted(set(three.exit_layer.tolist())) == [1, 2, 3, 4]
    assert torch.equal(summ.fit_hash(IDS, [], source(4), seed=3, buckets=4).exit_layer, fitted[1].exit_layer)
    for method in (METHODS.get("hashee", "hash=mi"), SUMM_METHODS.get("hashee", "hash=mi")):
        with pytest.raises(HasheeError, match=r"^setting 'hash=mi': the mi hash needs class labels"):
            method.fit_hash(IDS, [], source(4), seed=3)
    for method in (METHODS.get("hashee", "buckets=all"), SUMM_METHODS.get("hashee", "buckets=all")):
        with pytest.raises(HasheeError, match=r"^method hashee: setting buckets='all' is not a number of buckets$"):
            method.fit_hash(IDS, [], source(4), seed=3)
