"""FastBERT against autoliuweijie/FastBERT (tests/fixtures/golden/fastbert/, docs/golden.md).

The reference runs on UER's BERT, whose LayerNorm divides by the unbiased std + eps: its encoder cannot
be loaded into ours. What can be compared is everything after the encoder, on the hidden states the
reference's own encoder fed its classifiers (recorded in the fixture): the students' and teacher's
logits (its `Classifier` weights in our `FastBertHead`s), the uncertainty (normalised entropy), the exit
layer and prediction per speed, and the self-distillation loss.

To drive our exit loop (`predict`, `predict_sweep`) and our distillation loss, which run our encoder,
the tests replace our embeddings and layers (monkeypatch) with stand-ins that return the recorded
states: each looks its input rows up among the recorded states of the step before, so an instance
keeps its own states however the loop shrinks or re-trims the batch. Padding is filled with large
noise, which our heads must mask.
"""

import pytest
import torch
from golden_helpers import close, copy_linear, encoder_config, instance_batch, load, stacked_batch
from torch import nn

from baselines.fastbert import normalized_entropy
from hashee.core.methods import get_method
from hashee.core.tasks import get_task

MARGIN = 1e-3  # how far every speed stays from every uncertainty it is compared with

# Our FastBertHead's linears <- the reference Classifier's. Its MultiHeadedAttention applies
# linear_layers 0, 1, 2 to query, key, value (zip(self.linear_layers, (query, key, value))).
HEAD_MAP = {"output_layer_0": "output_layer_0", "query": "self_atten.linear_layers.0",
            "key": "self_atten.linear_layers.1", "value": "self_atten.linear_layers.2",
            "final_linear": "self_atten.final_linear", "output_layer_1": "output_layer_1",
            "output_layer_2": "output_layer_2"}


def build():
    g, state = load("fastbert")
    method = get_method("fastbert", f"layers={g['layers']}")
    model = method.build(encoder_config(g), get_task("SST-2"))
    for i, head in enumerate(model.exits):
        for ours, theirs in HEAD_MAP.items():
            copy_linear(getattr(head, ours), state, f"classifiers.{i}.{theirs}")
    return g, method, model.eval()


@pytest.fixture
def golden():
    return build()


def states(row, step):
    return torch.tensor(row["hidden_states"][step])  # step 0: the embeddings' output; i: layer i's


