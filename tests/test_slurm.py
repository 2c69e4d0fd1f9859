"""The SLURM route on a real, single-node SLURM cluster (tests/slurm_cluster.py: Debian's slurm-wlm and
munge, started by the `slurm` fixture of tests/conftest.py and stopped again): config/tiny.yaml through
profiles/slurm, with the overrides a CPU-only machine needs (cluster_profile below), against a local run of the
same config and targets.

Checked: every job that is not a local rule went through SLURM (it has a SLURM job id, and scontrol knows that
job, its rule, partition, folder and end state); a train job cancelled with scancel while it trains is retried
by Snakemake (the profile's `retries`); and the results equal the local run's, file by file and row by row,
but for the wall-clock measurements (MEASURED_TIME below says which, and why).

Skips, saying why, where the packages are missing (`.ci/run` installs them when it runs as root), the test
does not run as root, or the daemons do not come up.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from slurm_cluster import cluster_profile, is_rule, scontrol_job, snakemake_jobs, squeue
from snakemake_helpers import ROOT, SNAKEFILE, job_stats, run_snakemake, snakemake_cmd, snakemake_env

CONFIG = ROOT / "config" / "tiny.yaml"
NAME = "tiny"
# The ELUE part of the tiny DAG: demo data, the hash, both train jobs, the timing stage, runs.csv, reference,
# bootstrap, the tables and the submission; and the summarization runs, whose hash and run jobs have settings
# with commas (snakemake#2366: they reach their remote jobs whole since each setting is a rule of its own;
# test_every_remote_job_gets_its_wildcards_whole below). Not their table (its speed-ups are measured time), the
# difficulty study, backbones table or report pages: minutes more, through the same submission path.
SUMM_ROWS = [f"results/{NAME}/summarization/demo-en/{run}/42/rows.csv"
             for run in ("full/default", "hashee/hash=frequency,buckets=6")]
TARGETS = [f"results/{NAME}/tables/elue.csv", f"results/{NAME}/submission.zip", *SUMM_ROWS]
CANCELLED_RULE = "train_hashee"  # the job scancel hits, once it has trained one of its four runs
TRAIN_LOG = f"logs/{NAME}/train/hashee/42.log"  # that job's log: a line per trained run
# Measured wall-clock time differs between any two runs, on one machine or two; everything else in results/
# is computed from the data and seeds alone and must be equal byte for byte.
TIMED = {"wall_ms", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "throughput"}  # timing/<TASK>.csv
MEASURED_TIME = {
    f"results/{NAME}/runs.csv": {"wall_ms"},  # the timing stage's batch-1 time, joined to each row
    f"results/{NAME}/timing/SST-2.csv": TIMED,
    f"results/{NAME}/timing/STS-B.csv": TIMED,
    **{rows: {"time_s"} for rows in SUMM_ROWS},  # the wall-clock of the test generation
}
NOT_COMPARED = {
    f"results/{NAME}/provenance.json": "its created_utc is the time the job ran (compared without it below)",
}


def cancel_mid_run(proc: subprocess.Popen, env: dict[str, str], train_log: Path, timeout: float = 1200):
    """Wait until the CANCELLED_RULE job is RUNNING in squeue and has trained its first run (its log says so:
    it is mid-run, past its start-up), then scancel it. Returns (SLURM id, its log then) or the reason it could
    not (the run ended, or the job finished, first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, f"snakemake exited ({proc.returncode}) before {CANCELLED_RULE} could be cancelled"
        for job in squeue(env):
            if not is_rule(job["comment"], CANCELLED_RULE):
                continue
            log = train_log.read_text() if train_log.exists() else ""
            if job["state"] == "RUNNING" and "trained hashee" in log:
                subprocess.run(["scancel", job["id"]], env=env, check=True, timeout=30)
                return job["id"], log
            if job["state"] not in ("PENDING", "RUNNING", "CONFIGURING"):
                return None, f"{CANCELLED_RULE} job {job['id']} was {job['state']} before it could be cancelled"
        time.sleep(0.1)
    return None, f"{CANCELLED_RULE} never ran within {timeout:.0f} s"


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    env = snakemake_env()
    start = time.monotonic()
    out = run_snakemake([*TARGETS, "--cores", "2", "--configfile", str(CONFIG)], root, env, timeout=1800)
    return SimpleNamespace(root=root, returncode=out.returncode, log=out.stdout + out.stderr,
                           seconds=time.monotonic() - start)


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    """TARGETS through `--profile <cluster_profile>` on the test cluster; the CANCELLED_RULE job is cancelled
    mid-run. What slurmctld knows of every submitted job is read before the cluster stops."""
    root = tmp_path_factory.mktemp("slurm")
    dry = run_snakemake([*TARGETS, "-n", "--configfile", str(CONFIG)], root)
    planned = job_stats(dry.stdout + dry.stderr)
    profile = cluster_profile(root / "profile", slurm.partition, planned)
    env = snakemake_env()
    env = {k: v for k, v in env.items() if not k.startswith("SLURM_")}
    env.update(SLURM_CONF=slurm.env["SLURM_CONF"], PATH=f"{slurm.bin}:{env['PATH']}")
    log_file = root / "snakemake.log"
    start = time.monotonic()
    with open(log_file, "w") as log:
        proc = subprocess.Popen([*snakemake_cmd(), "--snakefile", str(SNAKEFILE), *TARGETS, "--cores", "2",
                                 "--profile", str(profile), "--configfile", str(CONFIG)],
                                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            cancelled, cancel_note = cancel_mid_run(proc, slurm.env, root / TRAIN_LOG)
            proc.wait(timeout=1800)
        finally:
            if proc.poll() is None:  # the cluster's teardown cancels what it left
                proc.kill()
                proc.wait()
    text = log_file.read_text()
    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", text)
    return SimpleNamespace(root=root, returncode=proc.returncode, log=text, planned=planned,
                           jobs=snakemake_jobs(text), submitted=submitted,
                           slurm={slurm_id: scontrol_job(slurm_id, slurm.env) for _, slurm_id in submitted},
                           cancelled=cancelled, cancel_note=cancel_note, seconds=time.monotonic() - start,
                           partition=slurm.partition)


def succeeded(run) -> None:
    assert run.returncode == 0, run.log[-8000:]


def planned_jobs(log: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run lists (`wildcards: key=value, key=value`)."""
    jobs = []
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", log, re.M):
        line = re.search(r"^    wildcards: (.*)$", body, re.M)
        pairs = line.group(1).split(", ") if line else []
        jobs.append((rule, dict(pair.split("=", 1) for pair in pairs)))
    return jobs


def test_every_remote_job_gets_its_wildcards_whole(tmp_path):
    """A remote job (SLURM's, any executor's) learns which job to run from `--target-jobs rule:key=value,...`,
    which Snakemake splits at every comma, a value's too (snakemake#2366): a job whose wildcard value held one
    ran another value, or failed. So no rule takes a setting (which holds commas) as a wildcard: the
    summarization and backbone-hash rules are one rule per setting. Checked on tiny.yaml's whole DAG, every job
    as a remote job would read it back, and then as a remote job: `snakemake --target-jobs` with the encoded spec
    of each summarization job plans that very job (its output path, commas and all)."""
    from snakemake.target_jobs import parse_target_jobs_cli_args
    from snakemake_interface_executor_plugins.utils import TargetSpec, encode_target_jobs_cli_args

    dry = run_snakemake(["all", "-n", "-p", "--configfile", str(CONFIG)], tmp_path)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    jobs = planned_jobs(dry.stdout)
    rules = {rule for rule, _ in jobs}
    assert {"summ_fit_hash", "train_hashee"} <= rules and any(r.startswith("summ_run") for r in rules), sorted(rules)
    for rule, wildcards in jobs:
        sent = encode_target_jobs_cli_args([TargetSpec(rule, wildcards)])
        assert parse_target_jobs_cli_args(sent)[0].wildcards_dict == wildcards, (rule, wildcards)
    summ = [(rule, wildcards) for rule, wildcards in jobs if rule.startswith("summ_") and wildcards]
    spec = encode_target_jobs_cli_args([TargetSpec(rule, wildcards) for rule, wildcards in summ])
    remote = run_snakemake(["-n", "-p", "--configfile", str(CONFIG), "--target-jobs", *spec], tmp_path)
    assert remote.returncode == 0, remote.stdout[-3000:] + remote.stderr[-3000:]
    assert "--setting hash=frequency,buckets=6 --setting-out" in remote.stdout
    assert "summarization/demo-en/hashee/hash=frequency,buckets=6/42/rows.csv" in remote.stdout
    assert sorted(job for job in planned_jobs(remote.stdout) if job[1]) == sorted(summ)  # and the demo data


@pytest.mark.slow
def test_the_cluster_stops_every_process_it_started():
    """Leaving the cluster's context with a job still running stops the job, slurmstepd and the daemons."""
    from slurm_cluster import ClusterError, leftover_processes, missing_reason, slurm_cluster

    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    try:
        with slurm_cluster() as cluster:
            out = subprocess.run(["sbatch", "--parsable", "--wrap", "sleep 300", "-o", "/dev/null"],
                                 env=cluster.env, cwd=cluster.root, capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            deadline = time.monotonic() + 30
            while {j["state"] for j in squeue(cluster.env)} != {"RUNNING"} and time.monotonic() < deadline:
                time.sleep(0.2)
            assert [j["state"] for j in squeue(cluster.env)] == ["RUNNING"]
            assert leftover_processes(cluster.root, cluster.conf)  # the check sees a live cluster
            root, conf, pids = cluster.root, cluster.conf, cluster.pids
    except ClusterError as err:
        pytest.skip(f"SLURM test cluster did not start: {err}")
    assert leftover_processes(root, conf) == []
    assert not root.exists()
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists(), name


@pytest.mark.slow
def test_jobs_went_through_slurm(slurm_run):
    """Every job but the Snakefile's local rules was submitted to SLURM, and slurmctld knows each such job:
    the rule it ran, its partition, its folder, its end state."""
    succeeded(slurm_run)
    local_rules = {rule for rule, local in slurm_run.jobs.values() if local}
    remote = {rule: n for rule, n in slurm_run.planned.items() if rule not in local_rules}
    # the GPU jobs of the real profile, here on the CPU partition
    assert {"train_hashee", "train_static", "time_models"} <= set(remote), remote
    expected = dict(remote, **{CANCELLED_RULE: remote[CANCELLED_RULE] + 1})  # + its retry
    counts = {}
    for jobid, slurm_id in slurm_run.submitted:
        rule, local = slurm_run.jobs[jobid]
        assert not local, rule
        counts[rule] = counts.get(rule, 0) + 1
        known = slurm_run.slurm[slurm_id]
        assert known, f"scontrol does not know SLURM job {slurm_id} ({rule})"
        assert is_rule(known["Comment"], rule), (slurm_id, rule, known["Comment"])
        assert known["Partition"] == slurm_run.partition, (slurm_id, known["Partition"])
        assert Path(known["WorkDir"]) == slurm_run.root, (slurm_id, known["WorkDir"])
        if slurm_id != slurm_run.cancelled:
            assert (known["JobState"], known["ExitCode"]) == ("COMPLETED", "0:0"), (slurm_id, rule, known)
    assert counts == expected


@pytest.mark.slow
def test_a_job_cancelled_mid_run_is_retried(slurm_run):
    """scancel on the train job while it trains: SLURM records it CANCELLED, Snakemake submits it again
    (retries: 1), and the run completes (its results: test_slurm_results_equal_the_local_runs)."""
    assert slurm_run.cancelled, slurm_run.cancel_note
    assert slurm_run.slurm[slurm_run.cancelled]["JobState"] == "CANCELLED"
    assert f"SLURM-job '{slurm_run.cancelled}' failed, SLURM status is: 'CANCELLED'" in slurm_run.log
    mine = [slurm_id for jobid, slurm_id in slurm_run.submitted if slurm_run.jobs[jobid][0] == CANCELLED_RULE]
    assert mine[0] == slurm_run.cancelled and len(mine) == 2, mine
    assert slurm_run.slurm[mine[1]]["JobState"] == "COMPLETED"
    assert "trained hashee" in slurm_run.cancel_note  # its log when cancelled: one run trained, three to go
    assert slurm_run.cancel_note.count("trained hashee") < 4
    succeeded(slurm_run)


def _results(run) -> dict[str, Path]:
    folder = run.root / "results" / NAME
    return {str(p.relative_to(run.root)): p for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_slurm_results_equal_the_local_runs(slurm_run, local_run):
    """Every file under results/ of the SLURM run (with its cancelled and retried train job) equals the local
    run's: byte for byte, but for the columns of measured time (MEASURED_TIME: the rows must still match,
    key for key) and provenance.json's timestamp."""
    import json

    import pandas as pd

    succeeded(local_run)
    succeeded(slurm_run)
    ours, theirs = _results(slurm_run), _results(local_run)
    assert sorted(ours) == sorted(theirs)
    differ = []
    for name, path in ours.items():
        if name in MEASURED_TIME:
            a, b = (pd.read_csv(p, dtype=str, keep_default_na=False) for p in (path, theirs[name]))
            assert list(a.columns) == list(b.columns) and MEASURED_TIME[name] <= set(a.columns), name
            kept = [c for c in a.columns if c not in MEASURED_TIME[name]]
            if not a[kept].equals(b[kept]):
                differ.append(name)
        elif name in NOT_COMPARED:
            a, b = (json.loads(p.read_text()) for p in (path, theirs[name]))
            a.pop("created_utc")
            b.pop("created_utc")
            if a != b:
                differ.append(name)
        elif path.read_bytes() != theirs[name].read_bytes():
            differ.append(name)
    assert not differ, f"SLURM and local results differ in {differ}"
