"""HeadPrune: head importance is |dL/d mask| (checked against finite differences of the loss), pruned
heads are really removed (parameters and fvcore FLOPs fall; outputs equal the masked model's), the
closed-form FLOPs behind the speed-up target equal fvcore's count, and a pruned model saves and reloads."""

import dataclasses
import math

import pytest
import torch
from exit_helpers import random_batch, tiny_config

from baselines.headprune import (
    HeadMasks,
    head_gradients,
    head_importance,
    model_flops,
    prune_to_speedup,
)
from hashee.core.methods import get_method, task_loss
from hashee.core.tasks import get_task
from hashee.measure.flops import FlopCounter

LENGTHS = (9, 5, 12, 7, 3, 10)


def tiny(setting="", task="SST-2", layers=3, seed=0):
    method = get_method("headprune", setting)
    torch.manual_seed(seed)
    model = method.build(tiny_config(layers), get_task(task)).eval()
    torch.nn.init.normal_(model.classifier.weight, std=2.0)
    return method, model


def labelled(seed=1, task="SST-2"):
    batch = random_batch(LENGTHS, seed)
    generator = torch.Generator().manual_seed(seed)
    if get_task(task).is_regression:
        batch["labels"] = torch.rand(len(LENGTHS), generator=generator) * 5
    else:
        batch["labels"] = torch.randint(0, 2, (len(LENGTHS),), generator=generator)
    return batch


def masked_loss(model, batch, masks):
    hooks = HeadMasks(model)
    try:
        with torch.no_grad():
            for mine, given in zip(hooks.masks, masks):
                mine.copy_(given)
        logits, _ = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        return task_loss(model.task, logits, batch["labels"]), logits
    finally:
        hooks.remove()


@pytest.mark.parametrize("task", ["SST-2", "STS-B"])
def test_importance_is_the_loss_gradient_wrt_head_masks(task):
    """|dL/dxi_h| from autograd equals a central difference of the loss in xi_h, head by head (float64)."""
    _, model = tiny(task=task)
    model = model.double()
    batches = [labelled(1, task), labelled(2, task)]
    grads, tokens = head_gradients(model, lambda: iter(batches))
    assert tokens == 2 * sum(LENGTHS)
    heads = model.bert.config.num_heads
    eps = 1e-5
    for layer in range(3):
        for head in range(heads):
            brute = 0.0
            for batch in batches:
                up = [torch.ones(heads, dtype=torch.float64) for _ in range(3)]
                down = [torch.ones(heads, dtype=torch.float64) for _ in range(3)]
                up[layer][head] += eps
                down[layer][head] -= eps
                brute += abs((masked_loss(model, batch, up)[0] - masked_loss(model, batch, down)[0]).item() / (2 * eps))
            assert grads[layer][head].item() == pytest.approx(brute, rel=1e-4, abs=1e-9)
    assert max(g.max().item() for g in grads) > 0


def test_importance_is_normalised_per_layer():
    _, model = tiny()
    scores = head_importance(model, lambda: iter([labelled(1)]))
    for row in scores:
        assert row.pow(2).sum().sqrt().item() == pytest.approx(1.0)


def test_pruned_heads_are_really_removed():
    """Parameters and fvcore FLOPs fall by the removed heads' share; outputs equal the masked model's."""
    method = get_method("headprune")
    torch.manual_seed(0)  # 4 heads: a layer keeps several, in order
    model = method.build(dataclasses.replace(tiny_config(3), num_heads=4), get_task("SST-2")).eval()
    batch = labelled(3)
    heads, hidden = model.bert.config.num_heads, model.bert.config.hidden_size
    head_dim = hidden // heads
    removed = {0: [0, 2], 1: [1], 2: [0, 1, 2, 3]}  # layer 3 loses every head
    masks = [torch.ones(heads) for _ in range(3)]
    for layer, which in removed.items():
        masks[layer][which] = 0.0
    with torch.no_grad():
        _, masked_logits = masked_loss(model, batch, masks)
    params_before = sum(p.numel() for p in model.parameters())
    counter_before = FlopCounter(method.flop_modules(model))
    trace = method.predict(model, batch, {}).traces[2]
    flops_before = counter_before.trace_flops(trace)

    for layer, which in removed.items():
        model.bert.encoder.layer[layer].attention.prune_heads(which)
    model.bert.sync_layer_heads()
    assert model.bert.config.layer_heads == [2, 3, 0]
    n = sum(len(which) for which in removed.values())
    # Q, K, V lose n heads' rows and biases; the output projection loses n heads' columns.
    assert params_before - sum(p.numel() for p in model.parameters()) == n * head_dim * (4 * hidden + 3)
    flops_after = FlopCounter(method.flop_modules(model)).trace_flops(trace)
    assert flops_after < flops_before
    with torch.no_grad():
        pruned_logits = method.predict(model, batch, {}).outputs
    torch.testing.assert_close(pruned_logits, masked_logits, rtol=1e-5, atol=1e-6)


