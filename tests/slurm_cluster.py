"""A single-node SLURM cluster for a test: munged, slurmctld and slurmd from Debian's packages
(munge, slurm-wlm), started in a temporary folder and stopped again.

    with slurm_cluster() as cluster:        # or the `slurm` fixture of tests/conftest.py
        subprocess.run(["sbatch", ...], env=cluster.env)

Run as a script, it runs a Snakemake command through such a cluster (as root; docs/paper-run.md):

    .venv/bin/python tests/slurm_cluster.py all --configfile config/paper.yaml config/rehearsal.yaml

starts the cluster, plans the command (a dry run), writes `cluster_profile` for the rules it plans, runs
Snakemake with `--profile` in the repository, then asks slurmctld about every job Snakemake submitted and
prints what it knows (`make rehearsal-slurm` is the rehearsal through it).

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

import argparse
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import yaml
from snakemake_helpers import BIN, ROOT, job_stats, snakemake_cmd

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo", "sacct")
PARTITION = "cpu"
# Finished jobs stay in slurmctld's memory this long, so that squeue (the plugin's status command, as
# there is no accounting) and scontrol still know them when a test asks after a whole run.
MIN_JOB_AGE = 3600
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
MEM_MB = 2000  # per job: the real profile's 16-32 GB would let one job at a time onto this machine


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


# --- Snakemake through the cluster: the profile, and what slurmctld knows of its jobs ---

def cluster_profile(folder: Path, partition: str, rules) -> Path:
    """profiles/slurm/config.yaml as it is, but for what a CPU-only test cluster needs: every job on its one
    partition, no GPU (`gpu: 0`, so the plugin asks for none, and no cpus_per_gpu), MEM_MB each; status checks
    every second through squeue (no accounting: sacct knows nothing). GPU jobs declare `gpu=1` in their rule,
    which beats default-resources, so each rule of the DAG gets its own set-resources entry."""
    real = yaml.safe_load(PROFILE.read_text())

    def on_cpu(resources: dict) -> dict:
        mine = {k: v for k, v in resources.items() if k != "cpus_per_gpu"}
        return {**mine, "slurm_partition": partition, "gpu": 0, "mem_mb": MEM_MB}

    profile = dict(real)
    profile["default-resources"] = on_cpu(real["default-resources"])
    profile["set-resources"] = {rule: on_cpu(real["set-resources"].get(rule, {}))
                                for rule in sorted(set(real["set-resources"]) | set(rules))}
    profile.update({"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 1,
                    "seconds-between-status-checks": 1, "slurm-keep-successful-logs": True})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def squeue(env: dict[str, str]) -> list[dict[str, str]]:
    """Every job slurmctld knows (finished ones for MinJobAge): id, state, comment (the plugin's rule_<rule>...)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%k"], env=env, capture_output=True, text=True,
                         timeout=30)
    return [dict(zip(("id", "state", "comment"), line.split("|", 2))) for line in out.stdout.splitlines() if line]


def scontrol_job(job_id: str, env: dict[str, str]) -> dict[str, str]:
    """`scontrol show job -o ID` as a dict ({} if slurmctld does not know the job)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=env, capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0:
        return {}
    return dict(re.findall(r"(\w+)=(\S*)", out.stdout))


def is_rule(comment: str, rule: str) -> bool:
    return comment == f"rule_{rule}" or comment.startswith(f"rule_{rule}_wildcards_")


def snakemake_jobs(log: str) -> dict[str, tuple[str, bool]]:
    """Snakemake's job id -> (rule, local?) from the job headers of its log. Not from the logs of failed jobs that
    it prints (show-failed-logs): a cancelled SLURM job's log holds the job's own header, as a local rule with
    job id 0, which would pass for one of the run's jobs."""
    rule_line = "=" * 80
    log = re.sub(rf"^Logfile .*:\n{rule_line}\n.*?^{rule_line}\n", "", log, flags=re.M | re.S)
    jobs = {}
    for local, rule, body in re.findall(r"^(local)?rule (\w+):\n((?:    .*\n)+)", log, re.M):
        jobid = re.search(r"^    jobid: (\d+)$", body, re.M)
        if jobid:
            jobs[jobid.group(1)] = (rule, bool(local))
    return jobs


