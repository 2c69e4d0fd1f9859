"""TinyBERT: the uniform layer mapping, the intermediate loss (which teacher layers each student layer
learns; attention scores as the layers' own; padding left out), the prediction loss, and the model
(prediction, FLOPs and traces are the student's; save and reload; the real trainer's three stages)."""

import math

import pytest
import torch
import torch.nn.functional as F
from exit_helpers import random_batch, tiny_config

from baselines.tinybert import encoder_internals, intermediate_loss, layer_mapping, prediction_loss
from hashee.core.errors import HasheeError
from hashee.core.methods import get_method
from hashee.core.tasks import get_task
from hashee.measure.flops import FlopCounter

LENGTHS = (9, 5, 12, 7)


def test_uniform_layer_mapping():
    assert layer_mapping(3, 6) == [0, 2, 4, 6]
    assert layer_mapping(6, 12) == [0, 2, 4, 6, 8, 10, 12]
    assert layer_mapping(4, 12) == [0, 3, 6, 9, 12]
    with pytest.raises(HasheeError, match="multiple"):
        layer_mapping(4, 6)


def constant_states(values, batch, width=8, pad=-99.0):
    """One (B, T, width) hidden state per value, filled with it; padding filled with `pad`."""
    mask = batch["attention_mask"].bool()[:, :, None]
    return [torch.full((*batch["attention_mask"].shape, width), float(v)).masked_fill(~mask, pad) for v in values]


def constant_scores(values, batch, heads=2, pad=7.0):
    mask = batch["attention_mask"].bool()
    pair = mask[:, None, :, None] & mask[:, None, None, :]
    shape = (mask.shape[0], heads, mask.shape[1], mask.shape[1])
    return [torch.full(shape, float(v)).masked_fill(~pair, pad) for v in values]


def test_intermediate_loss_pairs_student_layer_m_with_teacher_layer_g_m():
    """Teacher state t holds the value t; a student whose state m holds g(m) has loss 0, any other
    pairing (the first M layers, an off-by-one) does not. Padding (different everywhere) never counts."""
    batch = random_batch(LENGTHS)
    teacher_states, teacher_scores = constant_states(range(7), batch), constant_scores(range(1, 7), batch)
    mapping = layer_mapping(3, 6)
    right = (constant_states(mapping, batch, pad=55.0), constant_scores(mapping[1:], batch, pad=-3.0))
    assert intermediate_loss(*right, teacher_states, teacher_scores, mapping, batch["attention_mask"]).item() == 0
    for wrong in ([0, 1, 2, 3], [0, 1, 3, 5]):
        student = (constant_states(wrong, batch), constant_scores(wrong[1:], batch))
        assert intermediate_loss(*student, teacher_states, teacher_scores, mapping, batch["attention_mask"]) > 0.5


def test_intermediate_loss_value():
    """Each mapped pair adds the mean squared difference over real positions: hidden states 1^2 for
    m = 0..3 (4 pairs) and attention 2^2 for m = 1..3 (3 pairs)."""
    batch = random_batch(LENGTHS)
    mapping = layer_mapping(3, 6)
    teacher = constant_states(range(7), batch), constant_scores(range(1, 7), batch)
    student = constant_states([g + 1 for g in mapping], batch), constant_scores([g + 2 for g in mapping[1:]], batch)
    loss = intermediate_loss(*student, *teacher, mapping, batch["attention_mask"])
    assert loss.item() == pytest.approx(4 * 1.0 + 3 * 4.0)


def test_projection_applies_to_student_states():
    batch = random_batch(LENGTHS)
    mapping = [0, 2]
    teacher = constant_states(range(3), batch), constant_scores(range(1, 3), batch)
    student = constant_states([0, 1], batch), constant_scores([2], batch)  # state 1 holds 1, teacher's 2 holds 2
    double = torch.nn.Linear(8, 8)
    with torch.no_grad():
        double.weight.copy_(2 * torch.eye(8))
        double.bias.zero_()
    assert intermediate_loss(*student, *teacher, mapping, batch["attention_mask"], double).item() == 0


