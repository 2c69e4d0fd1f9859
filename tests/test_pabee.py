"""PABEE: the official patience counter per instance, its loss weights, exact FLOPs, the shared
pooler. Batch = alone, save/load and trainer steps: tests/test_baselines_shared.py."""

import pytest
import torch
from exit_helpers import HEADS, INTER, ROUNDING_MARGIN, H, boundary_distance, random_batch, tiny_config

from baselines.pabee import Pabee
from hashee.core.methods import get_method
from hashee.core.tasks import get_task
from hashee.measure.flops import FlopCounter, analytic_layer_flops


def tiny_model(method, task="SST-2", layers=6, seed=0):
    torch.manual_seed(seed)
    model = method.build(tiny_config(layers), get_task(task))
    for head in model.exits:  # sharper heads: predictions that change across layers
        torch.nn.init.normal_(head.classifier.weight, std=2.0)
    return model.eval()


def tiny_batch(lengths=(9, 5, 12, 7, 3, 10), seed=1):
    return random_batch(lengths, seed)


def simulate(method, per_layer_outputs, patience, task="SST-2"):
    """First layer (1-based) at which the rule fires per instance, or None (runs to the end)."""
    task = get_task(task)
    state = method.init_exit_state(task, per_layer_outputs[0].shape[0], "cpu")
    exits = [None] * per_layer_outputs[0].shape[0]
    for layer, outputs in enumerate(per_layer_outputs, start=1):
        done = method.exit_decision(task, outputs, layer, state, {"patience": str(patience)})
        for i in done.nonzero().squeeze(1).tolist():
            if exits[i] is None:
                exits[i] = layer
    return exits


def logits_of(predictions):
    """Per layer (B, 2) logits whose argmax is the given label sequence of each instance."""
    return [torch.tensor([[1.0, 0.0] if seq[j] == 0 else [0.0, 1.0] for seq in predictions])
            for j in range(len(predictions[0]))]


def exit_layers(traces):
    return [sum(call.name.startswith("layer_") for call in trace) for trace in traces]


# ---------------------------------------------------------------------------- exit rule
def test_patience_counter_matches_official_semantics():
    method = get_method("pabee")
    sequences = [[0, 0, 0, 0, 0, 0],   # counter 0,1,2,3 -> exits at 4 with patience 3
                 [0, 1, 1, 1, 1, 1],   # 0,0,1,2,3 -> 5
                 [0, 1, 0, 1, 0, 1],   # never the same twice in a row
                 [1, 1, 0, 0, 0, 0]]   # 0,1,0,1,2,3 -> 6 (the reset after layer 3 counts)
    outputs = logits_of(sequences)
    assert simulate(method, outputs, 3) == [4, 5, None, 6]
    assert simulate(method, outputs, 1) == [2, 3, None, 2]
    assert simulate(method, outputs, 5) == [6, None, None, None]  # earliest exit is patience + 1
    assert simulate(method, outputs, 6) == [None] * 4
    assert simulate(method, outputs, 0) == [None] * 4  # official patience 0: all layers


def test_predict_exits_where_the_rule_fires():
    method = get_method("pabee")
    model = tiny_model(method)
    batch = tiny_batch()
    # No near tie between two logits: `predict` runs other matrix shapes, and rounding must not flip an argmax.
    assert boundary_distance(method, model, batch, [{"patience": "1"}]) > ROUNDING_MARGIN
    with torch.no_grad():
        outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        for patience in (1, 2):
            expected = [e or 6 for e in simulate(method, outputs, patience)]
            prediction = method.predict(model, batch, {"patience": str(patience)})
            assert exit_layers(prediction.traces) == expected
            for i, layer in enumerate(expected):
                assert torch.allclose(prediction.outputs[i], outputs[layer - 1][i], atol=1e-5)


@pytest.mark.parametrize("patience", [0, 5, 6, 8])
def test_patience_of_at_least_layers_minus_one_never_exits_early(patience):
    method = get_method("pabee")
    model = tiny_model(method)
    with torch.no_grad():
        prediction = method.predict(model, tiny_batch(), {"patience": str(patience)})
    assert exit_layers(prediction.traces) == [6] * 6