def test_closed_form_flops_equal_fvcore():
    """model_flops (the pruning target's measure) equals the FLOPs counter on the pruned model's traces."""
    method, model = tiny()
    model.bert.encoder.layer[0].attention.prune_heads([1])
    model.bert.encoder.layer[2].attention.prune_heads([0, 1])
    model.bert.sync_layer_heads()
    batch = labelled(4)
    counter = FlopCounter(method.flop_modules(model))
    measured = counter.mean_mflops(method.predict(model, batch, {}).traces) * 1e6
    closed = model_flops(model.bert.config, model.bert.config.layer_heads, list(LENGTHS), model.num_labels)
    assert closed == pytest.approx(measured, rel=1e-9)


@pytest.mark.parametrize("target", [1.1, 1.3])
def test_pruning_stops_at_the_speedup_target(target):
    _, model = tiny(layers=3)
    batches = [labelled(5), labelled(6)]
    log = prune_to_speedup(model, lambda: iter(batches), target, step=0.25)
    assert log and log[-1]["speedup"] >= target
    # It stops as soon as the target is met: one head fewer pruned would miss it.
    lengths = [int(n) for b in batches for n in b["attention_mask"].sum(dim=1)]
    config = model.bert.config
    heads = list(config.layer_heads)
    full = model_flops(config, [config.num_heads] * 3, lengths, model.num_labels)
    last = max(i for i, h in enumerate(heads) if h < config.num_heads)
    heads[last] += 1
    assert full / model_flops(config, heads, lengths, model.num_labels) < target


def test_pruned_model_saves_and_reloads(minilm2, tmp_path):
    from hashee.core.checkpoint import load_trained, save_trained

    method = get_method("headprune", "speedup=1.2")
    model = method.build(minilm2.config.__class__(**minilm2.config.to_dict()), get_task("SST-2"))
    method.init_from_backbone(model, minilm2)
    model.eval()
    model.bert.encoder.layer[0].attention.prune_heads([0, 5, 7])
    model.bert.encoder.layer[1].attention.prune_heads(range(12))
    model.bert.sync_layer_heads()
    save_trained(tmp_path / "m", method, model, minilm2.tokenizer, get_task("SST-2"), {"seed": 1})
    loaded = load_trained(tmp_path / "m", expect_method="headprune")
    assert loaded.model.bert.config.layer_heads == [9, 0]
    batch = random_batch(LENGTHS, 7, vocab=1000)
    with torch.no_grad():
        torch.testing.assert_close(loaded.method.predict_outputs(loaded.model, batch, {}),
                                   method.predict_outputs(model, batch, {}))
    # A resume checkpoint's state loads into a freshly built (unpruned) model, which shrinks to fit.
    fresh = method.build(minilm2.config.__class__(**minilm2.config.to_dict()), get_task("SST-2"))
    fresh.load_state_dict(model.state_dict())
    assert fresh.bert.config.layer_heads == [9, 0]


def test_real_trainer_prunes_then_fine_tunes(minilm2, tiny_task, tmp_path):
    from hashee.core.training import TrainParams, train
    from hashee.measure.evaluation import dev_scorer

    data = tiny_task("SST-2")
    dev = data["dev"].select(range(8))
    method = get_method("headprune", "speedup=1.2,step=0.5")
    model = method.build(minilm2.config.__class__(**minilm2.config.to_dict()), get_task("SST-2"))
    method.init_from_backbone(model, minilm2)
    params = TrainParams(epochs=1, lr=5e-5, batch_size=8, max_length=32, seed=3, checkpoint_every=0)
    pad = minilm2.tokenizer.pad_token_id
    result = train(method, model, data["train"].select(range(16)), dev, params, tmp_path, pad,
                   dev_score=dev_scorer(method, dev, pad, 16, "cpu"), progress=False)
    assert [row["stage"] for row in result.history] == ["finetune", "prune"] and math.isfinite(result.best_dev)
    assert method.pruning_log[-1]["speedup"] >= 1.2
    assert sum(model.bert.config.layer_heads) < 2 * 12
