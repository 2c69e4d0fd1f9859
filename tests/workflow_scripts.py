"""The workflow's helper scripts (workflow/scripts/), loaded as modules for their tests: they are
not part of the hashee package, which never imports them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def load(name: str):
    """workflow/scripts/<name>.py as a module (cached in sys.modules under workflow_scripts_<name>)."""
    key = f"workflow_scripts_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
