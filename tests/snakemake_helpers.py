"""Running the workflow through the real `snakemake` command from a test: the command, its environment,
the configs. Shared by tests/test_workflow.py and tests/test_slurm.py (and the tests that plan a config)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "Snakefile"
BIN = Path(sys.executable).parent


def snakemake_cmd() -> list[str]:
    exe = BIN / "snakemake"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


def snakemake_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"ELUE_DIR", "SNAKEMAKE_PROFILE"}}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])  # the venv's hashee and python
    env.update(extra)
    return env


def run_snakemake(args, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([*snakemake_cmd(), "--snakefile", str(SNAKEFILE), *args], cwd=cwd,
                          env=env or snakemake_env(), capture_output=True, text=True, timeout=timeout)


def load_config(name: str) -> dict:
    with open(ROOT / "config" / name) as fh:
        return yaml.safe_load(fh)


def job_stats(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count (without the total)."""
    assert "Job stats:" in output, output[-3000:]
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    total = counts.pop("total")
    assert total == sum(counts.values())
    return counts
