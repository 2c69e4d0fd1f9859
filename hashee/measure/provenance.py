"""Provenance of a run: what produced `results/<config>/` -- the code (git commit, dirty tree), the
environment (lock file hash, Python and package versions, torch threads, CPU, GPU), the data
(SHA-256 of every file the run reads) and the merged config. `collect` gathers it, `write` writes
it as JSON atomically; `table_note` is the caption line that names it under every table.

Nothing here fails for want of git, torch or a GPU: what cannot be found is recorded as null.
Only a data file that cannot be read is an error (the record would otherwise claim a hash it lacks)."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
from pathlib import Path

from hashee.core.errors import HasheeError
from hashee.core.io import atomic_path

LOCK_FILE_NAME = "requirements.lock"
PROVENANCE_FILE_NAME = "provenance.json"
# Recorded even without a lock file: the libraries the numbers depend on.
KEY_PACKAGES = ("torch", "transformers", "datasets", "fvcore", "pandas", "snakemake", "numpy", "scikit-learn",
                "scipy")
PROJECT_DISTRIBUTION = "hashee-bench"
_CHUNK_BYTES = 1 << 20
_SUBPROCESS_TIMEOUT_S = 30
# `name==version` lines of a pip-compile lock file (comments, options and `# via` lines are skipped).
_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;\\]+)")


def default_repo_dir() -> Path:
    """The checkout hashee is imported from (an editable install's source tree)."""
    return Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------ hashing
def sha256_file(path) -> str:
    """SHA-256 of a file, read in chunks (data files can be gigabytes)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                digest.update(chunk)
    except FileNotFoundError:
        raise HasheeError(f"{path}: data file not found") from None
    except IsADirectoryError:
        raise HasheeError(f"{path}: is a directory, expected a data file") from None
    except OSError as err:
        raise HasheeError(f"{path}: cannot read ({err.strerror})") from None
    return digest.hexdigest()


def hash_data_files(paths) -> dict[str, dict]:
    """path (as given) -> {"sha256", "bytes"}, in the order given."""
    return {str(path): {"sha256": sha256_file(path), "bytes": os.path.getsize(path)}
            for path in dict.fromkeys(str(p) for p in paths)}


# ---------------------------------------------------------------------------------------- git
def _git(repo_dir, *args) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, text=True,
                             timeout=_SUBPROCESS_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(repo_dir) -> dict:
    """{"commit": sha or None, "dirty": bool or None}; None outside a git checkout. Dirty means a
    tracked file differs from the commit (untracked files, such as results, do not count)."""
    commit = _git(repo_dir, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git(repo_dir, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


# ----------------------------------------------------------------------------------- packages
def locked_versions(lock_file) -> dict[str, str]:
    """name -> pinned version of every distribution in a pip-compile lock file."""
    pins = {}
    for line in Path(lock_file).read_text(encoding="utf-8").splitlines():
        match = _LOCK_LINE.match(line)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def satisfies_pin(installed: str | None, pin: str) -> bool:
    """PEP 440 `==pin`: a pin without a local label (+cpu) accepts any local label of its version."""
    if installed is None:
        return False
    return installed == pin or ("+" not in pin and installed.split("+", 1)[0] == pin)


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------------- hardware
def cpu_model() -> str | None:
    """/proc/cpuinfo's "model name" (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _nvidia_driver() -> str | None:
    out = None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=_SUBPROCESS_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        pass
    if out is not None and out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip().splitlines()[0].strip()
    try:  # the kernel module's own line, where nvidia-smi is missing
        text = Path("/proc/driver/nvidia/version").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(?:for\s+\S+\s+)?([0-9][0-9.]*)", text)
    return match.group(1) if match else None


def torch_environment() -> dict:
    """{"torch_threads", "gpu"}: gpu is None without torch or without a usable CUDA device."""
    try:
        import torch
    except ImportError:
        return {"torch_threads": None, "gpu": None}
    gpu = None
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        gpu = {"name": names[0] if names else None, "names": names, "count": len(names),
               "driver": _nvidia_driver(), "cuda": torch.version.cuda}
    return {"torch_threads": torch.get_num_threads(), "gpu": gpu}


# ------------------------------------------------------------------------------------- record
def parse_config_json(text: str) -> dict:
    """The merged config passed as JSON text (`hashee provenance --config-json`)."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise HasheeError(f"--config-json: invalid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if not isinstance(config, dict):
        raise HasheeError(f"--config-json: expected a JSON object (the merged config), got {type(config).__name__}")
    return config


def collect(*, data_files=(), config: dict | None = None, lock_file=None, repo_dir=None) -> dict:
    """The provenance record. `lock_file` defaults to requirements.lock at `repo_dir`'s root,
    `repo_dir` to the checkout hashee is imported from. Data files are hashed first, so a missing
    one fails before anything slower runs."""
    data = hash_data_files(data_files)
    repo_dir = Path(repo_dir) if repo_dir is not None else default_repo_dir()
    lock_file = Path(lock_file) if lock_file is not None else repo_dir / LOCK_FILE_NAME
    has_lock = lock_file.is_file()
    pins = locked_versions(lock_file) if has_lock else {}
    names = dict.fromkeys([*pins, *KEY_PACKAGES, PROJECT_DISTRIBUTION])
    packages = {name: installed_version(name) for name in names}
    git = git_state(repo_dir)
    return {
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "lock_file": _shown_path(lock_file, repo_dir),
        "lock_sha256": sha256_file(lock_file) if has_lock else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        # installed versions the lock file's pins do not accept (empty: the environment is the locked one)
        "lock_mismatches": {name: {"locked": pin, "installed": packages[name]}
                            for name, pin in pins.items() if not satisfies_pin(packages[name], pin)},
        **torch_environment(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "data": data,
        "config": config if config is not None else {},
    }


def _shown_path(path: Path, repo_dir: Path) -> str:
    """`path` relative to the checkout when inside it (a record that is the same on every machine), else as given."""
    try:
        return path.resolve().relative_to(repo_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def write(path, record: dict) -> Path:
    """Write the record as JSON: to a temporary file beside `path`, renamed onto it when complete."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2, default=str)
        handle.write("\n")
    return Path(path)


def table_note(tables_dir) -> list[str]:
    """The caption line naming the provenance of the tables in `tables_dir`: the workflow writes
    results/<config>/provenance.json beside results/<config>/tables/. Empty when there is none
    (tables written outside the workflow), so a caption never names a file that does not exist."""
    path = Path(os.path.normpath(os.path.join(tables_dir or ".", os.pardir, PROVENANCE_FILE_NAME)))
    return [f"Provenance: {path}"] if path.is_file() else []


__all__ = ["KEY_PACKAGES", "LOCK_FILE_NAME", "PROVENANCE_FILE_NAME", "collect", "cpu_model", "git_state",
           "hash_data_files", "locked_versions", "parse_config_json", "satisfies_pin", "sha256_file", "table_note",
           "write"]
