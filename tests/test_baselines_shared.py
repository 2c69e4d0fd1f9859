"""What every instance-exit baseline must do alike: a batch gives each instance its alone result,
a save/load round trip keeps predictions, and the real trainer changes its weights.
Baseline-specific behaviour is tested in tests/test_<baseline>.py."""

import math
import re

import pytest
import torch
from exit_helpers import (
    BASELINES,
    ROUNDING_MARGIN,
    alone,
    boundary_distance,
    mixed_inference,
    output_changes,
    random_batch,
    tiny_baseline,
    widest_gap_midpoint,
)

from hashee.core.methods import get_method
from hashee.core.tasks import get_task

LENGTHS = (9, 5, 12, 7, 3, 10, 8, 6)
CLASSIFICATION = [(name, "SST-2") for name in BASELINES]
REGRESSION = [(name, "STS-B") for name in BASELINES if get_method(name).supports_regression]


def mixed_exit_setup(name, task, batch):
    """(method, tiny model, inference) under which the batch's instances leave at different points."""
    method, model = tiny_baseline(name, task=task)
    if method.sweep_key == "patience" and model.task.is_regression:
        # Which outputs count as "unchanged" is a setting: put it in a gap of the batch's changes.
        changes = output_changes(model, batch)
        threshold = widest_gap_midpoint(changes.flatten().tolist(), inside=changes[:, 0].tolist())
        method = get_method(name, f"regression_threshold={threshold}")  # the model is the one above
    return method, model, mixed_inference(method, model, batch)


@pytest.mark.parametrize("name,task", CLASSIFICATION + REGRESSION)
def test_batch_gives_each_instance_its_alone_result(name, task):
    batch = random_batch(LENGTHS)
    method, model, inference = mixed_exit_setup(name, task, batch)
    assert boundary_distance(method, model, batch, [inference]) > ROUNDING_MARGIN
    with torch.no_grad():
        together = method.predict(model, batch, inference)
        singles = [method.predict(model, alone(batch, i), inference) for i in range(len(LENGTHS))]
    assert len({len(trace) for trace in together.traces}) > 1, "want mixed exits"
    for i, single in enumerate(singles):
        assert single.traces[0] == together.traces[i], i
        torch.testing.assert_close(single.outputs[0], together.outputs[i], atol=1e-5, rtol=1e-4)


# Non-default settings where a baseline has them: the round trip must keep them too.
SAVED = [("deebert", "", "SST-2"), ("fastbert", "distill_epochs=2", "SST-2"),
         ("pabee", "regression_threshold=0.5", "STS-B"), ("berxit", "", "STS-B"),
         ("cascadebert", "small_layers=1", "SST-2"), ("elasticbert-entropy", "", "SST-2"),
         ("elasticbert-patience", "regression_threshold=0.5", "STS-B")]


@pytest.mark.parametrize("name,setting,task", SAVED)
def test_save_load_round_trip_preserves_predictions(minilm2, tmp_path, name, setting, task):
    from hashee.core.checkpoint import load_trained, save_trained

    assert {case[0] for case in SAVED} == set(BASELINES)
    method, model = tiny_baseline(name, setting, task)
    batch = random_batch(LENGTHS)
    save_trained(tmp_path / "m", method, model, minilm2.tokenizer, get_task(task), {"seed": 1})
    loaded = load_trained(tmp_path / "m", expect_method=name)
    assert loaded.method.settings == method.settings
    assert loaded.method.inference_settings() == method.inference_settings()
    state, loaded_state = model.state_dict(), loaded.model.state_dict()
    assert list(loaded_state) == list(state)
    assert all(torch.equal(loaded_state[key], value) for key, value in state.items())
    with torch.no_grad():
        for inference in [*method.inference_settings(), mixed_inference(method, model, batch)]:
            before = method.predict(model, batch, inference)
            after = loaded.method.predict(loaded.model, batch, inference)
            assert after.traces == before.traces, inference
            assert torch.equal(after.outputs, before.outputs), inference


# The units a training run must move: every encoder layer and every exit head (CascadeBERT: each
# model's classifier), and BERxiT's shared LTE.
TRAINED_UNIT = re.compile(r"^(.*encoder\.layer\.\d+|exits\.\d+|models\.\d+\.classifier|lte)\.")
# Each baseline once; the regression-capable ones on STS-B, which runs their regression rule in dev scoring.
TRAINED = [("deebert", "", "SST-2"), ("fastbert", "distill_epochs=1", "SST-2"), ("pabee", "", "STS-B"),
           ("berxit", "", "STS-B"), ("cascadebert", "small_layers=1", "SST-2"),
           ("elasticbert-entropy", "", "SST-2"), ("elasticbert-patience", "", "STS-B")]


@pytest.mark.parametrize("name,setting,task", TRAINED)
def test_real_trainer_steps(minilm2, tiny_task, tmp_path, name, setting, task):
    from hashee.core.training import TrainParams, train
    from hashee.measure.evaluation import dev_scorer

    assert {case[0] for case in TRAINED} == set(BASELINES)
    data = tiny_task(task)
    dev = data["dev"].select(range(8))
    method = get_method(name, setting)  # CascadeBERT: the 2-layer backbone is the large model
    model = method.build(minilm2.config, get_task(task))
    method.init_from_backbone(model, minilm2)
    before = {key: value.detach().clone() for key, value in model.named_parameters()}
    params = TrainParams(epochs=1, lr=5e-5, batch_size=8, max_length=32, seed=3, checkpoint_every=0)
    pad = minilm2.tokenizer.pad_token_id
    result = train(method, model, data["train"].select(range(16)), dev, params, tmp_path, pad,
                   dev_score=dev_scorer(method, dev, pad, 16, "cpu"), progress=False)
    scored = [stage.name for stage in method.stages(model, params) if stage.select_on_dev]
    assert [row["stage"] for row in result.history] == scored and math.isfinite(result.best_dev)
    units = {}
    for key, value in model.named_parameters():
        if match := TRAINED_UNIT.match(key):
            units.setdefault(match.group(1), []).append(not torch.equal(before[key], value))
    assert len(units) >= 2 * minilm2.config.num_layers
    assert [unit for unit, changed in units.items() if not any(changed)] == []
