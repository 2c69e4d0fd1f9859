"""ElasticBERT dynamic exits: gradient equilibrium, per-exit pooler initialisation, the entropy and
patience rules, exact FLOPs. Batch = alone, save/load and trainer steps: tests/test_baselines_shared.py."""

import pytest
import torch
import torch.nn.functional as F
from exit_helpers import HEADS, INTER, H, mixed_inference, random_batch, tiny_config

from baselines.elasticbert import equilibrium_outputs, gradient_rescale
from hashee.core.backbones import Backbone
from hashee.core.methods import get_method
from hashee.core.modeling import TokenExitEncoder
from hashee.core.tasks import get_task
from hashee.measure.flops import FlopCounter, analytic_layer_flops


def tiny_model(method, task="SST-2", layers=6, seed=0):
    torch.manual_seed(seed)
    model = method.build(tiny_config(layers), get_task(task))
    for head in model.exits:
        torch.nn.init.normal_(head.classifier.weight, std=2.0)
    return model.eval()


def tiny_batch(lengths=(9, 5, 12, 7, 3, 10), seed=1):
    return random_batch(lengths, seed)


def exit_layers(traces):
    return [sum(call.name.startswith("layer_") for call in trace) for trace in traces]


def entropies(model, batch):
    from hashee.core.multiexit import entropy

    with torch.no_grad():
        outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    return outputs, torch.stack([entropy(out) for out in outputs], dim=1)  # (B, L)


# ---------------------------------------------------------------------------- gradient equilibrium
def test_gradient_rescale_is_identity_forward_and_scales_backward():
    x = torch.randn(3, 4, requires_grad=True)
    y = gradient_rescale(x, 0.25)
    assert torch.equal(y, x)
    (y * 2).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 0.5))


def _grads(model, loss):
    model.zero_grad()
    loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}


def test_gradient_equilibrium_scales_gradients_as_specified():
    """After layer i (0-based) the exit reads h through ×1/(L-i) and deeper layers through
    ×(L-i-1) (after the ×1/(L-i)). So exit j's gradient reaching layer i's output is scaled by
    1/(L-i) for j == i, and by Π_{k=i}^{j-1} (L-k-1)/(L-k) · 1/(L-j) = 1/(L-i) for j > i: every
    encoder parameter of layer i (and the embeddings, i = 0 input) gets 1/(L-i) of each exit's
    plain gradient; head parameters get their plain gradients."""
    L = 3
    method = get_method("elasticbert-entropy")
    model = tiny_model(method, layers=L)
    batch = tiny_batch(lengths=(6, 4, 6, 5))
    labels = torch.tensor([0, 1, 1, 0])
    args = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    for j in range(L):
        plain = _grads(model, F.cross_entropy(model.all_exit_outputs(*args)[j], labels))
        scaled = _grads(model, F.cross_entropy(equilibrium_outputs(model, *args)[j], labels))
        for name, grad in plain.items():
            if name.startswith("bert.embeddings."):
                factor = 1 / L
            elif name.startswith("bert.encoder.layer."):
                factor = 1 / (L - int(name.split(".")[3]))
            else:
                factor = 1.0
            assert torch.allclose(scaled[name], grad * factor, atol=1e-7, rtol=1e-4), (j, name)
        assert plain["bert.encoder.layer.0.output.dense.weight"].abs().sum() > 0
    # The training stage uses it: its loss's gradients are the sum over exits of the scaled ones.
    (stage,) = method.stages(model, type("P", (), {"epochs": 1, "lr": 1e-3, "warmup": 0.0, "weight_decay": 0.0})())
    staged = _grads(model, stage.loss(model, {**batch, "labels": labels}))
    unscaled = _grads(model, sum(F.cross_entropy(out, labels) for out in model.all_exit_outputs(*args)))
    expected = _grads(model, sum(F.cross_entropy(out, labels) for out in equilibrium_outputs(model, *args)))
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.allclose(staged[name], expected[name], atol=1e-7, rtol=1e-4)
    assert not torch.allclose(staged[name], unscaled[name], atol=1e-7, rtol=1e-4)


# ---------------------------------------------------------------------------- initialisation
def _fake_backbone(config, exit_poolers):
    torch.manual_seed(5)
    state = TokenExitEncoder(config).state_dict()
    return Backbone("fake", config, state, None, exit_poolers)


def test_exit_poolers_come_from_backbone_exit_poolers_else_the_final_pooler():
    config = tiny_config(3)
    exit_poolers = {i: {"dense.weight": torch.full((H, H), float(i)), "dense.bias": torch.full((H,), float(i))}
                    for i in (1, 3)}
    method = get_method("elasticbert-patience")
    model = method.build(config, get_task("SST-2"))
    backbone = _fake_backbone(config, exit_poolers)
    method.init_from_backbone(model, backbone)
    assert torch.equal(model.exits[0].pooler.weight, exit_poolers[1]["dense.weight"])
    assert torch.equal(model.exits[2].pooler.bias, exit_poolers[3]["dense.bias"])
    assert torch.equal(model.exits[1].pooler.weight, backbone.state_dict["pooler.dense.weight"])
    assert torch.equal(model.bert.encoder.layer[1].output.dense.weight,
                       backbone.state_dict["encoder.layer.1.output.dense.weight"])
    plain = get_method("elasticbert-entropy")
    model = plain.build(config, get_task("SST-2"))
    plain.init_from_backbone(model, _fake_backbone(config, {}))
    for head in model.exits:
        assert torch.equal(head.pooler.weight, backbone.state_dict["pooler.dense.weight"])
    assert model.exits[0].pooler.weight.data_ptr() != model.exits[1].pooler.weight.data_ptr()