def planned_rules(output: str) -> dict[str, int]:
    """rule -> jobs from a dry run's 'Job stats' table ({} when there is nothing to be done)."""
    return job_stats(output) if "Job stats:" in output else {}


def run_through_cluster(snakemake_args: list[str], cwd: Path = ROOT, log_path: Path | None = None) -> int:
    """The Snakemake command `snakemake_args` through a fresh cluster (see the module's docstring); returns
    its exit code, or 1 when a job it submitted did not end COMPLETED in slurmctld's eyes."""
    snakemake = snakemake_cmd()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k != "SNAKEMAKE_PROFILE"}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])  # the venv's snakemake and hashee
    dry = subprocess.run([*snakemake, *snakemake_args, "-n"], cwd=cwd, env=env, capture_output=True, text=True)
    if dry.returncode != 0:
        print(dry.stdout[-3000:] + dry.stderr[-3000:])
        return dry.returncode
    planned = planned_rules(dry.stdout + dry.stderr)
    print(f"planned: {sum(planned.values())} jobs of {len(planned)} rules")
    with slurm_cluster() as cluster:
        profile = cluster_profile(cluster.root / "profile", cluster.partition, planned)
        env.update(SLURM_CONF=cluster.env["SLURM_CONF"], PATH=f"{cluster.bin}{os.pathsep}{env['PATH']}")
        log_path = log_path or cwd / "logs" / "slurm-cluster.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"cluster up ({cluster.cpus} CPUs, partition {cluster.partition}); Snakemake's log: {log_path}")
        start = time.monotonic()
        with open(log_path, "w") as log:
            proc = subprocess.Popen([*snakemake, *snakemake_args, "--profile", str(profile)], cwd=cwd, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for line in proc.stdout:  # all of it to the log; progress and errors to the terminal too
                log.write(line)
                if re.search(r"steps \(\d+%\) done|^Error|error:|^WorkflowError", line):
                    print(line, end="", flush=True)
            code = proc.wait()
        minutes = (time.monotonic() - start) / 60
        text = log_path.read_text()
        submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", text)
        jobs = snakemake_jobs(text)
        states: dict[str, int] = {}
        unknown = []
        for _, slurm_id in submitted:
            known = scontrol_job(slurm_id, cluster.env)
            if not known:
                unknown.append(slurm_id)
                continue
            state = f"{known['JobState']} (exit {known['ExitCode']})"
            states[state] = states.get(state, 0) + 1
    local = sum(1 for _, is_local in jobs.values() if is_local)
    print(f"snakemake exit {code}, {minutes:.1f} min wall; log: {log_path}")
    print(f"through SLURM: {len(submitted)} job submissions; slurmctld: "
          + (", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none")
          + (f"; unknown to it: {', '.join(unknown)}" if unknown else ""))
    print(f"local rules (run by Snakemake itself): {local}")
    # A job SLURM ended otherwise (cancelled, failed) is fine if Snakemake retried it (the profile's
    # `retries`): what must hold is one COMPLETED submission per Snakemake job and nothing slurmctld forgot.
    completed = states.get("COMPLETED (exit 0:0)", 0)
    every_job_once = completed == len({jobid for jobid, _ in submitted})
    if code == 0 and (unknown or not every_job_once):
        print(f"but {completed} completed SLURM jobs for {len({j for j, _ in submitted})} Snakemake jobs")
        return 1
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="targets and flags for snakemake")
    args = parser.parse_args(argv)
    reason = missing_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    try:
        return run_through_cluster(args.snakemake_args)
    except ClusterError as err:
        print(f"SLURM test cluster did not start: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
