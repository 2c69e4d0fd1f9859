"""GPU slots for local Snakemake runs: run one command on one free GPU.

Snakemake counts `resources: gpu=1` but does not say *which* GPU a job gets, so GPU rules run
their command through this allocator:

    python workflow/scripts/gpu_slots.py --slots N --lock-dir DIR -- CMD ARGS...

Slot k is the lock file `DIR/slot<k>.lock`, held with `fcntl.flock` while CMD runs (the kernel
drops the lock when the process dies, so a killed job never leaves a slot taken). The first free
slot wins; when all are busy it polls until one frees. CMD runs with CUDA_VISIBLE_DEVICES=<k> and
its exit code is returned. With `--slots 0` CMD simply runs (CPU, or a GPU assigned by a scheduler
such as SLURM). If CUDA_VISIBLE_DEVICES is already set (e.g. `2,3`), slots index into that list and
the lock files are named after those devices (`slot2.lock`, `slot3.lock`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


def devices(slots: int, visible: str | None = None) -> list[str]:
    """Device ids of `slots` slots: 0..slots-1, or the first `slots` entries of a set
    CUDA_VISIBLE_DEVICES (never more than it lists)."""
    if slots < 0:
        raise ValueError(f"--slots must be >= 0, got {slots}")
    if visible is None:
        return [str(k) for k in range(slots)]
    listed = [d.strip() for d in visible.split(",") if d.strip()]
    return listed[:slots]


def _lock_name(device: str) -> str:
    return "slot" + re.sub(r"[^A-Za-z0-9_.-]", "_", device) + ".lock"


def try_acquire(lock_dir: Path, device_ids: Sequence[str]):
    """Lock the first free slot without blocking: (device id, open lock file) or None."""
    for device in device_ids:
        handle = open(lock_dir / _lock_name(device), "a+")  # stays open (locked) while CMD runs
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return device, handle
    return None


@contextlib.contextmanager
def gpu_slot(slots: int, lock_dir: str | os.PathLike, poll: float = 1.0,
             visible: str | None = None) -> Iterator[str]:
    """Hold one free slot for the duration of the block; yields its device id."""
    device_ids = devices(slots, visible)
    if not device_ids:
        raise ValueError("no GPU slot to take: --slots is 0 or CUDA_VISIBLE_DEVICES lists no device")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while (got := try_acquire(lock_dir, device_ids)) is None:
        if not waited:
            print(f"gpu_slots: all {len(device_ids)} slot(s) in {lock_dir} busy; waiting", file=sys.stderr,
                  flush=True)
            waited = True
        time.sleep(poll)
    device, handle = got
    try:
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")  # who holds it, for a curious reader
        handle.flush()
        yield device
    finally:
        handle.close()  # closing the file releases the flock


def _run(cmd: Sequence[str], env: dict[str, str]) -> int:
    """Run CMD, forwarding SIGTERM/SIGINT to it; its exit code (128+n when killed by signal n)."""
    proc = subprocess.Popen(list(cmd), env=env)

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 - code if code < 0 else code


def run(cmd: Sequence[str], slots: int, lock_dir: str | os.PathLike, poll: float = 1.0) -> int:
    env = dict(os.environ)
    if slots == 0:
        return _run(cmd, env)
    with gpu_slot(slots, lock_dir, poll, env.get("CUDA_VISIBLE_DEVICES")) as device:
        env["CUDA_VISIBLE_DEVICES"] = device
        return _run(cmd, env)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python workflow/scripts/gpu_slots.py",
        description="Run CMD on a free GPU slot (CUDA_VISIBLE_DEVICES=<slot>); --slots 0 runs it as is.",
    )
    parser.add_argument("--slots", type=int, required=True, help="number of GPU slots (0: no allocation)")
    parser.add_argument("--lock-dir", default=".gpu-locks", help="folder of the slot<k>.lock files")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between tries when all slots are busy")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given (expected: -- CMD ARGS...)")
    if args.slots < 0:
        parser.error(f"--slots must be >= 0, got {args.slots}")
    try:
        return run(cmd, args.slots, args.lock_dir, args.poll)
    except FileNotFoundError as err:
        print(f"gpu_slots: cannot run {cmd[0]!r}: {err.strerror}", file=sys.stderr)
        return 127
    except ValueError as err:
        print(f"gpu_slots: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