def test_attention_scores_are_the_layers_own():
    """softmax(scores with padded keys masked) @ V is the layer's attention context."""
    torch.manual_seed(0)
    model = get_method("tinybert", "student_layers=1").build(tiny_config(2), get_task("SST-2")).eval()
    batch = random_batch(LENGTHS)
    states, scores = encoder_internals(model.bert, batch)
    assert len(states) == 3 and len(scores) == 2
    key_mask = batch["attention_mask"].bool()
    for layer, hidden, score in zip(model.bert.encoder.layer, states, scores):
        attention = layer.attention.self
        v = attention.split_heads(attention.value(hidden))
        probs = F.softmax(score.masked_fill(~key_mask[:, None, None, :], float("-inf")), dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(hidden.shape)
        with torch.no_grad():
            torch.testing.assert_close(ctx, attention(hidden, hidden, key_mask), rtol=1e-5, atol=1e-6)
    out = model.bert(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).last_hidden_state
    torch.testing.assert_close(states[-1], out)


def test_prediction_loss():
    student, teacher = torch.tensor([[1.0, -1.0], [0.5, 2.0]]), torch.tensor([[3.0, 0.0], [-1.0, 1.0]])
    for temperature in (1.0, 2.0):
        expected = -(F.softmax(teacher / temperature, -1) * F.log_softmax(student / temperature, -1)).sum(-1).mean()
        assert prediction_loss(student, teacher, temperature, False).item() == pytest.approx(expected.item())
    # Minimal where the student's distribution equals the teacher's.
    assert prediction_loss(teacher, teacher, 1.0, False) < prediction_loss(student, teacher, 1.0, False)
    assert prediction_loss(torch.tensor([[1.0], [2.0]]), torch.tensor([[2.0], [4.0]]), 1.0, True).item() == 2.5


def test_predictions_traces_and_flops_are_the_students():
    method = get_method("tinybert", "student_layers=2")
    torch.manual_seed(0)
    model = method.build(tiny_config(4), get_task("SST-2")).eval()
    batch = random_batch(LENGTHS)
    prediction = method.predict(model, batch, {})
    with torch.no_grad():
        student_logits = model.student(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])[0]
    torch.testing.assert_close(prediction.outputs, student_logits)
    assert all(sum(c.name.startswith("layer_") for c in trace) == 2 for trace in prediction.traces)
    assert set(method.flop_modules(model)) == {"emb", "layer_1", "layer_2", "pooler", "classifier"}
    # The static method on the same model measures its teacher: 4 layers, twice the student's 2.
    static = get_method("static")
    student_flops = FlopCounter(method.flop_modules(model)).mean_mflops(prediction.traces)
    teacher_flops = FlopCounter(static.flop_modules(model)).mean_mflops(static.predict(model, batch, {}).traces)
    assert 1.7 < teacher_flops / student_flops < 2.0
    with torch.no_grad():
        torch.testing.assert_close(method.predict_outputs(model, batch, {}), prediction.outputs)


def test_save_load_round_trip(minilm2, tmp_path):
    from hashee.core.checkpoint import load_trained, save_trained

    method = get_method("tinybert", "student_layers=1,temperature=2")
    model = method.build(minilm2.config, get_task("STS-B"))
    method.init_from_backbone(model, minilm2)
    model.eval()
    save_trained(tmp_path / "m", method, model, minilm2.tokenizer, get_task("STS-B"), {"seed": 1})
    loaded = load_trained(tmp_path / "m", expect_method="tinybert")
    batch = random_batch(LENGTHS, vocab=1000)
    with torch.no_grad():
        torch.testing.assert_close(loaded.method.predict_outputs(loaded.model, batch, {}),
                                   method.predict_outputs(model, batch, {}))
    assert loaded.model.student.bert.num_layers == 1


def test_real_trainer_runs_the_three_stages(minilm2, tiny_task, tmp_path):
    from hashee.core.training import TrainParams, train
    from hashee.measure.evaluation import dev_scorer

    data = tiny_task("SST-2")
    dev = data["dev"].select(range(8))
    method = get_method("tinybert", "student_layers=1")
    model = method.build(minilm2.config, get_task("SST-2"))
    method.init_from_backbone(model, minilm2)
    # The student starts as the backbone's first layer.
    assert torch.equal(model.student.bert.encoder.layer[0].output.dense.weight,
                       model.bert.encoder.layer[0].output.dense.weight)
    student_before = {k: v.detach().clone() for k, v in model.student.named_parameters()}
    params = TrainParams(epochs=1, lr=5e-5, batch_size=8, max_length=32, seed=3, checkpoint_every=0)
    pad = minilm2.tokenizer.pad_token_id
    result = train(method, model, data["train"].select(range(16)), dev, params, tmp_path, pad,
                   dev_score=dev_scorer(method, dev, pad, 16, "cpu"), progress=False)
    assert [stage.name for stage in method.stages(model, params)] == ["finetune", "intermediate", "prediction"]
    assert [row["stage"] for row in result.history] == ["finetune", "prediction"] and math.isfinite(result.best_dev)
    assert not bool(model.serve_teacher)  # what evaluation runs: the student
    changed = [k for k, v in model.student.named_parameters() if not torch.equal(student_before[k], v)]
    assert any(k.startswith("bert.encoder.layer.0.") for k in changed) and "classifier.weight" in changed


@pytest.mark.parametrize("method,setting,row", [
    ("tinybert", "layers=6,student_layers=3", "TinyBERT"),
    ("tinybert", "layers=12,student_layers=6,student=general-6l-768,backbone=bert", "TinyBERT"),
    ("headprune", "layers=6,speedup=1.3,step=0.25", "HeadPrune"),
    ("theseus", "layers=12,student_layers=6,backbone=bert", "BERT-of-Theseus")])
def test_the_compression_methods_map_to_their_paper_rows(method, setting, row):
    from hashee.measure.tables import load_paper, paper_model

    assert paper_model(method, setting) == row
    assert row in set(load_paper("elue_scores")["model"]) and row in set(load_paper("elue_test")["model"])
