"""CascadeBERT: two complete models, the large one run only on what the small one passes on,
cumulative FLOPs, the difficulty-aware ranking loss. Batch = alone, save/load and trainer steps:
tests/test_baselines_shared.py."""

import exit_helpers
import pytest
import torch
import torch.nn.functional as F
from exit_helpers import HEADS, INTER, H, mixed_inference, random_batch

from baselines.cascadebert import difficulty_rank_loss
from hashee.core.backbones import Backbone
from hashee.core.errors import HasheeError
from hashee.core.methods import get_method
from hashee.core.modeling import TokenExitEncoder
from hashee.core.tasks import get_task
from hashee.measure.flops import FlopCounter, analytic_layer_flops

LARGE = 4


def tiny_config(layers=LARGE):
    return exit_helpers.tiny_config(layers)


def tiny_model(method, task="SST-2", layers=LARGE, seed=0):
    torch.manual_seed(seed)
    model = method.build(tiny_config(layers), get_task(task))
    for sub in model.models:
        torch.nn.init.normal_(sub.classifier.weight, std=2.0)
    return model.eval()


def tiny_batch(lengths=(9, 5, 12, 7, 3, 10, 8, 6), seed=1):
    return random_batch(lengths, seed)


def small_confidence(model, batch):
    with torch.no_grad():
        logits = model.models[0](batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])[0]
    return logits, torch.softmax(logits, dim=-1).max(dim=-1).values


def models_run(traces):
    return [len({call.name.split(".")[0] for call in trace}) for trace in traces]


# ---------------------------------------------------------------------------- model
def test_build_two_complete_models_and_bert_is_the_large_encoder():
    method = get_method("cascadebert")
    model = method.build(tiny_config(), get_task("SST-2"))
    assert [sub.bert.num_layers for sub in model.models] == [2, LARGE]
    assert model.bert is model.models[1].bert and model.bert.config.num_layers == LARGE
    assert all(name.startswith("models.") for name in model.state_dict())  # stored once
    with pytest.raises(HasheeError, match="small_layers"):
        get_method("cascadebert", "small_layers=4").build(tiny_config(), get_task("SST-2"))
    with pytest.raises(HasheeError, match="regression"):
        method.build(tiny_config(), get_task("STS-B"))


def test_small_model_is_a_separate_copy_of_the_first_layers():
    config = tiny_config()
    torch.manual_seed(5)
    state = TokenExitEncoder(config).state_dict()
    exit_pooler = {"dense.weight": torch.full((H, H), 0.5), "dense.bias": torch.zeros(H)}
    method = get_method("cascadebert")
    model = method.build(config, get_task("SST-2"))
    method.init_from_backbone(model, Backbone("fake", config, state, None, {2: exit_pooler}))
    small, large = model.models
    name = "encoder.layer.1.attention.self.query.weight"
    assert torch.equal(small.bert.state_dict()[name], state[name])
    assert torch.equal(large.bert.state_dict()["encoder.layer.3.output.dense.weight"],
                       state["encoder.layer.3.output.dense.weight"])
    assert torch.equal(small.bert.pooler.dense.weight, exit_pooler["dense.weight"])  # ElasticBERT's exit-2 pooler
    assert torch.equal(large.bert.pooler.dense.weight, state["pooler.dense.weight"])
    with torch.no_grad():
        small.bert.encoder.layer[1].attention.self.query.weight.add_(1.0)
    assert torch.equal(large.bert.state_dict()[name], state[name])


