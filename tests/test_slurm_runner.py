"""`tests/slurm_cluster.py` as a script (`make rehearsal-slurm` runs the rehearsal through it): it starts its own
one-node cluster, plans the command, writes the CPU-only profile for the rules it plans, runs Snakemake through
SLURM and checks with slurmctld that every submitted job COMPLETED. Here on two jobs of config/tiny.yaml (demo
data, a hash fit). A module of its own: its cluster must not overlap tests/test_slurm.py's."""

import pytest
from snakemake_helpers import ROOT, SNAKEFILE

TARGET = "results/tiny/hashes/SST-2/hash=frequency,layers=2/42/hash.pt"


@pytest.mark.slow
def test_the_script_runs_snakemake_through_its_own_cluster(tmp_path, capsys):
    from slurm_cluster import missing_reason, run_through_cluster

    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    log = tmp_path / "snakemake.log"
    code = run_through_cluster(["--snakefile", str(SNAKEFILE), TARGET, "--cores", "2",
                                "--configfile", str(ROOT / "config" / "tiny.yaml")], cwd=tmp_path, log_path=log)
    out = capsys.readouterr().out
    assert code == 0, out + log.read_text()[-4000:]
    assert "planned: 2 jobs of 2 rules" in out
    assert "through SLURM: 2 job submissions; slurmctld: 2 COMPLETED (exit 0:0)" in out
    assert "2 of 2 steps (100%) done" in out  # progress reaches the terminal
    assert (tmp_path / TARGET).exists()
