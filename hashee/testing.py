"""Pytest fixtures for a method's own unit tests: the ones this repository's tests use, importable from
outside it. In your conftest.py:

    pytest_plugins = ["hashee.testing"]

then a test takes
- `tiny_elue`: the tiny synthetic ELUE data (every task, ELUE's file layout), written once per session;
- `minilm2`: the offline backbone (MiniLM) cut to 2 layers; `minilm`: all 6;
- `tiny_task`: a function, task name -> its tiny train/dev datasets, tokenized (max length 32);
- `registered_plugin`: a function, path of a method module -> that path, the module registered as the
  jobs register it ($HASHEE_PLUGINS); the registry and the module cache are restored after the test.

Needs pytest (the `test` extra); the library never imports this module.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm():
    from hashee.core.backbones import load_backbone

    return load_backbone("minilm")


@pytest.fixture(scope="session")
def tiny_elue(tmp_path_factory):
    from hashee.studies.elue.data import write_demo_data

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
def registered_plugin(monkeypatch):
    """register(path): the method module at `path` registered the way the jobs load a plugin
    ($HASHEE_PLUGINS); afterwards the registry and the module cache are as before."""
    from hashee.core import methods

    methods.available_methods()  # the installed methods register in the real registry, not in the copy
    monkeypatch.setattr(methods.METHODS, "_classes", dict(methods.METHODS._classes))
    paths = []

    def register(path) -> Path:
        path = Path(path).resolve()
        paths.append(path)
        monkeypatch.setenv("HASHEE_PLUGINS", ",".join(str(p) for p in paths))
        methods.available_methods()
        return path

    yield register
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) in {str(p) for p in paths}:
            del sys.modules[name]