# ---------------------------------------------------------------------------- routing, FLOPs
def test_large_model_runs_only_on_passed_on_instances():
    method = get_method("cascadebert")
    model = tiny_model(method)
    batch = tiny_batch()
    small_logits, confidence = small_confidence(model, batch)
    ranked = confidence.sort().values
    assert ranked[2] - ranked[1] > 1e-3  # a clear gap: rounding cannot move an instance across the threshold
    threshold = float(ranked[1] + ranked[2]) / 2  # the two least confident instances go on
    passed = confidence <= threshold
    lengths = batch["attention_mask"].sum(1)
    assert int(passed.sum()) == 2 and int(lengths[passed].max()) < batch["input_ids"].shape[1]
    seen = []
    hook = model.models[1].register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    try:
        with torch.no_grad():
            prediction = method.predict(model, batch, {"confidence": repr(threshold)})
            assert seen == [(int(passed.sum()), int(lengths[passed].max()))]  # passed rows, re-trimmed
            assert models_run(prediction.traces) == [2 if p else 1 for p in passed.tolist()]
            large_logits = model.models[1](batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])[0]
            expected = torch.where(passed[:, None], large_logits, small_logits)
            assert torch.allclose(prediction.outputs, expected, atol=1e-5)
            seen.clear()
            method.predict(model, batch, {"confidence": "0"})  # everyone is confident enough
            assert seen == []
            method.predict(model, batch, {"confidence": "1"})  # nobody is
            assert seen == [tuple(batch["input_ids"].shape)]
    finally:
        hook.remove()


def test_flops_are_the_cumulative_analytic_sum():
    method = get_method("cascadebert")
    model = tiny_model(method)
    batch = tiny_batch()
    with torch.no_grad():
        prediction = method.predict(model, batch, mixed_inference(method, model, batch))
    routes = models_run(prediction.traces)
    assert set(routes) == {1, 2}
    counter = FlopCounter(method.flop_modules(model))
    for trace, route, length in zip(prediction.traces, routes, batch["attention_mask"].sum(1).tolist()):
        # one model = embedding LayerNorm (2 per element) + its layers + pooler (H×H, tanh 0) + classifier (H×2)
        def model_flops(layers, length=length):
            return 2 * length * H + layers * analytic_layer_flops(length, length, H, INTER, HEADS) + H * H + H * 2

        analytic = model_flops(2) + (model_flops(LARGE) if route == 2 else 0)
        assert counter.trace_flops(trace) == analytic
        assert trace[0].name == "m1.emb" and trace[0].shape == (length,)  # cost_summary reads the length here
    names = [call.name for call in prediction.traces[routes.index(2)]]
    assert names == ["m1.emb", "m1.layer_1", "m1.layer_2", "m1.pooler", "m1.classifier", "m2.emb",
                     *(f"m2.layer_{i}" for i in range(1, LARGE + 1)), "m2.pooler", "m2.classifier"]


def test_sweep_order_most_conservative_first():
    assert get_method("cascadebert").inference_settings() == [
        {"confidence": "0.9"}, {"confidence": "0.8"}, {"confidence": "0.7"}, {"confidence": "0.6"}]


# ---------------------------------------------------------------------------- training loss
def test_rank_loss_pairs_easy_with_hard():
    labels = torch.tensor([0, 0])
    # instance 0 correct (easy, conf ~1), instance 1 wrong (hard, conf ~.35): margin .5 met -> 0
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.1, 0.0]], requires_grad=True)
    assert float(difficulty_rank_loss(logits, labels, 0.5)) == 0.0
    # a confident mistake: easy conf c_e, hard conf c_h -> max(0, 0.5 - (c_e - c_h))
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0]], requires_grad=True)
    conf = torch.softmax(logits, -1).max(-1).values
    loss = difficulty_rank_loss(logits, labels, 0.5)
    assert torch.allclose(loss, 0.5 - (conf[0] - conf[1]))
    loss.backward()
    assert logits.grad.abs().sum() > 0
    all_easy = torch.tensor([[2.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    assert float(difficulty_rank_loss(all_easy, labels, 0.5)) == 0.0


def test_stage_loss_is_sum_of_ce_plus_half_rank_loss():
    method = get_method("cascadebert")
    model = tiny_model(method)
    batch = {**tiny_batch(), "labels": torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])}
    (stage,) = method.stages(model, type("P", (), {"epochs": 1, "lr": 1e-3, "warmup": 0.0, "weight_decay": 0.0})())
    args = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    small, large = (sub(*args)[0] for sub in model.models)
    torch.manual_seed(11)
    rank = difficulty_rank_loss(small, batch["labels"], 0.5)
    expected = F.cross_entropy(small, batch["labels"]) + F.cross_entropy(large, batch["labels"]) + 0.5 * rank
    torch.manual_seed(11)
    assert torch.allclose(stage.loss(model, batch), expected)
    assert float(rank) > 0
