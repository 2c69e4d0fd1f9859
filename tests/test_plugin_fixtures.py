"""hashee.testing: a plugin author's own test, outside this repository, reuses the suite's fixtures through
`pytest_plugins = ["hashee.testing"]` (docs/adding-a-baseline.md), run here as they would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[1] / "docs" / "examples" / "fixed_exit.py"

AUTHOR_TEST = f'''
from hashee.core.methods import available_methods, get_method
from hashee.core.tasks import get_task


def test_my_method_on_the_tiny_setup(registered_plugin, minilm2, tiny_task, tiny_elue):
    registered_plugin({str(PLUGIN)!r})
    assert "fixed-exit" in available_methods()
    method = get_method("fixed-exit", "layers=2")
    model = method.build(minilm2.config, get_task("SST-2"))
    method.init_from_backbone(model, minilm2)
    data = tiny_task("SST-2")
    assert len(data["train"]) > 0 and len(data["dev"]) > 0
    assert (tiny_elue / "STS-B" / "train.tsv").is_file()


def test_the_registry_is_restored_after_a_test():
    assert "fixed-exit" not in available_methods()
'''


def test_an_outside_test_reuses_the_fixtures(tmp_path):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["hashee.testing"]\n')
    (tmp_path / "test_mine.py").write_text(AUTHOR_TEST)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "2 passed" in out.stdout
