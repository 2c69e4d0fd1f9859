"""BERT-of-Theseus: the linear replacement-rate schedule, which layers a forward runs, the mixed
forward at p = 0 / 1, the Bernoulli draws' rate, and the real trainer's stages (successor layers copied
from the fine-tuned predecessor, predecessor frozen while they train)."""

import dataclasses
import math

import pytest
import torch
from exit_helpers import random_batch, tiny_config

from baselines.theseus import layers_run, replacing_rate
from hashee.core.errors import HasheeError
from hashee.core.methods import get_method
from hashee.core.tasks import get_task

LENGTHS = (9, 5, 12, 7)


def test_linear_replacement_schedule():
    assert replacing_rate(0, 0.3, 0.0006) == pytest.approx(0.3)
    assert replacing_rate(500, 0.3, 0.0006) == pytest.approx(0.6)
    steps = [replacing_rate(t, 0.3, 0.0006) for t in range(0, 2000, 50)]
    assert steps == sorted(steps)
    # p reaches 1 at t = (1 - b) / k (~1167 steps) and stays there.
    assert replacing_rate(1160, 0.3, 0.0006) < 1.0
    assert replacing_rate(1170, 0.3, 0.0006) == 1.0 and replacing_rate(10**6, 0.3, 0.0006) == 1.0
    assert replacing_rate(10**6, 0.5, 0.0) == 0.5  # k = 0: the constant scheduler


def test_which_layers_a_forward_runs():
    assert layers_run([True, False, True], 2) == [("successor", 0), ("predecessor", 2), ("predecessor", 3),
                                                  ("successor", 2)]
    assert layers_run([False, False], 3) == [("predecessor", j) for j in range(6)]
    assert layers_run([True] * 3, 4) == [("successor", i) for i in range(3)]


def tiny(setting="student_layers=2", layers=4, task="SST-2"):
    method = get_method("theseus", setting)
    torch.manual_seed(0)
    model = method.build(tiny_config(layers), get_task(task)).eval()
    torch.nn.init.normal_(model.classifier.weight, std=2.0)
    return method, model


def test_mixed_forward_at_p_0_and_1_is_the_predecessor_and_the_successor():
    _, model = tiny()
    batch = random_batch(LENGTHS)
    args = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model.mixed_forward(batch, [False, False]), model.teacher_forward(*args))
        torch.testing.assert_close(model.mixed_forward(batch, [True, True]), model.student(*args)[0])
        # The successor shares the predecessor's embeddings and head, as the reference's does.
        assert model.student.bert.embeddings is model.bert.embeddings and model.student.classifier is model.classifier


def test_modules_are_replaced_at_the_scheduled_rate():
    """Counting the successor layers that run: p = b at the start, then k * t + b, then 1."""
    method, model = tiny("student_layers=2,replacing_rate=0.5,k=0.0")
    batch = {**random_batch(LENGTHS), "labels": torch.tensor([0, 1, 1, 0])}
    stage = method.stages(model, type("P", (), {"epochs": 1, "lr": 1e-4, "warmup": 0, "weight_decay": 0})())[1]
    ran = []
    hooks = [layer.register_forward_hook(lambda *a: ran.append(1)) for layer in model.student.bert.encoder.layer]
    torch.manual_seed(0)
    for _ in range(300):
        stage.loss(model, batch)
    assert int(model.replace_step) == 300
    assert 250 < len(ran) < 350  # 600 draws at p = 0.5: mean 300, sd 12
    ran.clear()
    method, model2 = tiny("student_layers=2,replacing_rate=0.1,k=0.01")
    stage = method.stages(model2, type("P", (), {"epochs": 1, "lr": 1e-4, "warmup": 0, "weight_decay": 0})())[1]
    for hook in hooks:
        hook.remove()
    hooks = [layer.register_forward_hook(lambda *a: ran.append(1)) for layer in model2.student.bert.encoder.layer]
    counts = []
    for _ in range(100):  # p goes 0.1 .. 1.0 over these steps, 1 from step 90
        before = len(ran)
        stage.loss(model2, batch)
        counts.append(len(ran) - before)
    assert counts[90:] == [2] * 10
    assert sum(counts[:30]) < sum(counts[30:60]) < sum(counts[60:90])
    for hook in hooks:
        hook.remove()


def test_settings_are_checked():
    with pytest.raises(HasheeError, match="multiple"):
        get_method("theseus", "student_layers=3").build(tiny_config(4), get_task("SST-2"))
    with pytest.raises(HasheeError, match="replacing_rate"):
        get_method("theseus", "replacing_rate=0").build(tiny_config(4), get_task("SST-2"))


def test_real_trainer_copies_then_trains_the_successor(minilm2, tiny_task, tmp_path):
    from hashee.core.training import TrainParams, train
    from hashee.measure.evaluation import dev_scorer

    data = tiny_task("STS-B")
    dev = data["dev"].select(range(8))
    method = get_method("theseus", "student_layers=1,k=0.1")
    model = method.build(minilm2.config, get_task("STS-B"))
    method.init_from_backbone(model, minilm2)
    snapshots = {}
    stages_of = method.stages

    def recording_stages(model, params):  # the predecessor as stage 1 left it, and the successor's start
        stages = stages_of(model, params)
        begin = stages[1].begin

        def recording_begin(model, batches):
            begin(model, batches)
            snapshots["predecessor"] = {k: v.detach().clone() for k, v in model.bert.state_dict().items()}
            snapshots["successor"] = {k: v.detach().clone() for k, v in model.student.bert.encoder.state_dict().items()}

        return [stages[0], dataclasses.replace(stages[1], begin=recording_begin), stages[2]]

    method.stages = recording_stages
    params = TrainParams(epochs=1, lr=5e-5, batch_size=8, max_length=32, seed=3, checkpoint_every=0)
    pad = minilm2.tokenizer.pad_token_id
    result = train(method, model, data["train"].select(range(16)), dev, params, tmp_path, pad,
                   dev_score=dev_scorer(method, dev, pad, 16, "cpu"), progress=False)
    assert [row["stage"] for row in result.history] == ["finetune", "replace", "successor"]
    assert math.isfinite(result.best_dev)
    # Successor layer 0 started as the fine-tuned predecessor's layer 0 ...
    first = {k.replace("layer.0.", "", 1): v for k, v in snapshots["successor"].items()}
    assert all(torch.equal(v, snapshots["predecessor"]["encoder.layer.0." + k]) for k, v in first.items())
    # ... and then trained, while the predecessor (embeddings and head included) stayed frozen.
    assert all(torch.equal(v, model.bert.state_dict()[k]) for k, v in snapshots["predecessor"].items())
    now = model.student.bert.encoder.state_dict()
    assert not all(torch.equal(v, now[k]) for k, v in snapshots["successor"].items())
    assert not bool(model.serve_teacher) and int(model.replace_step) == 2
