"""`hashee methods`: every registered method, built-ins and $HASHEE_PLUGINS' alike, with its sweep keys,
regression support and one line; run in a fresh interpreter, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hashee.core.methods import available_methods

ROOT = Path(__file__).resolve().parents[1]


def methods(*args: str, plugins: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "HASHEE_PLUGINS": plugins}
    return subprocess.run([sys.executable, "-m", "hashee.cli", "methods", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_it_lists_the_builtins_and_a_plugin_with_their_facts():
    out = methods("--json", plugins=str(ROOT / "docs" / "examples" / "fixed_exit.py"))
    assert out.returncode == 0, out.stderr
    records = {r["method"]: r for r in json.loads(out.stdout)}
    assert set(available_methods()) | {"fixed-exit"} == set(records)
    assert records["fixed-exit"] == {"method": "fixed-exit", "label": "fixed-exit", "sweep_keys": ["exit"],
                                     "regression": True,
                                     "description": "A worked example of adding a baseline: every instance "
                                                    "exits at a fixed layer k."}
    assert records["deebert"]["regression"] is False and records["deebert"]["sweep_keys"] == ["threshold"]
    assert all(r["description"] for r in records.values()), records  # every built-in says what it is
    assert records["hashee"]["label"] == "HashEE"  # what the plots' legends and the backbones table show


def test_the_table_has_a_line_per_method_and_the_summarization_registry_its_own():
    out = methods()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["method", "label", "sweep", "keys", "regression", "description"]
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(available_methods())
    summ = methods("--study", "summarization", "--json")
    assert {r["method"] for r in json.loads(summ.stdout)} == {"full", "truncated", "hashee", "dat"}
