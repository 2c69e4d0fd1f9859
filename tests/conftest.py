import contextlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The shared tiny setup (demo data written once, the offline backbone, tokenized tasks, plugin registration):
# hashee.testing's fixtures, which a plugin author's own tests reuse the same way (docs/adding-a-baseline.md).
from hashee.testing import minilm, minilm2, registered_plugin, tiny_elue, tiny_task  # noqa: E402, F401


@pytest.fixture
def fixed_exit_plugin(registered_plugin):  # noqa: F811 (the imported fixture, by name)
    """docs/examples/fixed_exit.py registered the way the jobs load a plugin ($HASHEE_PLUGINS)."""
    return registered_plugin(Path(__file__).resolve().parents[1] / "docs" / "examples" / "fixed_exit.py")


@pytest.fixture(scope="module")
def slurm():
    """A single-node SLURM cluster (tests/slurm_cluster.py) for the module's tests, stopped after them; no
    process of it may remain. Skips, saying why, where none can start here."""
    from slurm_cluster import ClusterError, leftover_processes, missing_reason, slurm_cluster

    reason = missing_reason()
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    stack = contextlib.ExitStack()
    try:
        cluster = stack.enter_context(slurm_cluster())
    except ClusterError as err:
        print(f"skipped: SLURM test cluster did not start: {err}")
        pytest.skip(f"SLURM test cluster did not start: {err}")
    with stack:
        yield cluster
    leftovers = leftover_processes(cluster.root, cluster.conf)
    assert not leftovers, f"the SLURM test cluster left processes behind: {leftovers}"
