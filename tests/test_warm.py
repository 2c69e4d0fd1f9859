"""workflow/scripts/warm.py (the warm launcher): commands run in children of a pre-imported server behave like `hashee ARGS` run
directly (output, exit status, working directory, threads), and kills reach the child."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from workflow_scripts import SCRIPTS, load

warm = load("warm")
WARM = str(SCRIPTS / "warm.py")

pytestmark = pytest.mark.skipif(not warm.supported(), reason="warm start needs Linux (fork, SCM_RIGHTS)")


def _env(sock: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "HASHEE_WARM", "SLURM_JOB_ID")}
    env.update(HASHEE_WARM_SOCKET=str(sock), HASHEE_WARM_IDLE="120", **extra)
    return env


def _client(sock: Path, *args: str, cwd=None, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, WARM, "--", *args], env=_env(sock, **env), cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _stop(sock: Path) -> None:
    subprocess.run([sys.executable, WARM, "--stop"], env=_env(sock), capture_output=True, timeout=60)
    deadline = time.monotonic() + 30
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes (the server reaps it on its next poll)
    status = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0] if Path(f"/proc/{pid}").exists() else "X"
    return status not in ("Z", "X")


def _started_pids(sock: Path, verb: str) -> list[int]:
    log = sock.with_suffix(".log").read_text()
    return [int(m) for m in re.findall(rf"^pid (\d+): hashee {verb} ", log, flags=re.M)]


@pytest.fixture(scope="module")
def sock(tmp_path_factory):
    path = tmp_path_factory.mktemp("warm") / "s.sock"
    yield path
    _stop(path)


def test_child_sees_client_cwd_threads_and_streams(sock, tmp_path):
    one = _client(sock, "info", "--json", cwd=tmp_path, OMP_NUM_THREADS="1")
    two = _client(sock, "info", "--json", cwd=tmp_path, OMP_NUM_THREADS="2")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    info_one, info_two = json.loads(one.stdout), json.loads(two.stdout)
    assert info_one["cwd"] == info_two["cwd"] == str(tmp_path)
    assert (info_one["threads"], info_two["threads"]) == (1, 2)
    assert info_one["pid"] != info_two["pid"]  # a fresh child per command
    # the children were forked: their parent is the server, not the client
    assert info_one["pid"] in _started_pids(sock, "info")
    assert "ran in warm child" in one.stderr


def test_exit_status_and_errors_match_a_direct_run(sock):
    warm_run = _client(sock, "no-such-verb")
    direct = subprocess.run([sys.executable, "-m", "hashee.cli", "no-such-verb"], capture_output=True, text=True)
    assert warm_run.returncode == direct.returncode == 2
    assert direct.stderr.strip().splitlines()[-1] in warm_run.stderr


def test_relative_outputs_land_in_the_client_cwd(sock, tmp_path):
    result = _client(sock, "demo-data", "elue", "--size", "tiny", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elue" / "SST-2" / "train.tsv").is_file()


@pytest.fixture(scope="module")
def endless_train(tmp_path_factory):
    """argv of a command that runs until killed: 1000 epochs on tiny data."""
    from hashee.measure.demo_data import write_demo_data

    root = tmp_path_factory.mktemp("endless")
    data = write_demo_data(root / "data", size="tiny")

    def argv(out: Path) -> list[str]:
        return ["train", "--task", "SST-2", "--data-dir", str(data), "--method", "static", "--setting", "layers=1",
                "--epochs", "1000", "--batch-size", "4", "--max-length", "16", "--checkpoint-every", "100000",
                "--workdir", str(out / "work"), "--out", str(out / "model"), "--quiet"]
    return argv


def test_sigterm_to_the_client_reaches_the_child(sock, tmp_path, endless_train):
    before = set(_started_pids(sock, "train")) if sock.with_suffix(".log").exists() else set()
    client = subprocess.Popen([sys.executable, WARM, "--", *endless_train(tmp_path)], env=_env(sock),
                              stderr=subprocess.PIPE, text=True)
    child = _wait_for_child(sock, "train", before)
    client.send_signal(signal.SIGTERM)
    assert client.wait(timeout=60) == 128 + signal.SIGTERM
    assert not _alive(child)
    assert not (tmp_path / "model").exists()


def test_a_vanished_client_gets_its_child_killed(sock, tmp_path, endless_train):
    before = set(_started_pids(sock, "train")) if sock.with_suffix(".log").exists() else set()
    client = subprocess.Popen([sys.executable, WARM, "--", *endless_train(tmp_path)], env=_env(sock),
                              stderr=subprocess.DEVNULL)
    child = _wait_for_child(sock, "train", before)
    client.kill()  # SIGKILL: no chance to forward anything; the server sees the connection close
    client.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)
    assert not (tmp_path / "model").exists()


def _wait_for_child(sock: Path, verb: str, before: set[int]) -> int:
    """The new child running `verb`, once it has been running for a second (past start-up)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = [pid for pid in _started_pids(sock, verb) if pid not in before] if sock.with_suffix(".log").exists() else []
        if new:
            time.sleep(1.0)
            assert _alive(new[-1]), f"the {verb!r} child ended by itself; see {sock.with_suffix('.log')}"
            return new[-1]
        time.sleep(0.1)
    raise AssertionError(f"no warm child for {verb!r} appeared")


