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

from hashee.core.backbones import Backbone, map_state_dict
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
    return g, method, model.eval(), [(stage_loss(method, model, 0), g["loss_batch"]["loss"])]


def stage_loss(method, model, index):
    return method.stages(model, Params())[index].loss


def highway(reference):
    """DeeBERT and BERxiT: highway i (i < L) is our exit i; the model's own pooler and classifier are our
    last exit (the reference's last highway is never trained and has no counterpart here)."""
    g, state = load(reference)
    method = get_method(reference, f"layers={g['layers']}")
    model = method.build(encoder_config(g), get_task("SST-2"))
    load_encoder(model.bert, state, "bert.")
    last = g["layers"] - 1
    for i, head in enumerate(model.exits[:last]):
        copy_linear(head.pooler, state, f"bert.encoder.highway.{i}.pooler.dense")
        copy_linear(head.classifier, state, f"bert.encoder.highway.{i}.classifier")
    copy_linear(model.exits[last].pooler, state, "bert.pooler.dense")
    copy_linear(model.exits[last].classifier, state, "classifier")
    if reference == "berxit":
        copy_linear(model.lte, state, "bert.encoder.lte_classifier")
    for row in g["instances"]:
        row["layer_logits"] = row["highway_logits"][:last] + [row["final_logits"]]
    if reference == "deebert":
        last_highway_departure(g)
    losses = []
    if reference == "deebert":  # stage 1: backbone + final exit; stage 2: the other exits, summed
        losses = [(stage_loss(method, model, 0), g["loss_batch"]["final"]),
                  (stage_loss(method, model, 1), g["loss_batch"]["highways"])]
    return g, method, model.eval(), losses


def entropy(logits):
    return float(-(torch.softmax(torch.tensor(logits), -1) * torch.log_softmax(torch.tensor(logits), -1)).sum())


def last_highway_departure(g):
    """castorini/DeeBERT applies its rule after the last layer too, to its last highway, which the
    official training never trains (stage 2 sums the losses of highways 1..L-1): an instance that reaches
    layer L answers with that highway when its entropy is below the threshold, else with the final
    classifier. Our last exit is the final classifier, always. Where the reference took its last highway,
    we expect the final classifier's logits instead (row["expected"]); everything else is the reference's."""
    last = g["layers"]
    for row in g["instances"]:
        row["expected"], row["departures"] = {}, []
        for setting in g["settings"]:
            value = setting[g["sweep_key"]]
            theirs = row["exits"][value]
            took_last_highway = theirs["layer"] == last and entropy(row["highway_logits"][-1]) < float(value)
            if took_last_highway:
                assert close(theirs["logits"], row["highway_logits"][-1])
                row["departures"].append(value)
            else:
                assert theirs["layer"] < last or close(theirs["logits"], row["final_logits"])
            row["expected"][value] = {"layer": theirs["layer"],
                                      "logits": row["final_logits"] if took_last_highway else theirs["logits"]}


def elasticbert(reference):
    """fastnlp/ElasticBERT: exit i = the encoder's pooler i + classifier i (through the library's ElasticBERT
    checkpoint mapping, whose per-exit poolers the method's init_from_backbone copies in)."""
    g, state = load(reference)
    name = reference.removesuffix("-regression")
    setting = f"layers={g['layers']}"
    if g.get("regression_threshold") is not None:
        setting += f",regression_threshold={g['regression_threshold']}"
    method = get_method(name, setting)
    config = encoder_config(g, family="elasticbert")
    model = method.build(config, get_task("STS-B" if g["num_labels"] == 1 else "SST-2"))
    mapped, exit_poolers = map_state_dict({k: v for k, v in state.items() if k.startswith("elasticbert.")}, config)
    method.init_from_backbone(model, Backbone(reference, config, mapped, None, exit_poolers))
    for i, head in enumerate(model.exits):
        copy_linear(head.classifier, state, f"classifiers.{i}")
    return g, method, model.eval(), [(stage_loss(method, model, 0), g["loss_batch"]["loss"])]


BUILDERS = {"pabee": pabee, "pabee-regression": pabee, "deebert": highway, "berxit": highway,
            "elasticbert-entropy": elasticbert, "elasticbert-patience": elasticbert,
            "elasticbert-patience-regression": elasticbert}


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
            expected = row.get("expected", row["exits"])[setting[key]]
            assert layers == [expected["layer"]], (setting, row["input_ids"])
            assert close(outputs[0], expected["logits"]), (setting, outputs, expected)


def test_batched_is_the_references_one_at_a_time(golden):
    g, method, model, _ = golden
    key = g["sweep_key"]
    batch = padded_batch(g["instances"])
    for setting in g["settings"]:
        outputs, layers = predictions(method, model, batch, setting)
        expected = [row.get("expected", row["exits"])[setting[key]] for row in g["instances"]]
        assert layers == [e["layer"] for e in expected], setting
        for i, e in enumerate(expected):
            assert close(outputs[i], e["logits"])


def loss_batch(g):
    batch = stacked_batch([g["instances"][i] for i in g["loss_batch"]["rows"]])
    if g["num_labels"] == 1:
        batch["labels"] = batch["labels"].float()
    return batch


def training_loss(model, loss_fn, batch) -> float:
    model.train()  # dropout is 0 in the fixtures' configs
    try:
        return float(loss_fn(model, batch).detach())
    finally:
        model.eval()


