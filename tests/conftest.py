import contextlib
import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm():
    from hashee.core.backbones import load_backbone

    return load_backbone("minilm")


# Shared tiny setup of the trainer tests: demo data written once, a 2-layer MiniLM, tokenized tasks.
@pytest.fixture(scope="session")
def tiny_elue(tmp_path_factory):
    from hashee.measure.demo_data import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("elue"), seed=0, size="tiny")


@pytest.fixture(scope="session")
def minilm2():
    from hashee.core.backbones import load_backbone

    return load_backbone("minilm", num_layers=2)


@pytest.fixture(scope="session")
def tiny_task(tiny_elue, minilm2):
    """task name -> its tiny train/dev datasets (max length 32), tokenized once per session."""
    from hashee.core.data import load_task

    cache = {}

    def load(task="SST-2"):
        if task not in cache:
            cache[task] = load_task(task, tiny_elue, minilm2.tokenizer, 32, splits=("train", "dev"))
        return cache[task]

    return load


@pytest.fixture
def fixed_exit_plugin(monkeypatch):
    """docs/examples/fixed_exit.py registered the way the jobs load a plugin ($HASHEE_PLUGINS); the
    registry and the module cache are restored afterwards, so other tests see the registry unchanged."""
    import sys
    from pathlib import Path

    from hashee.core import methods

    path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "fixed_exit.py"
    methods.available_methods()  # the installed methods register in the real registry, not in the copy
    monkeypatch.setenv("HASHEE_PLUGINS", str(path))
    monkeypatch.setattr(methods.METHODS, "_classes", dict(methods.METHODS._classes))
    yield path
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) == str(path):
            del sys.modules[name]


@pytest.fixture(scope="module")
def slurm():
    """A single-node SLURM cluster (tests/slurm_cluster.py) for the module's tests, stopped after them; no
    process of it may remain. Skips, saying why, where none can start here."""
    from slurm_cluster import ClusterError, leftover_processes, missing_reason, slurm_cluster

    reason = missing_reason()
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    stack = contextlib.ExitStack()
    try:
        cluster = stack.enter_context(slurm_cluster())
    except ClusterError as err:
        print(f"skipped: SLURM test cluster did not start: {err}")
        pytest.skip(f"SLURM test cluster did not start: {err}")
    with stack:
        yield cluster
    leftovers = leftover_processes(cluster.root, cluster.conf)
    assert not leftovers, f"the SLURM test cluster left processes behind: {leftovers}"
