"""Facts every registered method (the baselines, HashEE, a plugin) states on its class, and the
registry's contract: the sweep keys the tables read are the keys its sweep uses, building a model
leaves the method unchanged, and `supports_regression` is what `check_task` does."""

import pytest
from exit_helpers import tiny_config

from hashee.core.errors import HasheeError
from hashee.core.methods import TrainingInputs, available_methods, get_method
from hashee.core.multiexit import MultiExitMethod
from hashee.core.settings import format_setting
from hashee.core.tasks import get_task
from hashee.measure.results import split_setting

TASKS = ("SST-2", "STS-B")


def variants(cls) -> list[str]:
    """Settings to try: the defaults, and a fixed depth where the method takes one (PABEE's sweep
    depends on it)."""
    return ["", "layers=2", "layers=4"] if "layers" in cls.setting_defaults else [""]


def test_inference_settings_use_only_declared_sweep_keys(fixed_exit_plugin):
    registry = available_methods()
    assert "fixed-exit" in registry
    for name, cls in registry.items():
        assert not set(cls.sweep_keys) & set(cls.setting_defaults), f"{name}: a sweep key is also a training setting"
        for setting in variants(cls):
            method = get_method(name, setting)
            for inference in method.inference_settings():
                assert set(inference) <= set(cls.sweep_keys), (name, setting, inference, cls.sweep_keys)
                # What the tables rely on: a row's setting minus the sweep keys names the trained model.
                row_setting = method.setting_text(inference)
                assert split_setting(row_setting, cls.sweep_keys) == (method.setting_text(), format_setting(inference))


@pytest.mark.parametrize("task_name", TASKS)
def test_build_leaves_the_method_unchanged_and_records_the_task_on_the_model(fixed_exit_plugin, task_name):
    task = get_task(task_name)
    for name, cls in available_methods().items():
        for setting in variants(cls):
            method = get_method(name, setting)
            if task.is_regression and not cls.supports_regression:
                with pytest.raises(HasheeError, match=task.name):
                    method.build(tiny_config(4), task)
                continue
            state, sweep = dict(vars(method)), method.inference_settings()
            model = method.build(tiny_config(4), task)
            assert vars(method) == state, name
            assert method.inference_settings() == sweep, name
            assert model.task is task, name


def test_supports_regression_matches_the_known_exit_rules():
    # The ELUE table's regression entries (docs/baselines.md): which methods have a regression rule.
    stated = {name: cls.supports_regression for name, cls in available_methods().items()}
    assert {name for name, ok in stated.items() if not ok} >= {"deebert", "fastbert", "cascadebert",
                                                                "elasticbert-entropy"}
    assert {name for name, ok in stated.items() if ok} >= {"hashee", "static", "pabee", "berxit",
                                                           "elasticbert-patience"}


def test_a_multi_exit_class_must_declare_sweep_keys_not_sweep_key():
    with pytest.raises(HasheeError, match=r"sweep_keys = \('exit',\)"):
        type("Stale", (MultiExitMethod,), {"name": "stale", "sweep_key": "exit"})


def test_every_method_takes_the_training_time_prepare_hook(fixed_exit_plugin):
    # `hashee train` calls prepare(model, backbone, task, inputs) on every method; an inference-time
    # hook of the same name would shadow it.
    task = get_task("SST-2")
    for name, cls in available_methods().items():
        if cls.needs_fitted_hash:  # HashEE: fits or loads a hash (tests/test_hashee_method.py)
            continue
        method = get_method(name)
        model = method.build(tiny_config(4), task)
        method.prepare(model, None, task, TrainingInputs(data_dir="", seed=0, max_length=8))
        with pytest.raises(HasheeError, match="uses no hash"):
            method.prepare(model, None, task, TrainingInputs(data_dir="", seed=0, max_length=8, hash_file="h.pt"))
