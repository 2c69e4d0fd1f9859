"""PoWER-BERT: significance = attention received, top-k_j kept per layer from the learned retention,
pruned tokens really removed (shrunk traces, FLOPs), batch = alone, the ELUE submission round trip."""

import pytest
import torch
from exit_helpers import alone, tiny_config
from pruning_helpers import (
    batch,
    captured_probs,
    check_batch_equals_alone,
    layer_lengths,
    mean_flops,
    submission_round_trip,
    tiny_pruning,
)

from baselines.powerbert import ranks, retention_budgets
from hashee.core import modeling
from hashee.core.methods import get_method
from hashee.core.modeling import attention_received, layer_with_attention
from hashee.core.tasks import get_task


def halve(model):
    model.pruner.retention.mul_(0.5)


def test_significance_is_attention_received_summed_over_heads_and_real_queries():
    # 1 instance, 2 heads, 3 positions, the last one padding.
    probs = torch.tensor([[[[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.3, 0.3, 0.4]],
                           [[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.1, 0.1, 0.8]]]])
    mask = torch.tensor([[True, True, False]])
    # by hand: token 0 receives 0.5 + 0.2 + 0.9 + 0.6, token 1 0.5 + 0.8 + 0.1 + 0.4 (padded query row ignored)
    torch.testing.assert_close(attention_received(probs, mask), torch.tensor([[2.2, 1.8, 0.0]]))
    torch.testing.assert_close(ranks(torch.tensor([[5.0, 1.0, 3.0, 2.0]]), torch.tensor([[True] * 4])),
                               torch.tensor([[3, 2, 0, 1]]))  # [CLS] last, then by significance


def test_layer_with_attention_is_the_layer_and_its_softmax():
    method, model = tiny_pruning("powerbert", halve)
    data = batch()
    key_mask = data["attention_mask"].bool()
    layer = model.bert.encoder.layer[0]
    hidden = model.bert.embeddings(data["input_ids"])
    with torch.no_grad():
        out, probs = layer_with_attention(layer, hidden, key_mask)
        torch.testing.assert_close(out[key_mask], layer(hidden, key_mask)[key_mask], atol=1e-5, rtol=1e-5)
        q = layer.attention.self.query(hidden)[1, :, :8]  # instance 1, head 0 (head_dim 8)
        k = layer.attention.self.key(hidden)[1, :, :8]
        scores = q @ k.T / 8 ** 0.5
        scores[:, ~key_mask[1]] = float("-inf")
        torch.testing.assert_close(probs[1, 0], torch.softmax(scores, dim=-1))


