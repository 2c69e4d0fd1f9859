"""FLOPs in ELUE's convention through fvcore, cross-checked against analytic counts."""

import pytest
import torch
from torch import nn

from hashee.core.errors import HasheeError
from hashee.core.modeling import EncoderConfig, TokenExitEncoder, encoder_flop_modules, encoder_traces
from hashee.measure.flops import FlopCounter, analytic_layer_flops, bert_base_flops, count_module_flops


def test_bert_base_128_tokens_matches_analytic():
    flops = bert_base_flops([128], num_labels=2)[0]
    length, hidden = 128, 768
    analytic = 12 * (12 * length * hidden ** 2 + 2 * length ** 2 * hidden)  # 11.17 G
    assert abs(flops - analytic) / analytic < 0.01


def test_sdpa_is_counted_not_dropped():
    config = EncoderConfig(hidden_size=64, num_heads=4, intermediate_size=128, num_layers=1)
    layer = encoder_flop_modules(TokenExitEncoder(config))["layer_1"]
    flops = count_module_flops(layer, (torch.zeros(10, 10, 64),))
    assert flops == analytic_layer_flops(10, 10, 64, 128, 4)


def test_hashee_trace_equals_analytic_count():
    config = EncoderConfig(hidden_size=64, num_heads=4, intermediate_size=128, num_layers=4, vocab_size=50)
    encoder = TokenExitEncoder(config).eval()
    ids = torch.randint(1, 50, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    exits = torch.randint(1, 5, ids.shape)
    exits[:, 0] = 4
    with torch.no_grad():
        out = encoder(ids, mask, None, exits)
    traces = encoder_traces(mask, out.active_counts, 64, head=())
    counter = FlopCounter(encoder_flop_modules(encoder))
    for trace, counts, length in zip(traces, out.active_counts.tolist(), mask.sum(1).tolist()):
        embedding_layer_norm = 2 * length * 64
        analytic = embedding_layer_norm + sum(analytic_layer_flops(n, length, 64, 128, 4) for n in counts)
        assert counter.trace_flops(trace) == analytic


def test_fewer_active_tokens_cost_less():
    config = EncoderConfig(hidden_size=64, num_heads=4, intermediate_size=128, num_layers=1)
    counter = FlopCounter(encoder_flop_modules(TokenExitEncoder(config)))
    from hashee.core.trace import ModuleCall
    full = counter.call_flops(ModuleCall("layer_1", (20, 20, 64)))
    half = counter.call_flops(ModuleCall("layer_1", (10, 20, 64)))
    assert half < full and counter.call_flops(ModuleCall("layer_1", (10, 20, 64))) == half


def test_counting_leaves_every_module_in_its_own_mode():
    """The counter's wrappers are never put in eval mode themselves; counting must not hand their mode
    (training) down to the evaluated model's layers: dropout would then run in every later prediction."""
    from hashee.core.trace import ModuleCall

    config = EncoderConfig(hidden_size=64, num_heads=4, intermediate_size=128, num_layers=2, vocab_size=50)
    encoder = TokenExitEncoder(config).eval()
    modules = encoder_flop_modules(encoder)
    assert modules["layer_1"].training  # a fresh wrapper
    FlopCounter(modules).trace_flops((ModuleCall("emb", (9,)), ModuleCall("layer_1", (9, 9, 64))))
    assert not any(module.training for module in encoder.modules())
    assert modules["layer_1"].training and modules["emb"].training


def test_unsupported_costly_op_fails_loudly():
    class Conv(nn.Module):
        def forward(self, x):
            return torch.cdist(x, x)

    with pytest.raises(HasheeError, match="add a handle"):
        count_module_flops(Conv(), (torch.zeros(1, 5, 8),))


def test_unknown_module_in_trace():
    from hashee.core.trace import ModuleCall
    with pytest.raises(HasheeError, match="exit_9"):
        FlopCounter({}).call_flops(ModuleCall("exit_9", (4,)))


def test_identical_layers_share_one_trace_but_different_ones_do_not(monkeypatch):
    import hashee.measure.flops as flops_module
    from hashee.core.trace import ModuleCall

    calls = []
    real = flops_module.count_module_flops
    monkeypatch.setattr(flops_module, "count_module_flops", lambda m, i: calls.append(1) or real(m, i))
    config = EncoderConfig(hidden_size=32, num_heads=2, intermediate_size=64, num_layers=3)
    modules = encoder_flop_modules(TokenExitEncoder(config))
    modules["wide"] = encoder_flop_modules(TokenExitEncoder(EncoderConfig(
        hidden_size=32, num_heads=2, intermediate_size=128, num_layers=1)))["layer_1"]
    counter = FlopCounter(modules)
    same = {counter.call_flops(ModuleCall(f"layer_{i}", (5, 8, 32))) for i in (1, 2, 3)}
    assert len(same) == 1 and len(calls) == 1
    assert counter.call_flops(ModuleCall("wide", (5, 8, 32))) > same.pop() and len(calls) == 2