def test_training_losses_match(golden):
    g, method, model, losses = golden
    for loss_fn, expected in losses:
        assert abs(training_loss(model, loss_fn, loss_batch(g)) - expected) < 1e-4 * max(1.0, abs(expected))


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


# ---------------------------------------------------------------------------- per-method departures
def test_berxit_lte_outputs_match():
    g, method, model, _ = highway("berxit")
    n = g["num_labels"]
    for row in g["instances"]:
        batch = instance_batch(row)
        with torch.no_grad():
            outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        lte = [float(torch.sigmoid(out[0, n])) for out in outputs[:-1]]  # the last exit has no LTE
        assert close(lte, row["lte"][:-1])


def test_berxit_loss_departs_only_by_the_last_layers_lte_term():
    """castorini/berxit's alternate-lte loss: even steps the final exit's CE, odd steps the other exits'
    summed CE, each plus the MSE between the LTE outputs and 1 - [exit correct] over all L layers, the
    L-th being the LTE on the last highway's pooled output scored by the final classifier. Our last exit
    never consults the LTE, so our MSE runs over layers 1..L-1: rebuilt from the reference's own per-layer
    outputs, the two formulas give the reference's loss and ours, and nothing else differs."""
    g, method, model, _ = highway("berxit")
    ref = g["loss_batch"]
    labels = torch.tensor([g["instances"][i]["label"] for i in ref["rows"]])
    layer_logits = [torch.tensor(h) for h in ref["highway_logits"][:-1]] + [torch.tensor(ref["final_logits"])]
    lte = torch.tensor(ref["lte"])  # (layers, batch)
    wrong = torch.stack([(out.argmax(dim=-1) != labels).float() for out in layer_logits])
    main = {0: torch.nn.functional.cross_entropy(layer_logits[-1], labels),
            1: sum(torch.nn.functional.cross_entropy(out, labels) for out in layer_logits[:-1])}
    loss_fn = stage_loss(method, model, 0)
    batch = loss_batch(g)
    for step in (0, 1):
        theirs = main[step] + torch.nn.functional.mse_loss(lte, wrong)
        assert abs(float(theirs) - ref[f"step{step}"]) < 1e-5  # the formula is the reference's
        ours = main[step] + torch.nn.functional.mse_loss(lte[:-1], wrong[:-1])
        assert abs(training_loss(model, loss_fn, batch) - float(ours)) < 1e-5  # step 0, then step 1


def test_deebert_fixture_shows_the_last_highway_departure():
    g, *_ = highway("deebert")
    assert sum(len(row["departures"]) for row in g["instances"]) > 0


# ---------------------------------------------------------------------------- CascadeBERT: a cascade of models
@pytest.fixture(scope="module")
def cascade():
    """lancopku/CascadeBERT: cascade_models.m is our models.m's encoder, cascade_classifiers.m its classifier."""
    g, state = load("cascadebert")
    method = get_method("cascadebert", f"layers={g['layers']},small_layers={g['small_layers']}")
    model = method.build(encoder_config(g), get_task("SST-2"))
    for m, sub in enumerate(model.models):
        load_encoder(sub.bert, state, f"cascade_models.{m}.")
        copy_linear(sub.classifier, state, f"cascade_classifiers.{m}")
    return g, method, model.eval()


def models_run(trace):
    return len({call.name.split(".")[0] for call in trace})


def test_cascade_models_logits_match(cascade):
    g, method, model = cascade
    for row in g["instances"]:
        batch = instance_batch(row)
        for sub, theirs in zip(model.models, row["model_logits"]):
            with torch.no_grad():
                logits, _ = sub(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            assert close(logits, theirs)


def test_cascade_exits_and_predictions_match(cascade):
    g, method, model = cascade
    batch = padded_batch(g["instances"])
    for setting in g["settings"]:
        expected = [row["exits"][setting["confidence"]] for row in g["instances"]]
        for row, theirs in zip(g["instances"], expected):  # one at a time, as the reference
            with torch.no_grad():
                prediction = method.predict(model, instance_batch(row), setting)
            assert [models_run(t) for t in prediction.traces] == [theirs["models"]], setting
            assert close(prediction.outputs[0], theirs["logits"])
        with torch.no_grad():  # batched: each instance as alone
            prediction = method.predict(model, batch, setting)
        assert [models_run(t) for t in prediction.traces] == [e["models"] for e in expected]
        assert close(prediction.outputs, [e["logits"] for e in expected])


def test_cascade_loss_matches_with_the_references_difficulty_labels(cascade):
    """Our difficulty label is the small model's own mistake at this step; the reference reads it from a
    file. Given the labels that equal the small model's mistakes (one hard instance, so the pair loss
    samples nothing), the losses agree: the source of the labels is the whole departure."""
    g, method, model = cascade
    ref = g["loss_batch"]
    batch = stacked_batch([g["instances"][i] for i in ref["rows"]])
    batch["labels"] = torch.tensor(ref["labels"])
    with torch.no_grad():
        small, _ = model.models[0](batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert (small.argmax(dim=-1) != batch["labels"]).long().tolist() == ref["difficulty"]
    assert abs(training_loss(model, stage_loss(method, model, 0), batch) - ref["loss"]) < 1e-5
