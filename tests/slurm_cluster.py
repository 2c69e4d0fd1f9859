"""A single-node SLURM cluster for a test: munged, slurmctld and slurmd from Debian's packages
(munge, slurm-wlm), started in a temporary folder and stopped again.

    with slurm_cluster() as cluster:        # or the `slurm` fixture of tests/test_slurm.py
        subprocess.run(["sbatch", ...], env=cluster.env)

Everything lives in one folder under the system's temp dir: the munge key and socket, slurm.conf,
StateSaveLocation, SlurmdSpoolDir, pid and log files. munged runs as user `munge` with a key made for
this cluster, so it never talks to a system munged; slurmctld and slurmd run as root (slurmd launches the
jobs), in the foreground as children of the test, on free ports. Client commands find the cluster
through SLURM_CONF in `cluster.env`, and through `cluster.bin`, first on that env's PATH: wrappers of the
client commands that set SLURM_CONF themselves. A real cluster keeps its config at /etc/slurm/slurm.conf,
and snakemake-executor-plugin-slurm-jobstep drops SLURM_CONF (with most SLURM_* variables) before the srun
inside each job; the wrappers find this cluster there without writing into /etc. `missing_reason()` says why no cluster can be started here (no
packages, not root); a daemon that does not come up raises `ClusterError` with its log's tail.

The configuration is the smallest that runs jobs without cgroups or a database: linuxproc process
tracking, no task plugin, no accounting (so `sacct` knows nothing: ask `squeue`/`scontrol`), cons_tres
with cores and memory as consumable resources, one node with the machine's CPUs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo", "sacct")
PARTITION = "cpu"
# Finished jobs stay in slurmctld's memory this long, so that squeue (the plugin's status command, as
# there is no accounting) and scontrol still know them when a test asks after a whole run.
MIN_JOB_AGE = 3600


class ClusterError(RuntimeError):
    """A daemon of the test cluster did not start; the message holds the reason and its log's tail."""


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def missing_reason() -> str | None:
    """Why no cluster can be started on this machine, or None."""
    missing = [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]
    if missing:
        return (f"SLURM test cluster: {', '.join(missing)} not found (Debian: apt-get install slurm-wlm munge; "
                ".ci/run does it when it runs as root)")
    if os.geteuid() != 0:
        return "SLURM test cluster: starting slurmd and munged (as user munge) needs root"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "SLURM test cluster: no user 'munge' (installed with Debian's munge package)"
    return None


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def write_config(root: Path, node: str, cpus: int, memory_mb: int) -> Path:
    ctld_port, slurmd_port = _free_ports(2)
    conf = root / "slurm.conf"
    conf.write_text(f"""\
ClusterName=hashee-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root / "munge" / "munge.socket"}
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge={MIN_JOB_AGE}
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


def _start_munged(root: Path) -> subprocess.Popen:
    """munged in the foreground as user munge, with a fresh key; munged insists that its key is the
    munge user's alone and that the socket's folder is executable by all."""
    munge = pwd.getpwnam("munge")
    folder = root / "munge"
    folder.mkdir(mode=0o755)
    os.chown(folder, munge.pw_uid, munge.pw_gid)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chown(key, munge.pw_uid, munge.pw_gid)
    key.chmod(0o400)
    log = root / "log" / "munged.log"
    proc = subprocess.Popen(
        [_which("munged"), "--foreground", f"--key-file={key}", f"--socket={folder / 'munge.socket'}",
         f"--pid-file={folder / 'munged.pid'}", f"--seed-file={folder / 'munged.seed'}", f"--log-file={log}"],
        user=munge.pw_uid, group=munge.pw_gid, extra_groups=[], stdout=subprocess.DEVNULL,
        stderr=open(root / "log" / "munged.stderr", "w"))
    _wait(lambda: (folder / "munge.socket").exists(), proc, "munged", log, timeout=15)
    return proc


def _wait(ready, proc: subprocess.Popen, name: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise ClusterError(f"{name} exited with code {proc.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise ClusterError(f"{name} not ready after {timeout:.0f} s:\n{_tail(log)}")
        time.sleep(0.2)


def node_state(env: dict[str, str], node: str) -> str:
    out = subprocess.run([_which("sinfo"), "-h", "-n", node, "-o", "%T"], env=env, capture_output=True,
                         text=True, timeout=30)
    return out.stdout.strip()


def _stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def _memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


@contextlib.contextmanager
def slurm_cluster(cpus: int | None = None, memory_mb: int | None = None) -> Iterator[SimpleNamespace]:
    """Start the cluster, yield it (conf, env, node, partition, root, pids), then cancel its jobs and stop
    every daemon and remove its folder, whatever happened in between."""
    reason = missing_reason()
    if reason:
        raise ClusterError(reason)
    node = socket.gethostname().split(".")[0]
    cpus = cpus or os.cpu_count() or 1
    memory_mb = memory_mb or _memory_mb() * 3 // 4  # below what slurmd finds, so the node is not drained
    root = Path(tempfile.mkdtemp(prefix="hashee-slurm-"))
    root.chmod(0o755)  # munged (user munge) must reach its folder inside
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir()
    conf = write_config(root, node, cpus, memory_mb)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in CLIENTS:
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF="{conf}" exec "{_which(name)}" "$@"\n')
        wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["SLURM_CONF"] = str(conf)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["munged"] = _start_munged(root)
        for name in ("slurmctld", "slurmd"):
            # -D: in the foreground, a child of the test, stopped by its pid
            procs[name] = subprocess.Popen([_which(name), "-D", "-f", str(conf)], env=env,
                                           stdout=subprocess.DEVNULL, stderr=open(root / "log" / f"{name}.stderr", "w"))
        _wait(lambda: node_state(env, node) == "idle", procs["slurmd"], "slurmd (node idle)",
              root / "log" / "slurmd.log", timeout=60)
        if procs["slurmctld"].poll() is not None:
            raise ClusterError(f"slurmctld exited:\n{_tail(root / 'log' / 'slurmctld.log')}")
        yield SimpleNamespace(root=root, conf=conf, env=env, bin=bin_dir, node=node, partition=PARTITION, cpus=cpus,
                              memory_mb=memory_mb, pids={name: p.pid for name, p in procs.items()})
    finally:
        if "slurmctld" in procs and procs["slurmctld"].poll() is None:
            # no job outlives the cluster: cancel them all, and give slurmd a moment to kill their steps
            subprocess.run([_which("scancel"), "--full", "--user", "root"], env=env, capture_output=True, timeout=30)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and _queue(env):
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            if name in procs:
                _stop(procs[name])
        _reap(root, conf)
        shutil.rmtree(root, ignore_errors=True)


def _reap(root: Path, conf: Path, grace: float = 30) -> None:
    """Wait for the processes that carry the cluster's SLURM_CONF but are not children of the test to end:
    slurmstepd and job steps. On a loaded machine that takes seconds. Those still there after `grace` seconds
    get SIGKILL, each by its pid."""
    deadline = time.monotonic() + grace
    while (left := leftover_processes(root, conf)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left:
        print(f"slurm_cluster: still running {grace:.0f} s after the daemons stopped, killed: {left}")
    for line in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(line.split()[0]), signal.SIGKILL)


def _queue(env: dict[str, str]) -> list[str]:
    out = subprocess.run([_which("squeue"), "-h", "-t", "PENDING,RUNNING,SUSPENDED,COMPLETING", "-o", "%i"],
                         env=env, capture_output=True, text=True, timeout=30)
    return out.stdout.split()


def leftover_processes(root: Path | str, conf: Path | str) -> list[str]:
    """What must be gone once the cluster is stopped: processes whose command line names its folder (the
    daemons; found with pgrep) and processes that carry its SLURM_CONF (slurmstepd and the jobs, which
    slurmd and sbatch --export=ALL hand it down to; found in /proc)."""
    out = subprocess.run(["pgrep", "-a", "-f", str(root)], capture_output=True, text=True)
    found = [line for line in out.stdout.splitlines() if line.strip()]
    marker = f"SLURM_CONF={conf}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name} {cmdline}")
        except OSError:  # gone meanwhile, or a kernel thread
            continue
    return found
