import math
import warnings

import numpy as np
import pytest
import torch

from hashee.core.errors import HasheeError
from hashee.core.metrics import compute_metric, metric_parts
from hashee.core.tasks import get_task


def test_accuracy():
    task = get_task("SNLI")
    assert compute_metric(task, [0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(75.0)
    assert metric_parts(task, [0, 1, 2, 2], [0, 1, 1, 2]) == {"acc": pytest.approx(75.0)}


def test_mrpc_mean_of_accuracy_and_f1():
    # acc 3/5; class 1: TP 2, FP 1, FN 1 -> F1 = 4/6.
    parts = metric_parts(get_task("MRPC"), [1, 1, 1, 0, 0], [1, 0, 1, 1, 0])
    assert parts == {"acc": pytest.approx(60.0), "f1": pytest.approx(200 / 3)}
    assert compute_metric(get_task("MRPC"), [1, 1, 1, 0, 0], [1, 0, 1, 1, 0]) == pytest.approx((60 + 200 / 3) / 2)


def test_mrpc_f1_without_positive_predictions_is_zero():
    assert metric_parts(get_task("MRPC"), [0, 0], [1, 0]) == {"acc": 50.0, "f1": 0.0}


def test_stsb_pearson_and_spearman():
    # x deviations -1.5,-.5,.5,1.5; y deviations -1.75,-.75,.25,2.25 -> r = 6.5 / sqrt(5 * 8.75).
    pearson = 100 * 6.5 / math.sqrt(5 * 8.75)
    parts = metric_parts(get_task("STS-B"), [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0])
    assert parts == {"pearson": pytest.approx(pearson), "spearman": pytest.approx(100.0)}
    assert compute_metric(get_task("STS-B"), np.array([1, 2, 3, 4]), [1, 2, 3, 5]) == pytest.approx(
        (pearson + 100) / 2)


def test_stsb_constant_predictions_score_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parts = metric_parts(get_task("STS-B"), [2.5, 2.5, 2.5], [1.0, 3.0, 4.0])
    assert parts == {"pearson": 0.0, "spearman": 0.0}
    assert compute_metric(get_task("STS-B"), [1.0, 2.0], [3.0, 3.0]) == 0.0


def test_accepts_tensors():
    assert compute_metric(get_task("SST-2"), torch.tensor([1, 0, 1]), torch.tensor([1, 1, 1])) == pytest.approx(
        200 / 3)


@pytest.mark.parametrize("task, predictions, labels, problem", [
    ("SST-2", [1, 0], [1], "2 predictions for 1 labels"),
    ("SST-2", [], [], "no predictions"),
    ("SST-2", [1, 0], [-1, -1], "unlabeled test split"),
    ("SNLI", [0, 3], [0, 1], "class indices 0..2"),
    ("SST-2", [0.5, 1.0], [0, 1], "non-integer"),
    ("STS-B", [1.0, 2.0], [float("nan"), 1.0], "NaN"),
])
def test_bad_inputs(task, predictions, labels, problem):
    with pytest.raises(HasheeError, match=problem):
        compute_metric(get_task(task), predictions, labels)


def test_accuracy_agrees_with_scikit_learn():
    import numpy as np
    from sklearn.metrics import accuracy_score

    from hashee.core.metrics import _accuracy

    rng = np.random.default_rng(0)
    predictions, labels = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    assert _accuracy(predictions, labels) == accuracy_score(labels, predictions)
