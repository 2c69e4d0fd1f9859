"""Test data stays out of training, and a training job killed with SIGKILL resumes to the same result.

Isolation: `hashee train` (without evaluation) and `hashee fit-hash` run with `test.tsv` and
`test_full.tsv` missing or corrupt, and must neither open them nor produce anything other than what
intact data gives.

Resume: a real `hashee train` process (and, once, the real `snakemake` job) is frozen with SIGSTOP each
time it writes a resume checkpoint, and killed with SIGKILL at a chosen point mid-epoch; the same
command then runs again. Its rows, test predictions, weights and metadata must equal those of an
uninterrupted run, and the rerun must pick up from the checkpoint rather than start over.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TASK = "SST-2"
TEST_FILES = ("test.tsv", "test_full.tsv")

# ------------------------------------------------------------------------------------ isolation

_opened: list[str] | None = None  # paths opened while a watch is on (an audit hook cannot be removed)
_hooked = False


def _record_open(event: str, args) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.fsdecode(args[0]))


def _run_cli_watching_opens(argv: list[str]) -> tuple[int, list[str]]:
    """`hashee ARGV` in this process: (exit status, every file path it opened)."""
    global _opened, _hooked
    from hashee.cli import run

    if not _hooked:  # installed on first use, so merely collecting this file costs other tests nothing
        sys.addaudithook(_record_open)
        _hooked = True
    _opened = []
    try:
        code = run(argv)
        return code, _opened
    finally:
        _opened = None


def _data_dir(tiny_elue: Path, root: Path, damage: str) -> Path:
    """A copy of the task's tiny data with its test files intact, missing or corrupt."""
    folder = root / damage / TASK
    shutil.copytree(Path(tiny_elue) / TASK, folder)
    for name in TEST_FILES:
        if damage == "missing":
            (folder / name).unlink(missing_ok=True)
        elif damage == "corrupt":  # invalid UTF-8, no header: any reader of it fails
            (folder / name).write_bytes(b"\xff\xfe\x00 not a test file\n\x80\x81\n")
    return folder.parent


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def _hash_tables(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def test_training_and_hash_fitting_never_read_test_files(tiny_elue, tmp_path):
    outputs = {}
    for damage in ("intact", "missing", "corrupt"):
        data = _data_dir(tiny_elue, tmp_path / "data", damage)
        out = tmp_path / "out" / damage
        # HashEE without --hash-file fits its hash on the spot: training and hash fitting in one command.
        code, opened = _run_cli_watching_opens([
            "train", "--task", TASK, "--data-dir", str(data), "--method", "hashee",
            "--setting", "hash=mi,layers=2,buckets=2", "--seed", "3", "--epochs", "1", "--batch-size", "8",
            "--max-length", "16", "--freeze-word-embeddings", "--checkpoint-every", "2", "--device", "cpu",
            "--workdir", str(out / "work"), "--out", str(out / "model"), "--quiet"])
        assert code == 0, f"hashee train with {damage} test files"
        fit_code, fit_opened = _run_cli_watching_opens([
            "fit-hash", "--task", TASK, "--data-dir", str(data), "--setting", "hash=frequency,layers=2",
            "--setting-out", str(out / "frequency.pt"), "--setting", "hash=mi,layers=2",
            "--setting-out", str(out / "mi.pt"), "--buckets", "2", "--max-length", "16", "--seed", "3"])
        assert fit_code == 0, f"hashee fit-hash with {damage} test files"
        read = [p for p in opened + fit_opened if Path(p).name in TEST_FILES]
        assert not read, f"test files opened by train / fit-hash: {read}"
        assert any(Path(p).name == "train.tsv" for p in opened + fit_opened)  # the watch does see data reads
        outputs[damage] = (_tensors(out / "model" / "model.safetensors"), _hash_tables(out / "model" / "hash.pt"),
                           _hash_tables(out / "frequency.pt"), _hash_tables(out / "mi.pt"))
    for damage in ("missing", "corrupt"):
        for name, intact, damaged in zip(("weights", "inline hash", "frequency hash", "mi hash"),
                                         outputs["intact"], outputs[damage]):
            assert _same(intact, damaged), f"{name} differ with {damage} test files"


# --------------------------------------------------------------------------------------- resume


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ELUE_DIR", "SNAKEMAKE_PROFILE")}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    return env


def _session_pids(session: int) -> list[int]:
    """Every live process of a session (a job and whatever it started)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[3]) == session and fields[0] not in "ZX":  # fields: state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


def _signal_session(session: int, sig: int) -> None:
    for _ in range(2):  # twice: a process started during the first pass gets it too
        for pid in _session_pids(session):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def _checkpoint_state(resume_file: Path) -> dict:
    saved = torch.load(resume_file, map_location="cpu", weights_only=False, mmap=True)
    return {k: saved["state"][k] for k in ("stage", "epoch", "batch", "step")}


def _position(state: dict) -> tuple[int, int, int]:
    return state["stage"], state["epoch"], state["batch"]


def _stamp(path: Path) -> tuple | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size  # replaced atomically: a new file each time


def _drive(cmd: list[str], resume_file: Path, decide, cwd=None, timeout: float = 600) -> tuple[int | None, dict | None]:
    """Run `cmd` in its own session; at each new resume checkpoint freeze the whole session and ask
    `decide(state)`: 'kill' (SIGKILL everything), 'go on', or 'done' (stop watching, let it finish).
    Returns (exit status or None if killed, the state decided on last)."""
    seen = _stamp(resume_file)  # a checkpoint left by a killed run is not news
    log = tempfile.TemporaryFile("w+")  # not a pipe: a full pipe would stall a chatty job (snakemake) meanwhile
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    last, deadline = None, time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            stamp = _stamp(resume_file)
            if stamp is None or stamp == seen:
                time.sleep(0.005)
                continue
            _signal_session(proc.pid, signal.SIGSTOP)
            seen, last = stamp, _checkpoint_state(resume_file)
            verdict = decide(last)
            if verdict == "kill":
                _signal_session(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
                return None, last
            _signal_session(proc.pid, signal.SIGCONT)
            if verdict == "done":
                break
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        log.seek(0)
        assert proc.returncode == 0, log.read()[-4000:]
        return proc.returncode, last
    finally:
        if proc.poll() is None:
            _signal_session(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _mid_epoch(stage: int, epoch: int, steps_per_epoch: int):
    def decide(state):
        if (state["stage"], state["epoch"]) == (stage, epoch) and 0 < state["batch"] < steps_per_epoch:
            return "kill"
        assert _position(state) < (stage, epoch, steps_per_epoch), \
            f"missed the kill point (stage {stage}, epoch {epoch}, mid-epoch): already at {state}"
        return "go on"
    return decide


def _resumed_from(killed: dict, then=None):
    """Checks that the rerun's first checkpoint lies beyond the one the run was killed after; then
    leaves later checkpoints to `then` (default: stop watching)."""
    first = True

    def decide(state):
        nonlocal first
        if first:
            first = False
            assert _position(state) > _position(killed), f"the rerun started over: {state} after a kill at {killed}"
        return then(state) if then is not None else "done"
    return decide


def _results(run: Path) -> dict:
    model = run / "model"
    return {"rows.csv": (run / "rows.csv").read_text(),
            "predictions": {p.name: p.read_text() for p in sorted((run / "predictions").iterdir())},
            "meta.json": (model / "meta.json").read_text(),
            "weights": _tensors(model / "model.safetensors")}


def _assert_same_results(straight: dict, resumed: dict) -> None:
    for key in ("rows.csv", "predictions", "meta.json"):
        assert resumed[key] == straight[key], key
    assert straight["weights"].keys() == resumed["weights"].keys()
    for name, value in straight["weights"].items():
        assert torch.equal(value, resumed["weights"][name]), name


BATCH_SIZE, EPOCHS = 4, 2  # on the tiny demo data: a dozen steps an epoch, a checkpoint every 2


def _steps_per_epoch(train_file: Path) -> int:
    from hashee.core.data import read_split
    from hashee.core.tasks import get_task

    return -(-len(read_split(get_task(train_file.parent.name), train_file)) // BATCH_SIZE)


def _train_cmd(data: Path, task: str, method: str, setting: str, run: Path) -> list[str]:
    return [sys.executable, "-m", "hashee.cli", "train", "--task", task, "--data-dir", str(data),
            "--method", method, "--setting", setting, "--seed", "5", "--epochs", str(EPOCHS),
            "--batch-size", str(BATCH_SIZE), "--max-length", "16", "--lr", "1e-4", "--freeze-word-embeddings",
            "--checkpoint-every", "2", "--device", "cpu", "--workdir", str(run / "work"), "--out",
            str(run / "model"), "--evaluate-out", str(run / "rows.csv"), "--predictions", str(run / "predictions"),
            "--quiet"]


# Kill points (stage, epoch), each mid-epoch. A kill in a first epoch shows in every later weight. Static runs
# on STS-B, whose correlation dev scores (meta.json's dev history) tell any divergence apart. DeeBERT
# (classification) is killed in the second epoch of its first stage, whose first epoch wins on dev (accuracy
# ties keep the earlier epoch): the resumed run must take those weights from best.pt into the second stage;
# and then in its second stage, which keeps its last weights, so the first stage must not run again.
@pytest.mark.slow
@pytest.mark.parametrize("task,method,setting,kills,best_from_disk", [
    ("STS-B", "static", "layers=2", [(0, 0), (0, 1)], False),
    (TASK, "deebert", "layers=2", [(0, 1), (1, 1)], True),
    # HeadPrune killed after its heads were pruned: the resumed run rebuilds the full model, which the saved
    # state shrinks to the pruned one. Theseus killed mid-replacing: its step count and draws go on.
    ("STS-B", "headprune", "layers=2,speedup=1.2,step=0.5", [(1, 0)], False),
    (TASK, "theseus", "layers=2,student_layers=1,k=0.1", [(1, 1)], False),
])
def test_sigkilled_training_resumes_to_the_uninterrupted_result(tiny_elue, tmp_path, task, method, setting, kills,
                                                                best_from_disk):
    steps_per_epoch = _steps_per_epoch(Path(tiny_elue) / task / "train.tsv")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    code, _ = _drive(_train_cmd(tiny_elue, task, method, setting, straight), straight / "work" / "resume.pt",
                     lambda state: "go on")
    assert code == 0
    if best_from_disk:  # the precondition of the comment above, on the uninterrupted run
        history = json.loads((straight / "model" / "meta.json").read_text())["dev_history"]
        first_stage = [h["dev"] for h in history if h["stage"] == history[0]["stage"]]
        assert first_stage.index(max(first_stage)) < len(first_stage) - 1, \
            f"the last epoch wins on dev ({first_stage}): best.pt is not needed, choose other kill points"

    resume_file = resumed / "work" / "resume.pt"
    cmd = _train_cmd(tiny_elue, task, method, setting, resumed)
    killed = None
    for stage, epoch in kills:
        decide = _mid_epoch(stage, epoch, steps_per_epoch)
        if killed is not None:  # this run must also have picked up where the last one stopped
            decide = _resumed_from(killed, then=decide)
        code, killed = _drive(cmd, resume_file, decide)
        assert code is None and resume_file.exists()
        if (stage, epoch) == (0, 1):
            assert (resumed / "work" / "best.pt").exists()
        assert not (resumed / "rows.csv").exists()
    code, first = _drive(cmd, resume_file, _resumed_from(killed))
    assert code == 0 and first is not None
    _assert_same_results(_results(straight), _results(resumed))


# ---------------------------------------------------------------------------- through snakemake


def _snakemake(*args: str) -> list[str]:
    exe = BIN / "snakemake"
    return [*([str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]),
            "--snakefile", str(ROOT / "Snakefile"), *args]


@pytest.mark.slow
def test_snakemake_rerun_incomplete_resumes_a_sigkilled_train_job(tmp_path):
    """The workflow's own path: the tiny config restricted to one train job (DeeBERT: two stages), the
    whole snakemake session SIGKILLed mid-epoch, then `--unlock` and `--rerun-incomplete`."""
    cfg = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())
    cfg["train"].update(epochs=EPOCHS, batch_size=BATCH_SIZE, checkpoint_every=2)
    cfg["methods"]["deebert"] = ["layers=2"]
    config_file = tmp_path / "tiny_resume.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    run = f"{TASK}/deebert/layers=2/42"
    target = f"results/{cfg['name']}/train/{run}/rows.csv"
    args = [target, "--cores", "1", "--configfile", str(config_file)]
    straight, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir()
    killed_dir.mkdir()
    resume_file = Path("work") / cfg["name"] / run / "resume.pt"

    out = subprocess.run(_snakemake(*args), cwd=straight, env=_env(), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]

    steps_per_epoch = _steps_per_epoch(straight / cfg["data"]["elue_dir"] / TASK / "train.tsv")
    code, killed = _drive(_snakemake(*args), killed_dir / resume_file, _mid_epoch(1, EPOCHS - 1, steps_per_epoch),
                          cwd=killed_dir)
    assert code is None
    unlock = subprocess.run(_snakemake(*args, "--unlock"), cwd=killed_dir, env=_env(), capture_output=True,
                            text=True, timeout=300)
    assert unlock.returncode == 0, unlock.stderr[-4000:]
    code, first = _drive(_snakemake(*args, "--rerun-incomplete"), killed_dir / resume_file, _resumed_from(killed),
                         cwd=killed_dir)
    assert code == 0 and first is not None
    results = Path("results") / cfg["name"] / "train" / run
    _assert_same_results(_results(straight / results), _results(killed_dir / results))


# ------------------------------------------------------------------------------- a full disk

TORCH_SAVE_ON_A_FULL_DISK = "[enforce fail at inline_container.cc:672] . unexpected pos 62848 vs 62742"


@pytest.mark.parametrize("atomic", ["atomic_path", "atomic_dir"])
def test_a_write_that_fails_on_a_full_disk_says_so_in_one_line(tmp_path, monkeypatch, atomic):
    """torch.save on a full disk fails with TORCH_SAVE_ON_A_FULL_DISK: the user is told the disk is full."""
    import hashee.core.io as io
    from hashee.core.errors import HasheeError

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda _: usage._replace(free=2**20))
    target = tmp_path / "run" / "resume.pt"
    with pytest.raises(HasheeError) as raised:
        with getattr(io, atomic)(target):
            raise RuntimeError(TORCH_SAVE_ON_A_FULL_DISK)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{target}: not written, its disk is full (1.0 MiB free)")
    assert "unexpected pos" in message and isinstance(raised.value.__cause__, RuntimeError)
    assert list((tmp_path / "run").iterdir()) == []  # nothing half-written, no temporary left


def test_a_write_that_fails_with_room_on_the_disk_keeps_its_own_error(tmp_path, monkeypatch):
    import hashee.core.io as io

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda _: usage._replace(free=4 * io.DISK_FULL_BYTES))
    with pytest.raises(RuntimeError, match="unexpected pos"):
        with io.atomic_path(tmp_path / "resume.pt"):
            raise RuntimeError(TORCH_SAVE_ON_A_FULL_DISK)


# ------------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_atomic_writes_get_the_mode_a_plain_write_gets(tmp_path, umask):
    """mkstemp/mkdtemp make 0600/0700 temporaries; renamed onto results/, they would hide every result from
    the user's group on a shared filesystem. Written atomically, a file or folder honours the umask."""
    import hashee.core.io as io

    previous = os.umask(umask)
    try:
        plain_file = tmp_path / "plain.txt"
        plain_file.write_text("x")
        (tmp_path / "plain_dir").mkdir()
        io.write_text_atomic(tmp_path / "text.txt", "x")
        with io.atomic_path(tmp_path / "model.pt") as tmp:
            torch.save({"w": torch.zeros(1)}, tmp)
        with io.atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "inside.txt").write_text("x")
    finally:
        os.umask(previous)
    mode = lambda name: (tmp_path / name).stat().st_mode & 0o777  # noqa: E731
    assert mode("plain.txt") == 0o666 & ~umask and mode("plain_dir") == 0o777 & ~umask
    assert (mode("text.txt"), mode("model.pt"), mode("folder/inside.txt")) == (mode("plain.txt"),) * 3
    assert mode("folder") == mode("plain_dir")
