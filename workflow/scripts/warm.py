"""Warm start for short `hashee` jobs: a server that has imported the heavy libraries once forks
one child per command.

A fresh Python process spends ~9 CPU-s starting and importing torch, torch._dynamo (torch.optim
imports it), transformers and datasets; over the 92 jobs of the default DAG (one train job per task x
method x seed) that is ~14 minutes of CPU, ~4 minutes of the default run's wall clock on 2 cores.
With `warm_start: true` the workflow puts
warm-bin/ (beside this file) first on PATH, and then a job's

    hashee train --task SST-2 ...          (= python workflow/scripts/warm.py -- train --task SST-2 ...)

hands the command to a server (started on first use, one per Python environment and
import-relevant environment variables) that forks a child to run `hashee.cli.run(ARGS)` with the
client's stdin/stdout/stderr, working directory and environment. Inside a SLURM job
(SLURM_JOB_ID set) commands always run directly. The client waits and exits with
the child's status; SIGTERM/SIGINT/SIGHUP to the client are forwarded to the child, and a client
that vanishes gets its child killed. Children die with the server (PR_SET_PDEATHSIG), so a killed
server never leaves a job writing outputs that Snakemake already gave up on.

Each child is a fresh copy of a process that has only *imported* libraries (no torch op, no
tokenizer call, no CUDA), so it behaves as a new process would: the CLI seeds every RNG it uses,
threads are set from the client's OMP_NUM_THREADS, and hashee's own modules are imported in the
child (edits to the code take effect at once). The server exits after `HASHEE_WARM_IDLE` seconds
(default 60) without work, or when `--stop` asks it to (it finishes running children first).

Snakemake's `benchmark:` files measure the client, which only waits; the child's real wall and CPU
time end the job's log (a `hashee.warm:` line). Linux only: elsewhere, or with HASHEE_WARM=0 when
called as `python workflow/scripts/warm.py`, the command runs directly. The library never imports
this launcher; it is a workflow helper.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# Imported by the server before it forks anything: what `hashee train` (both studies)/`difficulty-run`
# and the table steps import, minus hashee itself (imported per child, so edits are seen).
PRELOAD = (
    "numpy", "torch", "torch._dynamo", "torch.optim", "transformers", "transformers.models.bert.modeling_bert",
    "transformers.models.bart.modeling_bart", "tokenizers", "safetensors.torch", "datasets", "pandas",
    "scipy.stats", "sklearn.metrics", "fvcore.nn", "tqdm", "rouge_score.rouge_scorer", "tabulate", "matplotlib",
)
# Environment variables read at import time by the preloaded libraries (cache paths, offline
# switches, allocator and threading defaults): clients differing in these get different servers.
IMPORT_ENV_PREFIXES = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "DATASETS_", "TORCH", "PYTORCH_", "TOKENIZERS_",
                       "XDG_CACHE_HOME", "PYTHON", "LD_", "KMP_", "MKL_", "OMP_", "MPLBACKEND", "MPLCONFIGDIR")
PER_JOB_ENV = {"OMP_NUM_THREADS", "MKL_NUM_THREADS"}  # applied in each child, not at import
DEFAULT_IDLE = 60.0
START_TIMEOUT = 180.0  # seconds a client waits for a new server's imports (a loaded 2-core machine: ~30)
KILL_GRACE = 10.0  # seconds between forwarding SIGTERM and SIGKILL when the client has gone
_HEADER = struct.Struct("!I")


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


def enabled() -> bool:
    # Not inside a SLURM job: a server it started would be killed with that job, and with it the
    # children of other jobs on the node.
    return supported() and os.environ.get("HASHEE_WARM", "1") != "0" and "SLURM_JOB_ID" not in os.environ


def server_key(env=None) -> str:
    """Which server a client may use: same environment (venv), Python, hashee checkout and import-time env."""
    env = os.environ if env is None else env
    relevant = sorted((k, v) for k, v in env.items()
                      if k.startswith(IMPORT_ENV_PREFIXES) and k not in PER_JOB_ENV)
    text = json.dumps([sys.prefix, sys.version, str(Path(__file__).resolve().parent), relevant])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def socket_path(env=None) -> Path:
    env = os.environ if env is None else env
    if env.get("HASHEE_WARM_SOCKET"):
        return Path(env["HASHEE_WARM_SOCKET"])
    base = Path(env.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"hashee-warm-{os.getuid()}"
    return base / f"{server_key(env)}.sock"


def _private_dir(path: Path) -> None:
    """The socket's folder: created 0700; refused if someone else owns it (they could run our jobs)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to another user")