def test_concurrent_first_clients_start_one_server(tmp_path):
    sock = tmp_path / "s.sock"
    try:
        clients = [subprocess.Popen([sys.executable, WARM, "--", "info", "--json"], env=_env(sock),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        outputs = [c.communicate(timeout=300) for c in clients]
        assert [c.returncode for c in clients] == [0, 0, 0], [err for _, err in outputs]
        assert sock.with_suffix(".log").read_text().count("listening on") == 1
    finally:
        _stop(sock)
    assert not sock.exists()  # --stop: the server removed its socket and exited


def test_disabled_runs_directly(tmp_path):
    sock = tmp_path / "s.sock"
    result = _client(sock, "info", "--json", HASHEE_WARM="0")
    assert result.returncode == 0
    assert json.loads(result.stdout)["cwd"] == os.getcwd()
    assert not sock.exists() and "warm child" not in result.stderr


def test_server_key_follows_import_time_environment():
    base = {"PATH": "/usr/bin", "HF_HOME": "/a", "OMP_NUM_THREADS": "1"}
    assert warm.server_key(base) == warm.server_key({**base, "OMP_NUM_THREADS": "2", "PWD": "/x"})
    assert warm.server_key(base) != warm.server_key({**base, "HF_HOME": "/b"})
    assert warm.server_key(base) != warm.server_key({**base, "HF_HUB_OFFLINE": "1"})


def test_hashee_command_goes_warm_with_the_switch(sock, tmp_path):
    """What the workflow does with warm_start: true -- warm-bin/ first on PATH, then plain `hashee ...`."""
    path = os.pathsep.join([str(SCRIPTS / "warm-bin"), str(Path(sys.executable).parent), os.environ["PATH"]])
    result = subprocess.run(["hashee", "info", "--json"], env=_env(sock, PATH=path), cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pid"] in _started_pids(sock, "info")


def test_inside_a_slurm_job_commands_run_directly(tmp_path):
    sock = tmp_path / "s.sock"
    result = _client(sock, "info", "--json", SLURM_JOB_ID="123")
    assert result.returncode == 0, result.stderr
    assert not sock.exists() and "warm child" not in result.stderr


def _outputs(run: Path) -> dict:
    """Everything a train job leaves that must not depend on how it was started."""
    import torch
    from safetensors.torch import load_file

    # hash.pt's bytes name its temporary file, so it is compared by content.
    token_hash = torch.load(run / "model" / "hash.pt", weights_only=True)
    return {"rows.csv": (run / "rows.csv").read_text(),
            "predictions": {p.name: p.read_text() for p in sorted((run / "predictions").iterdir())},
            "meta.json": (run / "model" / "meta.json").read_text(),
            "hash.pt": {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in token_hash.items()},
            "weights": load_file(str(run / "model" / "model.safetensors"))}


def test_warm_train_equals_a_direct_run(sock, tmp_path, tiny_elue):
    """What docs/warm-start.md claims: a job run in a warm child gives the rows, predictions and model of a direct run.
    HashEE with rand-incons and its hash fitted on the spot: training, hash fitting and a random exit draw at
    inference all depend on the RNGs being seeded as in a fresh process."""
    import torch

    def argv(run: Path) -> list[str]:
        return ["train", "--task", "SST-2", "--data-dir", str(tiny_elue), "--method", "hashee",
                "--setting", "hash=rand-incons,layers=2,buckets=2", "--seed", "11", "--epochs", "1",
                "--batch-size", "8", "--max-length", "16", "--freeze-word-embeddings", "--checkpoint-every", "0",
                "--device", "cpu", "--workdir", str(run / "work"), "--out", str(run / "model"),
                "--evaluate-out", str(run / "rows.csv"), "--predictions", str(run / "predictions"), "--quiet"]

    direct = subprocess.run([sys.executable, "-m", "hashee.cli", *argv(tmp_path / "direct")],
                            env=_env(sock, HASHEE_WARM="0", OMP_NUM_THREADS="1"), capture_output=True, text=True,
                            timeout=600)
    assert direct.returncode == 0, direct.stderr[-3000:]
    warm_run = _client(sock, *argv(tmp_path / "warm"), OMP_NUM_THREADS="1")
    assert warm_run.returncode == 0, warm_run.stderr[-3000:]
    assert "ran in warm child" in warm_run.stderr
    expected, got = _outputs(tmp_path / "direct"), _outputs(tmp_path / "warm")
    for key in ("rows.csv", "predictions", "meta.json", "hash.pt"):
        assert got[key] == expected[key], key
    assert got["weights"].keys() == expected["weights"].keys()
    for name, value in expected["weights"].items():
        assert torch.equal(value, got["weights"][name]), name