# ---------------------------------------------------------------------------- entropy exit
def test_entropy_threshold_zero_never_exits_early():
    method = get_method("elasticbert-entropy")
    model = tiny_model(method)
    with torch.no_grad():
        for head in model.exits:  # saturated: softmax is exactly one-hot, entropy exactly 0
            head.classifier.weight.zero_()
            head.classifier.bias.copy_(torch.tensor([1000.0, -1000.0]))
    batch = tiny_batch()
    _, values = entropies(model, batch)
    assert torch.all(values == 0)
    with torch.no_grad():
        assert exit_layers(method.predict(model, batch, {"entropy": "0"}).traces) == [6] * 6
        assert exit_layers(method.predict(model, batch, {"entropy": "0.1"}).traces) == [1] * 6
    assert method.inference_settings()[0] == {"entropy": "0"}  # model selection: the full model


def test_entropy_exit_layer_and_output_are_the_rules():
    method = get_method("elasticbert-entropy")
    model = tiny_model(method)
    batch = tiny_batch()
    outputs, values = entropies(model, batch)
    inference = mixed_inference(method, model, batch)  # in a gap of the entropies: rounding cannot decide
    threshold = float(inference["entropy"])
    with torch.no_grad():
        prediction = method.predict(model, batch, inference)
    expected = []
    for row in values:
        below = (row < threshold).nonzero()
        expected.append(int(below[0]) + 1 if below.numel() else 6)
    assert exit_layers(prediction.traces) == expected and len(set(expected)) > 1
    for i, layer in enumerate(expected):
        assert torch.allclose(prediction.outputs[i], outputs[layer - 1][i], atol=1e-5)


def test_entropy_method_refuses_regression():
    from hashee.core.errors import HasheeError

    with pytest.raises(HasheeError, match="regression"):
        get_method("elasticbert-entropy").build(tiny_config(), get_task("STS-B"))


# ---------------------------------------------------------------------------- patience exit
def test_patience_exit_uses_pabee_rule_and_elasticbert_sweep():
    method = get_method("elasticbert-patience")
    assert [s["patience"] for s in method.inference_settings()] == ["0", "2", "3", "4", "5", "6", "7"]
    model = tiny_model(method, task="STS-B")
    assert [s["patience"] for s in get_method("elasticbert-patience", "layers=6").inference_settings()] == \
        ["0", "2", "3", "4"]
    assert method.regression_threshold == 0.94
    outputs = [torch.tensor([[v]]) for v in (1.0, 1.5, 2.0, 4.0, 4.5, 4.6)]
    state = method.init_exit_state(model.task, 1, "cpu")
    fired = [bool(method.exit_decision(model.task, out, j, state, {"patience": "2"}))
             for j, out in enumerate(outputs, 1)]
    assert fired == [False, False, True, False, False, True]
    with torch.no_grad():
        assert exit_layers(method.predict(model, tiny_batch(), {"patience": "0"}).traces) == [6] * 6


# ---------------------------------------------------------------------------- FLOPs
def test_flops_equal_analytic_count_for_known_exits():
    method = get_method("elasticbert-entropy")
    model = tiny_model(method)
    batch = tiny_batch()
    with torch.no_grad():
        prediction = method.predict(model, batch, mixed_inference(method, model, batch))
    exits = exit_layers(prediction.traces)
    assert len(set(exits)) > 1
    counter = FlopCounter(method.flop_modules(model))
    for trace, layers, length in zip(prediction.traces, exits, batch["attention_mask"].sum(1).tolist()):
        # exit head = its pooler (Linear H×H, tanh 0) + classifier (Linear H×2)
        analytic = 2 * length * H + layers * (analytic_layer_flops(length, length, H, INTER, HEADS) + H * H + H * 2)
        assert counter.trace_flops(trace) == analytic


def test_paper_defaults():
    for name in ("elasticbert-entropy", "elasticbert-patience"):
        assert get_method(name).paper_defaults == {"lr": 2e-5, "batch_size": 32, "epochs": 5, "warmup": 0.06,
                                                   "weight_decay": 0.1}


# ---------------------------------------------------------------------------- the real backbone
def test_minilm_has_no_exit_poolers_so_every_exit_starts_from_its_final_pooler(minilm2):
    method = get_method("elasticbert-entropy")
    model = method.build(minilm2.config, get_task("SST-2"))
    method.init_from_backbone(model, minilm2)
    for head in model.exits:
        assert torch.equal(head.pooler.weight, minilm2.state_dict["pooler.dense.weight"])
