"""The two ways to install agree: pyproject.toml (venv, `make`) and environment.yml (conda)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - python 3.10 has no tomllib
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _normalize(requirement: str) -> str:
    """'Foo_Bar >= 1.0' -> 'foo-bar>=1.0' (PEP 503 name, no spaces)."""
    requirement = requirement.replace(" ", "")
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$", requirement)
    assert match, f"unparsable requirement {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() + match.group(2)


def _pyproject():
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


def _conda():
    with open(ROOT / "environment.yml") as fh:
        return yaml.safe_load(fh)


def _conda_pip(env):
    pips = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pips) == 1, "environment.yml needs exactly one pip section"
    return pips[0]


def test_environment_pip_section_matches_pyproject():
    project = _pyproject()
    expected = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    listed = _conda_pip(_conda())
    assert sorted(map(_normalize, listed)) == sorted(map(_normalize, expected))
    assert len(listed) == len(set(map(_normalize, listed))), "duplicate pip entries in environment.yml"


def test_torch_is_pinned_in_both():
    deps = [_normalize(d) for d in _pyproject()["dependencies"]]
    pip = [_normalize(d) for d in _conda_pip(_conda())]
    assert "torch==2.13.0" in deps
    assert "torch==2.13.0" in pip


def test_conda_python_is_311_and_within_requires_python():
    env = _conda()
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and re.match(r"^python\b", d)]
    assert pythons == ["python=3.11"]
    assert _pyproject()["requires-python"] == ">=3.10"


def test_makefile_and_ci_entry_points():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^all:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "snakemake all --cores 8" in makefile
    assert "pip install -e '.[test]'" in makefile
    ci = ROOT / ".ci" / "run"
    assert ci.stat().st_mode & 0o111, ".ci/run must be executable"
    text = ci.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text and "make test" in text