# ------------------------------------------------------------------------------------- messages
def _send_json(sock: socket.socket, message: dict, fds: Sequence[int] = ()) -> None:
    body = json.dumps(message).encode()
    data = _HEADER.pack(len(body)) + body
    if fds:
        sent = socket.send_fds(sock, [data], list(fds))
        data = data[sent:]
    if data:
        sock.sendall(data)


def _recv_exact(sock: socket.socket, size: int, first: bytes = b"") -> bytes | None:
    data = first
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _recv_json(sock: socket.socket, max_fds: int = 0):
    """One message (and up to `max_fds` passed descriptors); (None, []) when the peer closed."""
    fds: list[int] = []
    if max_fds:
        first, fds, _flags, _addr = socket.recv_fds(sock, 65536, max_fds)
        if not first:
            return None, fds
    else:
        first = b""
    head = _recv_exact(sock, _HEADER.size, first[:_HEADER.size])
    if head is None:
        return None, fds
    (size,) = _HEADER.unpack(head)
    body = _recv_exact(sock, size, first[_HEADER.size:])
    return (None if body is None else json.loads(body)), fds


# ------------------------------------------------------------------------------------- server
def _preload() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # an optional extra missing: the child imports what it needs
            importlib.import_module(name)


def _die_with_parent(parent: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the server died before prctl took effect
        os._exit(1)


def _child(request: dict, fds: list[int], server_pid: int, close: Sequence[socket.socket]) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        for sock in close:
            sock.close()
        os.setsid()  # its own process group: a kill reaches anything it starts
        _die_with_parent(server_pid)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["hashee", *request["argv"]]
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.reconfigure(line_buffering=stream.isatty())
        _fresh_process_state(request["env"])
        from hashee.cli import run

        code = run(request["argv"])
    except SystemExit as err:  # argparse: usage errors exit 2, --help exits 0
        if isinstance(err.code, str):
            print(err.code, file=sys.stderr)
            code = 1
        else:
            code = err.code or 0
    except BaseException:  # noqa: BLE001 -- report anything, as the interpreter would, then exit 1
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(int(code) & 0xFF)


def _fresh_process_state(env: dict) -> None:
    """What a new process would start with: its own numpy entropy, the client's thread count."""
    import numpy as np
    import torch

    np.random.seed()  # numpy's global RNG was seeded once, in the server
    threads = env.get("OMP_NUM_THREADS") or env.get("MKL_NUM_THREADS")
    if threads and threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    else:
        torch.set_num_threads(_DEFAULT_THREADS)


_DEFAULT_THREADS = 1  # set in serve(): torch's own default in a process started without OMP_NUM_THREADS


class _Job:
    def __init__(self, conn: socket.socket, pid: int):
        self.conn, self.pid = conn, pid
        self.started = time.monotonic()
        self.kill_at: float | None = None


def _kill(job: _Job, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(job.pid, sig)


def serve(path: Path, idle: float) -> int:
    global _DEFAULT_THREADS
    _preload()
    import torch

    _DEFAULT_THREADS = torch.get_num_threads()
    _private_dir(path.parent)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a dead server's socket (the client holds the start lock, so no live one)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_umask)
    listener.listen(64)
    inode = path.stat().st_ino
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    jobs: dict[int, _Job] = {}
    stopping = False
    last_busy = time.monotonic()
    print(f"hashee.warm server {os.getpid()}: listening on {path} (idle timeout {idle:g} s)", flush=True)

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def close_listener():
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(listener)
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_ino == inode:  # still ours, not a newer server's
                path.unlink()

    try:
        while True:
            if stopping and listener.fileno() >= 0:
                close_listener()
            if listener.fileno() < 0 and not jobs:
                return 0
            if not jobs and time.monotonic() - last_busy > idle:
                close_listener()
                return 0
            for key, _ in selector.select(timeout=0.2):
                if key.data is None:
                    conn, _addr = listener.accept()
                    request, fds = _accept(conn)
                    if request is not None and request.get("stop"):
                        stopping = True
                        with contextlib.suppress(OSError):
                            _send_json(conn, {"stopping": True})
                        conn.close()
                    elif request is not None:
                        job = _start(conn, request, fds, listener, jobs)
                        jobs[job.pid] = job
                        selector.register(conn, selectors.EVENT_READ, job)
                else:
                    _client_message(key.data)
            _reap(jobs, selector)
            if jobs:
                last_busy = time.monotonic()
    finally:
        close_listener()
        for job in jobs.values():
            _kill(job, signal.SIGKILL)


def _accept(conn: socket.socket):
    """The request on a new connection: (message, passed descriptors), or (None, []) if unusable."""
    conn.settimeout(10)
    try:
        request, fds = _recv_json(conn, max_fds=3)
    except (OSError, ValueError):
        request, fds = None, []
    usable = request is not None and (request.get("stop") or len(fds) == 3)
    if not usable:
        for fd in fds:
            os.close(fd)
        conn.close()
        return None, []
    conn.settimeout(None)
    return request, fds


def _start(conn: socket.socket, request: dict, fds: list[int], listener: socket.socket,
           jobs: dict[int, _Job]) -> _Job:
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        _child(request, fds, os.getppid(), [listener, conn, *(j.conn for j in jobs.values())])
    for fd in fds:
        os.close(fd)
    with contextlib.suppress(OSError):  # a client gone already: the next select sees EOF, kills the child
        _send_json(conn, {"pid": pid})
    print(f"pid {pid}: hashee {' '.join(request['argv'][:1])} (cwd {request['cwd']})", flush=True)
    return _Job(conn, pid)


def _client_message(job: _Job) -> None:
    """A forwarded signal, or EOF: the client is gone (killed), so the child goes too."""
    try:
        message, _ = _recv_json(job.conn)
    except (OSError, ValueError):
        message = None
    if message is None:
        _kill(job, signal.SIGTERM)
        job.kill_at = job.kill_at or time.monotonic() + KILL_GRACE
    elif "signal" in message:
        _kill(job, int(message["signal"]))


def _reap(jobs: dict[int, _Job], selector) -> None:
    now = time.monotonic()
    for pid, job in list(jobs.items()):
        if job.kill_at is not None and now > job.kill_at:
            _kill(job, signal.SIGKILL)
        try:
            done, status, usage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            done, status, usage = pid, 1 << 8, None
        if done == 0:
            continue
        del jobs[pid]
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(job.conn)
        cpu = usage.ru_utime + usage.ru_stime if usage else 0.0
        with contextlib.suppress(OSError):
            _send_json(job.conn, {"status": status, "wall": now - job.started, "cpu": cpu,
                                  "max_rss_mb": (usage.ru_maxrss / 1024) if usage else 0.0})
        job.conn.close()
        print(f"pid {pid}: exit status {status}, {now - job.started:.1f} s", flush=True)


# ------------------------------------------------------------------------------------- client
def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PER_JOB_ENV and k != "CUDA_VISIBLE_DEVICES"}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def connect_or_start(path: Path, idle: float, timeout: float = START_TIMEOUT) -> socket.socket | None:
    """A connection to the server at `path`, starting one if none answers (one starter at a time)."""
    if (sock := _connect(path)) is not None:
        return sock
    _private_dir(path.parent)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent clients: the first starts it, the rest wait here
        if (sock := _connect(path)) is not None:
            return sock
        with open(path.with_suffix(".log"), "a") as log:
            server = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve", "--socket", str(path), "--idle", str(idle)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env=_server_env(), cwd="/")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (sock := _connect(path)) is not None:
                return sock
            if server.poll() is not None:
                return None
            time.sleep(0.05)
        return None


def run(argv: Sequence[str], idle: float | None = None) -> int:
    """Run `hashee ARGV` in a warm child; its exit status (128+n if killed by signal n)."""
    if not enabled():
        return _run_directly(argv)
    idle = float(os.environ.get("HASHEE_WARM_IDLE", DEFAULT_IDLE)) if idle is None else idle
    path = socket_path()
    request = {"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}
    for _attempt in range(3):  # a server that was just exiting on its idle timeout closes on us
        try:
            sock = connect_or_start(path, idle)
        except OSError as err:
            print(f"hashee.warm: cannot start a server ({err}); running directly", file=sys.stderr)
            sock = None
        if sock is None:
            print(f"hashee.warm: no server answered at {path} (its log: {path.with_suffix('.log')}); "
                  "running directly", file=sys.stderr)
            return _run_directly(argv)
        with sock:
            try:
                _send_json(sock, request, fds=(0, 1, 2))
                started, _ = _recv_json(sock)
            except OSError:
                started = None
            if started is None:
                continue
            return _wait(sock, started["pid"], argv)
    print("hashee.warm: the server kept closing the connection; running directly", file=sys.stderr)
    return _run_directly(argv)


def _wait(sock: socket.socket, pid: int, argv: Sequence[str]) -> int:
    def forward(signum, _frame):
        with contextlib.suppress(OSError):
            _send_json(sock, {"signal": signum})

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        done, _ = _recv_json(sock)  # a forwarded signal interrupts recv, which Python then retries (PEP 475)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if done is None:
        print(f"hashee.warm: the server went away while pid {pid} ran `hashee {' '.join(argv[:1])}`",
              file=sys.stderr)
        return 1
    status = done["status"]
    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code
    print(f"hashee.warm: `hashee {' '.join(argv[:1])}` ran in warm child {pid}: exit {code}, "
          f"{done['wall']:.1f} s wall, {done['cpu']:.1f} s CPU, {done['max_rss_mb']:.0f} MB max RSS",
          file=sys.stderr, flush=True)
    return code


def _run_directly(argv: Sequence[str]) -> int:
    from hashee.cli import run as run_cli

    return run_cli(list(argv))


def stop(path: Path) -> bool:
    """Ask the server at `path` to stop taking work and exit once its running children finish."""
    sock = _connect(path)
    if sock is None:
        return False
    with sock:
        _send_json(sock, {"stop": True})
        with contextlib.suppress(OSError, ValueError):
            _recv_json(sock)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:
        return run(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python workflow/scripts/warm.py",
        description="Run `hashee ARGS` in a child forked from a server that has already imported torch, "
                    "transformers and datasets (started on first use, exits when idle).",
        epilog="usage for jobs: python workflow/scripts/warm.py -- ARGS   (ARGS as for `hashee`)")
    parser.add_argument("--serve", action="store_true", help="run the server (started by the client itself)")
    parser.add_argument("--stop", action="store_true",
                        help="ask this environment's server to exit once its running commands finish")
    parser.add_argument("--socket", type=Path, default=None, help="socket path (default: per environment)")
    parser.add_argument("--idle", type=float, default=None, help="server: exit after this many idle seconds")
    args = parser.parse_args(argv)
    path = args.socket or socket_path()
    idle = args.idle if args.idle is not None else float(os.environ.get("HASHEE_WARM_IDLE", DEFAULT_IDLE))
    if args.serve:
        code = serve(path, idle)
        sys.stdout.flush()
        os._exit(code)  # skip tearing down torch & co. (seconds); the socket is already gone
    if args.stop:
        stopped = supported() and stop(path)
        print(f"hashee.warm: {'asked the server to stop' if stopped else 'no server running'} ({path})")
        return 0
    parser.error("nothing to do: give -- ARGS, --stop or --serve")
    return 2


if __name__ == "__main__":
    sys.exit(main())
