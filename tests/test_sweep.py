"""A multi-exit method's whole sweep from one pass (`predict_sweep`, what evaluation runs) equals
`predict` at each sweep point (what really skips layers, and what timing runs)."""

import pytest
import torch
from exit_helpers import ROUNDING_MARGIN, boundary_distance, random_batch, sharpen, tiny_config

from hashee.core.methods import get_method
from hashee.core.tasks import get_task

METHODS = [("deebert", "layers=6"), ("fastbert", "layers=6"), ("pabee", "layers=6"), ("berxit", "layers=6"),
           ("elasticbert-entropy", "layers=6"), ("elasticbert-patience", "layers=6"),
           ("cascadebert", "layers=6,small_layers=2")]
SEEDS_TO_TRY = 10


def tiny_batch(lengths=(9, 5, 12, 7, 3, 10, 6, 11)):
    return random_batch(lengths, seed=3)


def off_boundary_model(method, task, std, batch, first_seed):
    """The first seeded model (seeds first_seed, first_seed + 3, ...) on which no value a sweep point
    decides on is within rounding of its boundary: one pass and `predict` run different matrix shapes,
    and rounding must not decide."""
    for seed in range(first_seed, first_seed + 3 * SEEDS_TO_TRY, 3):
        torch.manual_seed(seed)
        model = method.build(tiny_config(), get_task(task)).eval()
        sharpen(model, std)
        if boundary_distance(method, model, batch, method.inference_settings()) > ROUNDING_MARGIN:
            return model
    raise AssertionError(f"none of {SEEDS_TO_TRY} seeds keeps {method.name}'s values off its sweep's boundaries")


@pytest.mark.parametrize("name,setting", METHODS)
@pytest.mark.parametrize("task", ["SST-2", "STS-B"])
def test_sweep_from_one_pass_equals_predict_per_point(name, setting, task):
    method = get_method(name, setting)
    if get_task(task).is_regression and not method.supports_regression:
        pytest.skip(f"{name} has no regression rule")
    exits_seen = set()
    batch = tiny_batch()
    for first_seed, std in enumerate((0.3, 1.0, 3.0)):
        model = off_boundary_model(method, task, std, batch, first_seed)
        points = method.inference_settings()
        with torch.no_grad():
            swept = method.predict_sweep(model, batch, points)
            for inference, one_pass in zip(points, swept):
                alone = method.predict(model, batch, inference)
                assert one_pass.traces == alone.traces, inference
                torch.testing.assert_close(one_pass.outputs, alone.outputs, atol=1e-5, rtol=1e-5)
                exits_seen.add(tuple(len(trace) for trace in alone.traces))
    assert len(exits_seen) > 1  # the sweep really moved exits, so equality is not trivial
