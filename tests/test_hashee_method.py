"""The HashEE method (hashee.core.hashee_method.HashEE, registered as "hashee"): every token exits at its hashed
layer, a batch gives each instance its alone result, save/load keeps predictions, and a checkpoint
without its hash file is a one-line error naming that file.
The hashes themselves: tests/test_hashing.py; the token-exit encoder: tests/test_modeling.py."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from exit_helpers import alone, random_batch, tiny_config

from hashee.core.errors import HasheeError
from hashee.core.hashing import fit_hash
from hashee.core.methods import get_method
from hashee.core.tasks import get_task

LAYERS, BUCKETS = 6, 3
LENGTHS = (9, 5, 12, 7, 3, 10, 8, 6)
CLS = 1
SPECIAL = (0, CLS, 2)  # pad, [CLS], [SEP] of the tiny vocabulary
SEEN = range(3, 50)  # ids the hash is fitted on; 50..59 stay unseen and exit at the last layer


def fitted(hash_name, vocab_size, special_ids=SPECIAL, fingerprint="tiny-vocab"):
    """A hash fitted on random sentences in which lower ids are more frequent (frequency: several buckets)."""
    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, len(SEEN) + 1)
    rows = [[CLS, *rng.choice(SEEN, size=12, p=weights / weights.sum()).tolist(), 2] for _ in range(60)]
    labels = rng.integers(0, 2, size=len(rows)).tolist()
    return fit_hash(hash_name, rows, labels, vocab_size=vocab_size, num_layers=LAYERS, num_buckets=BUCKETS,
                    special_ids=special_ids, seed=1, fingerprint=fingerprint)


def tiny_hashee(hash_name="frequency", vocab_size=60, **hash_options):
    """The method and a tiny random HashEE model with its fitted hash attached (eval mode)."""
    method = get_method("hashee", f"hash={hash_name},layers={LAYERS},buckets={BUCKETS}")
    torch.manual_seed(0)
    model = method.build(replace(tiny_config(LAYERS), vocab_size=vocab_size), get_task("SST-2")).eval()
    method.attach_hash(model, fitted(hash_name, vocab_size, **hash_options))
    return method, model


def hashee_batch():
    """Random sentences that start with [CLS], which the classifier reads (special: it runs every layer)."""
    batch = random_batch(LENGTHS, seed=2)
    batch["input_ids"][:, 0] = CLS
    return batch


def active_per_layer(trace):
    return {call.name: call.shape[0] for call in trace if call.name.startswith("layer_")}


@pytest.mark.parametrize("hash_name", ["frequency", "rand-cons", "mi"])
def test_every_token_exits_at_its_hashed_layer(hash_name):
    method, model = tiny_hashee(hash_name)
    token_hash = model.token_hash
    batch = hashee_batch()
    real = batch["attention_mask"].bool()
    passed = []  # the exit layers the encoder is given, one per token
    hook = model.bert.register_forward_pre_hook(lambda module, args: passed.append(args[3]))
    try:
        with torch.no_grad():
            prediction = method.predict(model, batch, {})
    finally:
        hook.remove()
    hashed = token_hash.exit_layer[batch["input_ids"]]  # the hash's table: token id -> its bucket's layer
    assert set(hashed[real].tolist()) == {*token_hash.layers, LAYERS}  # early and late exits in this batch
    assert set(token_hash.exit_layer[list(SPECIAL)].tolist()) == {LAYERS}
    assert torch.equal(passed[0][real], hashed[real])
    # The trace: layer l ran exactly the tokens whose hashed layer is l or later.
    for trace, layers, is_real in zip(prediction.traces, hashed, real):
        layers = layers[is_real]
        expected = {f"layer_{layer}": int((layers >= layer).sum()) for layer in range(1, LAYERS + 1)}
        assert active_per_layer(trace) == {name: n for name, n in expected.items() if n > 0}


@pytest.mark.parametrize("hash_name", ["frequency", "rand-incons"])
def test_batch_gives_each_instance_its_alone_result(hash_name):
    method, model = tiny_hashee(hash_name)
    batch = hashee_batch()
    with torch.no_grad():
        together = method.predict(model, batch, {})
        singles = [method.predict(model, alone(batch, i), {}) for i in range(len(LENGTHS))]
    # Some tokens leave early: a layer runs fewer tokens than its instance has.
    assert any(call.shape[0] < call.shape[1] for trace in together.traces for call in trace
               if call.name.startswith("layer_"))
    for i, single in enumerate(singles):
        assert single.traces[0] == together.traces[i], i
        torch.testing.assert_close(single.outputs[0], together.outputs[i], atol=1e-5, rtol=1e-4)


@pytest.fixture
def saved_hashee(minilm2, tmp_path):
    """A tiny HashEE model over MiniLM's vocabulary (its tokenizer is saved with it), saved to tmp_path/m."""
    from hashee.core.checkpoint import save_trained
    from hashee.core.hashing import vocab_fingerprint

    tokenizer = minilm2.tokenizer
    method, model = tiny_hashee(vocab_size=minilm2.config.vocab_size, special_ids=tuple(tokenizer.all_special_ids),
                                fingerprint=vocab_fingerprint(tokenizer))
    save_trained(tmp_path / "m", method, model, tokenizer, get_task("SST-2"), {"seed": 1})
    return method, model, tmp_path / "m"


def test_save_load_round_trip_preserves_predictions(saved_hashee):
    from hashee.core.checkpoint import load_trained

    method, model, directory = saved_hashee
    loaded = load_trained(directory, expect_method="hashee")
    assert loaded.model.token_hash == model.token_hash
    batch = hashee_batch()
    with torch.no_grad():
        before = method.predict(model, batch, {})
        after = loaded.method.predict(loaded.model, batch, {})
    assert after.traces == before.traces
    assert torch.equal(after.outputs, before.outputs)


def test_a_checkpoint_without_its_hash_file_is_a_one_line_error_naming_it(saved_hashee, tmp_path, capsys):
    from hashee import cli
    from hashee.core.checkpoint import load_trained

    _, _, directory = saved_hashee
    hash_file = directory / "hash.pt"
    hash_file.unlink()
    with pytest.raises(HasheeError) as error:
        load_trained(directory)
    assert str(hash_file) in str(error.value) and "\n" not in str(error.value)
    assert cli.run(["evaluate", "--model", str(directory), "--data-dir", str(tmp_path),
                    "--out", str(tmp_path / "rows.csv"), "--device", "cpu"]) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and str(hash_file) in message


def test_predicting_without_a_hash_is_a_clear_error():
    method = get_method("hashee", f"layers={LAYERS}")
    model = method.build(tiny_config(LAYERS), get_task("SST-2")).eval()
    with pytest.raises(HasheeError, match="no hash attached"):
        method.predict(model, hashee_batch(), {})