@pytest.mark.parametrize("setting,expected", [
    ("layers=6", ["0", "3", "4"]),
    ("layers=12", ["0", "3", "4", "5", "6", "7", "8"]),
    ("layers=2", ["0"]),  # 2 layers: only "all layers" is meaningful
    ("", ["0", "3", "4", "5", "6", "7", "8"]),  # depth unknown to the settings: not clipped
])
def test_sweep_is_clipped_to_meaningful_patience_by_the_layers_setting(setting, expected):
    method = get_method("pabee", setting)
    assert [s["patience"] for s in method.inference_settings()] == expected
    for layers in (2, 6, 12):  # building any model leaves the sweep as the settings make it
        method.build(tiny_config(layers), get_task("SST-2"))
        assert [s["patience"] for s in method.inference_settings()] == expected


def test_regression_rule_uses_output_change():
    method = get_method("pabee")
    assert method.regression_threshold == 0.94
    sequences = [[1.0, 1.5, 2.0, 3.0, 3.5, 3.6],   # |Δ| .5 .5 -> counter 1, 2: exits at 3 with patience 2
                 [1.0, 2.0, 2.5, 2.6, 2.7, 4.0],   # 1.0 resets; .5 .1 -> exits at 4
                 [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]   # |Δ| = 1 >= .94 every time: never
    outputs = [torch.tensor([[seq[j]] for seq in sequences]) for j in range(6)]
    assert simulate(method, outputs, 2, "STS-B") == [3, 4, None]
    # |Δ| == threshold is not "unchanged": these outputs are exact binary fractions, so |Δ| is exactly 0.5.
    strict = get_method("pabee", "regression_threshold=0.5")
    assert simulate(strict, outputs, 2, "STS-B") == [None, 5, None]


def test_regression_predict_runs_and_exits():
    method = get_method("pabee", "regression_threshold=100")  # every change is small: exit at patience + 1
    model = tiny_model(method, task="STS-B")
    with torch.no_grad():
        prediction = method.predict(model, tiny_batch(), {"patience": "2"})
    assert prediction.outputs.shape == (6, 1)
    assert exit_layers(prediction.traces) == [3] * 6


# ---------------------------------------------------------------------------- training loss
def test_loss_weights_and_stage_loss():
    assert Pabee.loss_weights(4) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    method = get_method("pabee")
    model = tiny_model(method, layers=4)
    batch = {**tiny_batch(), "labels": torch.tensor([0, 1, 1, 0, 1, 0])}
    (stage,) = method.stages(model, type("P", (), {"epochs": 1, "lr": 1e-3, "warmup": 0.0,
                                                     "weight_decay": 0.0})())
    outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    losses = [torch.nn.functional.cross_entropy(out, batch["labels"]) for out in outputs]
    expected = sum(j * loss for j, loss in enumerate(losses, start=1)) / 10
    assert torch.allclose(stage.loss(model, batch), expected)
    assert not torch.allclose(expected, sum(losses) / 4)  # the weighting matters on this batch


# ---------------------------------------------------------------------------- FLOPs
def test_flops_equal_analytic_count_for_known_exits():
    method = get_method("pabee")
    model = tiny_model(method)
    batch = tiny_batch()
    with torch.no_grad():
        prediction = method.predict(model, batch, {"patience": "1"})
    exits = exit_layers(prediction.traces)
    assert len(set(exits)) > 1, "want a mix of exit layers"
    counter = FlopCounter(method.flop_modules(model))
    for trace, layers, length in zip(prediction.traces, exits, batch["attention_mask"].sum(1).tolist()):
        # embeddings: LayerNorm 2 per element; per layer: the layer, the shared pooler (Linear H×H,
        # tanh 0) and the layer's classifier (Linear H×labels).
        analytic = 2 * length * H + layers * (analytic_layer_flops(length, length, H, INTER, HEADS) + H * H + H * 2)
        assert counter.trace_flops(trace) == analytic
        assert [c.name for c in trace[:4]] == ["emb", "layer_1", "pooler", "exit_1"]


# ---------------------------------------------------------------------------- model
def test_shared_pooler_is_stored_once():
    model = get_method("pabee").build(tiny_config(3), get_task("SST-2"))
    names = list(model.state_dict())
    assert sum("pooler" in n for n in names) == 2  # bert.pooler.dense.{weight,bias}
    assert all(head._pooler[0] is model.bert.pooler for head in model.exits)