@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize("slice_bytes", [1, 10**9])  # one instance at a time; the whole batch at once
def test_packed_layer_equals_the_explicit_softmax(monkeypatch, slice_bytes, padded):
    """Inference runs a layer over the real tokens alone, their attention a few instances at a time
    (`packed_layer`, RECEIVED_SLICE_BYTES); training over the padded batch with the whole probabilities:
    the same outputs and the same attention received, token for token, padded keys 0."""
    monkeypatch.setattr("hashee.core.modeling.RECEIVED_SLICE_BYTES", slice_bytes)
    method, model = tiny_pruning("powerbert", halve)
    data = batch()
    key_mask = data["attention_mask"].bool()
    if not padded:
        key_mask = torch.ones_like(key_mask)
    layer = model.bert.encoder.layer[1]
    with torch.no_grad():
        hidden = model.bert.embeddings(data["input_ids"])
        layout = modeling.prefix_mask(key_mask.sum(dim=1))  # real tokens are the first ones here
        assert torch.equal(layout, key_mask[:, :layout.shape[1]])
        states, received = modeling.packed_layer(layer, hidden[key_mask], layout)
        out, probs = layer_with_attention(layer, hidden, key_mask)
    expected = attention_received(probs, key_mask)
    torch.testing.assert_close(received[layout], expected[key_mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(states, out[key_mask], atol=1e-5, rtol=1e-5)
    assert torch.all(received[~layout] == 0) and received[layout].gt(0).all()


def raise_thresholds(model):  # LTP (tests/test_ltp.py): thresholds 0.1025, 0.105, 0.1075
    model.pruner.learned.fill_(0.1)


@pytest.mark.parametrize("groups", ["cpu", "whole batch"])
@pytest.mark.parametrize("slice_bytes", [1, 10**9])
@pytest.mark.parametrize("name, setup", [("powerbert", halve), ("ltp", raise_thresholds)])
def test_packed_inference_equals_the_padded_training_path(monkeypatch, name, setup, slice_bytes, groups):
    """Inference runs the real tokens alone (`packed_layer`: no padding in any projection; on CPU the
    attention by runs of equal lengths, elsewhere the whole batch padded); training runs the padded batch
    with the probabilities whole. Same tokens kept, same outputs, on a batch of ragged lengths."""
    monkeypatch.setattr("hashee.core.modeling.RECEIVED_SLICE_BYTES", slice_bytes)
    if groups == "whole batch":  # what a GPU runs
        monkeypatch.setattr(modeling, "_attention_groups", lambda counts, size, on_cpu: [(0, len(counts))])
    method, model = tiny_pruning(name, setup)
    data = batch()
    inference = method.inference_settings()[0]
    logits, out = method._run(model, data, method._decide(model, data, inference))  # gradients on: padded
    assert logits.requires_grad
    with torch.no_grad():
        packed_logits, packed = method._run(model, data, method._decide(model, data, inference))
    assert torch.equal(packed.layer_lengths, out.layer_lengths) and torch.equal(packed.key_mask, out.key_mask)
    assert (out.layer_lengths[:, -1] < out.layer_lengths[:, 0]).sum() >= 4  # tokens really left, in most instances
    assert len(set(out.layer_lengths[:, 1].tolist())) > 1  # ragged: different counts after pruning
    torch.testing.assert_close(packed_logits, logits.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(packed.last_hidden_state[packed.key_mask], out.last_hidden_state[out.key_mask].detach(),
                               atol=1e-5, rtol=1e-5)


def test_attention_groups_are_runs_of_equal_lengths_within_the_slice():
    half = modeling.RECEIVED_SLICE_BYTES // 2  # each instance's scores: half a slice, two per group on CPU
    assert modeling._attention_groups([5, 5, 5, 3, 3, 7], half, True) == [(0, 2), (2, 3), (3, 5), (5, 6)]
    assert modeling._attention_groups([4, 4, 4], 1, True) == [(0, 3)]
    assert modeling._attention_groups([5, 5, 5, 3, 3, 7], half, False) == [(0, 6)]  # other devices: padded


def test_retention_budgets_by_hand_and_monotone():
    retention = torch.tensor([[1.0, 0.5, 0.5, 0.2], [1.0, 1.0, 1.0, 1.0], [0.1, 0.1, 0.0, 0.0]])
    budgets = retention_budgets(retention, torch.tensor([5, 3]), keep=1.0)
    # n=5: 4 non-[CLS]; masses 2.2, 4, 0.2 -> 1+3, 1+4 capped by monotone to 4, 1+1; n=3: 1.5, 2, 0.2 -> 3, 3, 2
    assert budgets.tolist() == [[4, 4, 2], [3, 3, 2]]
    assert retention_budgets(retention, torch.tensor([5]), keep=0.5).tolist() == [[3, 3, 2]]


def test_extraction_keeps_cls_and_the_most_significant_and_shrinks_the_layers():
    method, model = tiny_pruning("powerbert", halve)
    data = batch()
    inference = method.inference_settings()[0]
    with torch.no_grad():
        traces = method.predict(model, data, inference).traces
    budgets = retention_budgets(model.pruner.retention, data["attention_mask"].sum(dim=1), 1.0)
    for i, (trace, n) in enumerate(zip(traces, data["attention_mask"].sum(dim=1).tolist())):
        shapes = layer_lengths(trace)
        assert shapes[0] == (n, n, 16)  # layer 1 runs on every token
        assert [s[0] for s in shapes[1:]] == budgets[i].tolist()  # then k_j tokens, queries = keys
        assert all(s[0] == s[1] for s in shapes)
    assert any(s[0] < trace[0].shape[0] for trace in traces for s in layer_lengths(trace))
    # which tokens survive layer 1: [CLS] and the k_1 - 1 most significant others
    one = alone(data, 2)
    with torch.no_grad():
        probs = captured_probs(model, one)
        significance = probs.sum(dim=(0, 1))
        kept = {}

        def spy(layer, received, key_mask):
            verdict = rule(layer, received, key_mask)
            kept.setdefault(layer, verdict[0].nonzero().flatten().tolist())
            return verdict

        rule = method.hard_rule(model, one["attention_mask"], inference)
        method._run(model, one, spy)
    k = int(budgets[2, 0])
    others = torch.argsort(significance[1:], descending=True)[:k - 1] + 1
    assert kept[1] == sorted([0, *others.tolist()])


def test_batch_equals_alone():
    method, model = tiny_pruning("powerbert", halve)
    check_batch_equals_alone(method, model, batch())
    method, model = tiny_pruning("powerbert", halve, task="STS-B")
    check_batch_equals_alone(method, model, batch(seed=3))


def test_flops_fall_as_fewer_vectors_are_kept_and_nothing_is_pruned_before_the_search():
    method, model = tiny_pruning("powerbert", halve)
    data = batch()
    points = [mean_flops(method, model, data, inference) for inference in method.inference_settings()]
    assert points[0] > points[1] > points[2]
    static = get_method("static")
    torch.manual_seed(0)
    plain = static.build(tiny_config(4), get_task("SST-2")).eval()
    model.pruner.searched.fill_(False)
    full = mean_flops(method, model, data, method.inference_settings()[-1])
    assert full == mean_flops(static, plain, data, {}) > points[0]


def test_soft_extraction_scales_by_rank_and_penalises_the_mass():
    method, model = tiny_pruning("powerbert", halve)
    data = batch()
    penalties = []
    rule = method.soft_rule(model, data["attention_mask"], penalties)
    key_mask = data["attention_mask"].bool()
    hidden = model.bert.embeddings(data["input_ids"])
    _, probs = layer_with_attention(model.bert.encoder.layer[0], hidden, key_mask)
    received = attention_received(probs, key_mask)
    weights = rule(1, received, key_mask)
    assert torch.all(weights[:, 0] == 1.0) and torch.allclose(weights[:, 1:][key_mask[:, 1:]], torch.tensor(0.5))
    torch.testing.assert_close(penalties[0], torch.tensor(0.5))  # layer 1 x mass fraction 0.5
    rule(2, received, key_mask)
    torch.testing.assert_close(penalties[1], torch.tensor(1.0))  # layer 2 x 0.5: deeper layers weigh more
    penalties[0].backward()
    assert model.pruner.retention.grad[0, :4].gt(0).all()


def test_submission_round_trip(tmp_path, minilm, monkeypatch):
    calls, rows, flops, code = submission_round_trip(tmp_path, minilm.tokenizer, "powerbert", halve, monkeypatch)
    assert all(c.shape[0] == c.shape[1] for c in calls) and any(c.name != "layer_1" and c.shape[0] < 8 for c in calls)
    for task, frame in rows.items():
        first = frame[frame["setting"] == "keep=1.0"].iloc[0]
        assert flops[task]["files"][f"{task}_0.tsv"]["mflops"] == pytest.approx(first["mflops"], abs=1e-4)
    assert code == 0
