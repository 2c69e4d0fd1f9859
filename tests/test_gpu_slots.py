"""workflow/scripts/gpu_slots.py with fake slots on CPU: lock files stand in for GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from workflow_scripts import SCRIPTS, load

gpu_slots = load("gpu_slots")

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60.0

# A holder records the CUDA_VISIBLE_DEVICES it got, then waits until the test releases it.
HOLDER = """
import os, sys, time
from pathlib import Path
started, release = Path(sys.argv[1]), Path(sys.argv[2])
started.write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
while not release.exists():
    time.sleep(0.02)
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def _allocator(slots, lock_dir, cmd):
    return [sys.executable, str(SCRIPTS / "gpu_slots.py"), "--slots", str(slots), "--lock-dir", str(lock_dir),
            "--poll", "0.05", "--", *cmd]


def _start_holder(tmp_path, name, slots=2, **env):
    started, release = tmp_path / f"started_{name}", tmp_path / f"release_{name}"
    cmd = _allocator(slots, tmp_path / "locks", [sys.executable, "-c", HOLDER, str(started), str(release)])
    proc = subprocess.Popen(cmd, env=_env(**env), cwd=ROOT)
    return proc, started, release


def _wait_for(path: Path, procs=()):
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        for proc in procs:
            assert proc.poll() is None, f"allocator exited early with {proc.returncode}"
        assert time.monotonic() < deadline, f"timed out waiting for {path.name}"
        time.sleep(0.02)
    return path.read_text()


def test_concurrent_holders_get_distinct_slots_and_a_third_waits(tmp_path):
    a, started_a, release_a = _start_holder(tmp_path, "a")
    b, started_b, release_b = _start_holder(tmp_path, "b")
    procs = [a, b]
    try:
        got = {_wait_for(started_a, procs), _wait_for(started_b, procs)}
        assert got == {"0", "1"}

        c, started_c, release_c = _start_holder(tmp_path, "c")
        procs.append(c)
        time.sleep(1.0)  # many poll rounds: both slots are held, so C must not have started
        assert not started_c.exists()
        assert c.poll() is None

        release_a.touch()
        assert a.wait(TIMEOUT) == 0
        assert _wait_for(started_c, [c]) == started_a.read_text()  # C took the slot A freed

        release_b.touch()
        release_c.touch()
        assert b.wait(TIMEOUT) == 0
        assert c.wait(TIMEOUT) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("slots", [0, 1])
def test_exit_code_passes_through(tmp_path, slots):
    cmd = _allocator(slots, tmp_path / "locks", [sys.executable, "-c", "import sys; sys.exit(7)"])
    assert subprocess.run(cmd, env=_env(), cwd=ROOT, timeout=TIMEOUT).returncode == 7


def test_zero_slots_runs_command_unchanged(tmp_path):
    probe = [sys.executable, "-c", "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>'))"]
    out = subprocess.run(_allocator(0, tmp_path / "locks", probe), env=_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0
    assert out.stdout.strip() == "<unset>"
    assert not (tmp_path / "locks").exists()


def test_slots_index_into_a_set_cuda_visible_devices(tmp_path):
    a, started_a, release_a = _start_holder(tmp_path, "a", CUDA_VISIBLE_DEVICES="5,7")
    b, started_b, release_b = _start_holder(tmp_path, "b", CUDA_VISIBLE_DEVICES="5,7")
    try:
        assert {_wait_for(started_a, [a, b]), _wait_for(started_b, [a, b])} == {"5", "7"}
        assert {p.name for p in (tmp_path / "locks").iterdir()} == {"slot5.lock", "slot7.lock"}
    finally:
        release_a.touch()
        release_b.touch()
        assert a.wait(TIMEOUT) == 0
        assert b.wait(TIMEOUT) == 0


def test_devices():
    assert gpu_slots.devices(3) == ["0", "1", "2"]
    assert gpu_slots.devices(0) == []
    assert gpu_slots.devices(2, "3,4,5") == ["3", "4"]
    assert gpu_slots.devices(4, "3") == ["3"]  # never more slots than visible devices


def test_in_process_slot_is_released(tmp_path):
    with gpu_slots.gpu_slot(1, tmp_path, poll=0.01) as device:
        assert device == "0"
        assert gpu_slots.try_acquire(tmp_path, ["0"]) is None  # held
    got = gpu_slots.try_acquire(tmp_path, ["0"])
    assert got is not None
    got[1].close()


def test_missing_command_is_exit_127(tmp_path):
    cmd = _allocator(0, tmp_path / "locks", ["hashee-no-such-command-xyz"])
    assert subprocess.run(cmd, env=_env(), cwd=ROOT, timeout=TIMEOUT, capture_output=True).returncode == 127
