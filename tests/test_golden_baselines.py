"""Instance-exit baselines against their authors' released code (tests/fixtures/golden/<reference>/,
docs/golden.md): the reference's tiny weights mapped onto our modules give the same per-layer logits,
the same exit layer and prediction per instance at each swept threshold, and the same training loss.
Our one departure for all of them, batching (the references run one instance at a time), is checked
as exactly that: a padded batch gives every instance the reference's single-instance exit and output."""

import pytest
import torch
from golden_helpers import (
    close,
    copy_linear,
    encoder_config,
    instance_batch,
    load,
    load_encoder,
    stacked_batch,
)

from hashee.core.methods import get_method
from hashee.core.tasks import get_task


class Params:
    epochs, lr, warmup, weight_decay = 1, 1e-3, 0.0, 0.0


# ---------------------------------------------------------------------------- weight maps, per reference
def pabee(reference):
    g, state = load(reference)
    task = get_task("STS-B" if g["num_labels"] == 1 else "SST-2")
    setting = f"layers={g['layers']}"
    if g["regression_threshold"] is not None:
        setting += f",regression_threshold={g['regression_threshold']}"
    method = get_method("pabee", setting)
    model = method.build(encoder_config(g), task)
    load_encoder(model.bert, state, "bert.")  # the shared pooler is bert.pooler
    for i, head in enumerate(model.exits):
        copy_linear(head.classifier, state, f"classifiers.{i}")
    return g, method, model.eval(), lambda model, batch: method.stages(model, Params())[0].loss(model, batch)


BUILDERS = {"pabee": pabee, "pabee-regression": pabee}


# ---------------------------------------------------------------------------- the checks
def padded_batch(rows):
    width = max(len(r["input_ids"]) for r in rows)
    pad = [width - len(r["input_ids"]) for r in rows]
    return {"input_ids": torch.tensor([r["input_ids"] + [0] * p for r, p in zip(rows, pad)]),
            "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * p for r, p in zip(rows, pad)]),
            "token_type_ids": torch.tensor([r["token_type_ids"] + [0] * p for r, p in zip(rows, pad)])}


def exit_layer(trace):
    return sum(call.name.startswith("layer_") for call in trace)


def predictions(method, model, batch, setting):
    with torch.no_grad():
        prediction = method.predict(model, batch, setting)
    return prediction.outputs, [exit_layer(trace) for trace in prediction.traces]


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def golden(request):
    return BUILDERS[request.param](request.param)


def test_per_layer_logits_match(golden):
    g, method, model, _ = golden
    for row in g["instances"]:
        batch = instance_batch(row)
        with torch.no_grad():
            outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        assert len(outputs) == len(row["layer_logits"])
        for ours, theirs in zip(outputs, row["layer_logits"]):
            assert close(ours[0, :g["num_labels"]], theirs), (ours, theirs)


def test_exit_layers_and_predictions_match(golden):
    g, method, model, _ = golden
    key = g["sweep_key"]
    for setting in g["settings"]:
        for row in g["instances"]:
            outputs, layers = predictions(method, model, instance_batch(row), setting)
            expected = row["exits"][setting[key]]
            assert layers == [expected["layer"]], (setting, row["input_ids"])
            assert close(outputs[0], expected["logits"]), (setting, outputs, expected)


def test_batched_is_the_references_one_at_a_time(golden):
    g, method, model, _ = golden
    key = g["sweep_key"]
    batch = padded_batch(g["instances"])
    for setting in g["settings"]:
        outputs, layers = predictions(method, model, batch, setting)
        assert layers == [row["exits"][setting[key]]["layer"] for row in g["instances"]], setting
        for i, row in enumerate(g["instances"]):
            assert close(outputs[i], row["exits"][setting[key]]["logits"])


def test_training_loss_matches(golden):
    g, method, model, loss_fn = golden
    batch = stacked_batch([g["instances"][i] for i in g["loss_batch"]["rows"]])
    if g["num_labels"] == 1:
        batch["labels"] = batch["labels"].float()
    model.train()  # dropout is 0 in the fixtures' configs
    try:
        loss = loss_fn(model, batch)
    finally:
        model.eval()
    assert abs(float(loss.detach()) - g["loss_batch"]["loss"]) < 1e-4 * max(1.0, abs(g["loss_batch"]["loss"]))


def test_decisions_are_not_on_a_rounding_edge(golden):
    """A golden exit decided by float rounding would be no evidence: classification argmaxes and regression
    changes stay clear of their boundaries."""
    g, *_ = golden
    for row in g["instances"]:
        layers = torch.tensor(row["layer_logits"])
        if g["num_labels"] > 1:
            top2 = layers.topk(2, dim=-1).values
            assert float((top2[:, 0] - top2[:, 1]).min()) > 1e-4
        elif g.get("regression_threshold") is not None:
            changes = (layers[1:, 0] - layers[:-1, 0]).abs()
            assert float((changes - g["regression_threshold"]).abs().min()) > 1e-4