def noise_like(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 100


class RecordedEmbeddings(nn.Module):
    """Our embeddings' place: each row's recorded embedding output, by its ids (pad id 0 never occurs
    inside an instance)."""

    def __init__(self, rows):
        super().__init__()
        self.table = {tuple(r["input_ids"]): states(r, 0) for r in rows}
        self.hidden_size = len(rows[0]["hidden_states"][0][0])

    def forward(self, input_ids, token_type_ids=None):
        out = noise_like((*input_ids.shape, self.hidden_size), 0)
        for b, ids in enumerate(input_ids.tolist()):
            recorded = self.table[tuple(i for i in ids if i != 0)]
            out[b, :len(recorded)] = recorded
        return out


class RecordedLayer(nn.Module):
    """Layer `step`'s place: finds each input row among the recorded states of step - 1, returns the
    same instance's recorded states of `step`."""

    def __init__(self, rows, step):
        super().__init__()
        self.step, self.before = step, [states(r, step - 1) for r in rows]
        self.after = [states(r, step) for r in rows]

    def forward(self, hidden, key_mask, plan=None, in_place=False):
        out = noise_like(hidden.shape, self.step)
        for b in range(hidden.shape[0]):
            n = int(key_mask[b].sum())
            found = [j for j, s in enumerate(self.before) if len(s) == n and torch.equal(hidden[b, :n], s)]
            assert len(found) == 1, (self.step, b, found)
            out[b, :n] = self.after[found[0]]
        return out


def patch_encoder(monkeypatch, g, model):
    rows = g["instances"]
    monkeypatch.setattr(model.bert, "embeddings", RecordedEmbeddings(rows))
    monkeypatch.setattr(model.bert.encoder, "layer",
                        nn.ModuleList([RecordedLayer(rows, i) for i in range(1, g["layers"] + 1)]))


def exit_layer(trace):
    return sum(call.name.startswith("layer_") for call in trace)


def padded_batch(rows):
    width = max(len(r["input_ids"]) for r in rows)
    pad = [width - len(r["input_ids"]) for r in rows]
    return {"input_ids": torch.tensor([r["input_ids"] + [0] * p for r, p in zip(rows, pad)]),
            "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * p for r, p in zip(rows, pad)]),
            "token_type_ids": torch.tensor([r["token_type_ids"] + [0] * p for r, p in zip(rows, pad)])}


# ---------------------------------------------------------------------------- heads and uncertainty
def test_every_reference_classifier_weight_has_its_place():
    g, state = load("fastbert")
    mapped = {f"classifiers.{i}.{theirs}.{p}" for i in range(g["layers"]) for theirs in HEAD_MAP.values()
              for p in ("weight", "bias")}
    assert mapped == set(state)


def head_logits(model, row):
    """Our heads on the states the reference fed its classifiers, one per layer: (layers, labels)."""
    outputs = []
    for i, head in enumerate(model.exits):
        hidden = states(row, i + 1)[None]
        with torch.no_grad():
            outputs.append(head(hidden, torch.ones(hidden.shape[:2], dtype=torch.bool))[0])
    return torch.stack(outputs)


def test_student_logits_match(golden):
    g, method, model = golden
    for row in g["instances"]:
        ours = head_logits(model, row)
        assert close(ours, row["layer_logits"]), (ours, row["layer_logits"])


def test_uncertainties_match(golden):
    """Our normalised entropy gives the reference's uncertainty: of its own logits to float32 rounding,
    of our heads' logits as closely as those logits agree."""
    g, method, model = golden
    for row in g["instances"]:
        theirs = row["uncertainty"]
        assert close(normalized_entropy(torch.tensor(row["layer_logits"])), theirs, atol=1e-6)
        assert close(normalized_entropy(head_logits(model, row)), theirs)


def test_decisions_are_not_on_a_rounding_edge(golden):
    """Every speed is at least MARGIN from every uncertainty it is compared with (the last layer answers
    regardless), and every argmax is clear, so rounding in either implementation decides nothing."""
    g, *_ = golden
    speeds = [float(s["speed"]) for s in g["settings"]]
    for row in g["instances"]:
        assert min(abs(u - s) for u in row["uncertainty"][:-1] for s in speeds) > MARGIN
        top2 = torch.tensor(row["layer_logits"]).topk(2, dim=-1).values
        assert float((top2[:, 0] - top2[:, 1]).min()) > 1e-4
    layers = {e["layer"] for row in g["instances"] for e in row["exits"].values()}
    assert layers == set(range(1, g["layers"] + 1))  # the fixture exits after every layer somewhere


# ---------------------------------------------------------------------------- the exit loop
def test_exit_layers_and_predictions_match(golden, monkeypatch):
    g, method, model = golden
    patch_encoder(monkeypatch, g, model)
    for row in g["instances"]:
        batch = instance_batch(row)
        with torch.no_grad():
            swept = method.predict_sweep(model, batch, g["settings"])
        for setting, sweep in zip(g["settings"], swept):
            theirs = row["exits"][setting["speed"]]
            with torch.no_grad():
                prediction = method.predict(model, batch, setting)
            for ours in (prediction, sweep):
                assert [exit_layer(t) for t in ours.traces] == [theirs["layer"]], (setting, row["input_ids"])
                assert close(ours.outputs[0], theirs["logits"]), (setting, ours.outputs, theirs["logits"])


def test_batched_is_the_references_one_at_a_time(golden, monkeypatch):
    """Our departure (the reference runs one instance at a time): a right-padded batch, its padding
    filled with noise, gives every instance the reference's single-instance exit and output."""
    g, method, model = golden
    patch_encoder(monkeypatch, g, model)
    batch = padded_batch(g["instances"])
    for setting in g["settings"]:
        expected = [row["exits"][setting["speed"]] for row in g["instances"]]
        with torch.no_grad():
            prediction = method.predict(model, batch, setting)
        assert [exit_layer(t) for t in prediction.traces] == [e["layer"] for e in expected], setting
        assert close(prediction.outputs, [e["logits"] for e in expected])


def test_a_tie_is_the_one_place_the_rules_differ(golden, monkeypatch):
    """The reference keeps an instance while its uncertainty > speed, so on a tie it leaves; ours leaves
    while uncertainty < speed (docs/baselines.md), so on a tie it stays. The fixture's speeds never tie.
    At exactly its own layer-1 uncertainty the reference left after layer 1; ours, at exactly its own,
    goes on, and one float32 step above it leaves after layer 1 too."""
    g, method, model = golden
    tie = g["tie"]
    row = g["instances"][tie["row"]]
    assert tie["layer"] == 1
    assert abs(tie["speed"] - row["uncertainty"][0]) < 1e-6
    patch_encoder(monkeypatch, g, model)
    batch = instance_batch(row)
    with torch.no_grad():
        ours = normalized_entropy(model.all_exit_outputs(**{k: batch[k] for k in
                                                            ("input_ids", "attention_mask", "token_type_ids")})[0])[0]
        at_tie = method.predict(model, batch, {"speed": repr(float(ours))})
        above = method.predict(model, batch, {"speed": repr(float(torch.nextafter(ours, torch.tensor(2.0))))})
    assert exit_layer(at_tie.traces[0]) > 1
    assert exit_layer(above.traces[0]) == 1


# ---------------------------------------------------------------------------- self-distillation
def test_distillation_loss_matches(golden, monkeypatch):
    g, method, model = golden
    patch_encoder(monkeypatch, g, model)
    ref = g["loss_batch"]
    batch = stacked_batch([g["instances"][i] for i in ref["rows"]])
    del batch["labels"]  # self-distillation reads none
    with torch.no_grad():
        outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    for ours, theirs in zip(outputs, ref["layer_logits"]):
        assert close(ours, theirs)
    assert close(outputs[-1], ref["teacher_logits"])
    model.train()  # the reference's training branch; dropout is 0 in the fixture
    loss = float(method.distillation_loss(model, batch).detach())
    assert abs(loss - ref["loss"]) < 1e-5 * max(1.0, ref["loss"]), (loss, ref["loss"])


def test_distillation_kl_is_the_official_codes_not_the_papers(golden):
    """The reference's KLDivLoss(log p_student, p_teacher) is KL(teacher || student), batch mean, summed
    over the students; the paper writes KL(student || teacher). From the reference's own logits, the
    first formula gives its loss and the paper's does not."""
    g, *_ = golden
    ref = g["loss_batch"]
    log_t = torch.log_softmax(torch.tensor(ref["teacher_logits"]), dim=-1)
    students = [torch.log_softmax(torch.tensor(s), dim=-1) for s in ref["layer_logits"][:-1]]
    code = sum(float((log_t.exp() * (log_t - log_s)).sum(-1).mean()) for log_s in students)
    paper = sum(float((log_s.exp() * (log_s - log_t)).sum(-1).mean()) for log_s in students)
    assert abs(code - ref["loss"]) < 1e-5 * max(1.0, ref["loss"])
    assert abs(paper - ref["loss"]) > 1e-2
