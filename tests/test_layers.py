"""The layering (docs/architecture.md): core <- measure <- studies <- cli, baselines on the core.
Each layer is imported in a fresh interpreter, and what it pulled in is checked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LAYERS = ("hashee.core", "hashee.measure", "hashee.studies", "hashee.cli")
# What importing a module may load, among the project's own packages.
ALLOWED = {
    "hashee.core": {"hashee.core"},
    "hashee.measure": {"hashee.core", "hashee.measure"},
    "hashee.studies": {"hashee.core", "hashee.measure", "hashee.studies"},
    "baselines": {"hashee.core", "baselines"},
}


def _project_modules_after(statement: str) -> set[str]:
    code = (f"import sys, json\n{statement}\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('hashee', 'baselines', 'workflow_scripts'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _layer(module: str) -> str:
    if module.startswith("baselines"):
        return "baselines"
    for layer in LAYERS:
        if module == layer or module.startswith(layer + "."):
            return layer
    return module  # the top-level `hashee` package itself (its version)


def _all_modules(package: str) -> list[str]:
    import importlib
    import pkgutil

    root = importlib.import_module(package)
    return sorted(m.name for m in pkgutil.walk_packages(root.__path__, package + ".")
                  if not m.name.endswith("__main__"))


@pytest.mark.parametrize("package", ["hashee.core", "hashee.measure", "hashee.studies", "baselines"])
def test_a_layer_imports_only_the_layers_below_it(package):
    statement = "\n".join(f"import {m}" for m in [package, *_all_modules(package)])
    pulled = {_layer(m) for m in _project_modules_after(statement)} - {"hashee"}
    assert pulled <= ALLOWED[package], f"{package} pulled in {sorted(pulled - ALLOWED[package])}"


def test_the_model_alone_pulls_no_baseline_cli_or_launcher():
    pulled = _project_modules_after("import hashee.core.modeling")
    assert not {m for m in pulled if m.startswith(("baselines", "hashee.cli", "hashee.measure", "workflow"))}


def test_the_registry_finds_the_baselines_through_entry_points_not_imports():
    pulled = _project_modules_after("import hashee.core.methods")
    assert not any(m.startswith("baselines") for m in pulled)
    pulled = _project_modules_after("from hashee.core.methods import available_methods\navailable_methods()")
    assert {"baselines.deebert", "hashee.core.hashee_method"} <= pulled


def test_every_registered_method_is_found():
    from hashee.core.methods import available_methods

    assert {"hashee", "static", "deebert", "fastbert", "pabee", "berxit", "cascadebert",
            "elasticbert-entropy", "elasticbert-patience"} <= set(available_methods())


def test_no_code_but_the_hashee_method_asks_whether_a_method_is_hashee_by_name():
    """Method facts live on the method: outside the HashEE class's module, code reads class facts (or the
    class's `name`), never compares a method id with the literal "hashee"."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"""(==|!=)\s*["']hashee["']|["']hashee["']\s*(==|!=)""")
    files = [*root.joinpath("hashee").rglob("*.py"), *root.joinpath("baselines").rglob("*.py"),
             *root.joinpath("workflow").rglob("*.smk"), *root.joinpath("workflow").rglob("*.py"), root / "Snakefile"]
    found = [f"{path.relative_to(root)}:{number}: {line.strip()}"
             for path in files if path != root / "hashee" / "core" / "hashee_method.py"
             for number, line in enumerate(path.read_text().splitlines(), start=1) if pattern.search(line)]
    assert not found, "\n".join(found)


def test_no_import_circle_inside_the_cli():
    """The verb modules import each other one way only (function-level imports included): a circle would
    make a module's meaning depend on which verb was imported first."""
    import ast
    from pathlib import Path

    cli = Path(__file__).resolve().parents[1] / "hashee" / "cli"
    graph = {}
    for path in cli.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hashee.cli"):
                imported |= {node.module.removeprefix("hashee.cli").lstrip(".") or alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name.removeprefix("hashee.cli.") for a in node.names if a.name.startswith("hashee.cli.")}
        graph[path.stem] = imported & {p.stem for p in cli.glob("*.py")}

    def reaches(start, target, seen=()):
        return any(nxt == target or (nxt not in seen and reaches(nxt, target, (*seen, nxt))) for nxt in graph[start])

    circles = sorted(module for module in graph if module != "__init__" and reaches(module, module))
    assert not circles, {m: sorted(graph[m]) for m in circles}


def quoted_method_ids(root, files):
    """Lines of `files` that quote a registered method id ("hashee", 'static', ...), but not `hashee` as the
    package or program name."""
    import re

    from hashee.core.methods import available_methods

    ids = "|".join(re.escape(name) for name in available_methods())
    pattern = re.compile(rf"""["']({ids})["']""")
    package_name = re.compile(r"""prog=|__version__|resources\.files|__module__""")
    return [f"{path.relative_to(root)}:{number}: {line.strip()}"
            for path in files
            for number, line in enumerate(path.read_text().splitlines(), start=1)
            if pattern.search(line) and not package_name.search(line)]


def shared_code(root):
    """The code that must name no method: the reporting layer, the CLI, the ELUE study and the workflow."""
    return [*root.joinpath("hashee", "measure").rglob("*.py"), *root.joinpath("hashee", "cli").rglob("*.py"),
            *root.joinpath("hashee", "studies", "elue").rglob("*.py"),
            *root.joinpath("workflow").rglob("*.smk"), *root.joinpath("workflow").rglob("*.py"), root / "Snakefile"]


def test_shared_code_names_no_method():
    """Method facts (label, plot style, table order, paper rows, the reference role, what the backbones
    experiment compares) live on the method classes: the reporting layer, the CLI, the ELUE study and the
    workflow quote no method id (`hashee` as the package or program name aside)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = quoted_method_ids(root, shared_code(root))
    assert not found, "\n".join(found)


def test_the_method_id_scan_finds_a_quoted_id(tmp_path):
    """The scan above can fail: a quoted id in a file is found, the package name is not."""
    (tmp_path / "a.py").write_text('x = 1\nrows = runs[runs["method"] == "static"]\nprog="hashee"\n')
    assert quoted_method_ids(tmp_path, [tmp_path / "a.py"]) == ['a.py:2: rows = runs[runs["method"] == "static"]']


def test_a_plugin_method_inherits_the_reporting_defaults():
    from hashee.core.methods import Method, available_methods, reference_method
    from hashee.measure.plots import method_styles
    from hashee.measure.tables import method_order, paper_model

    class Plugin(Method):  # not registered: what a plugin's class inherits
        name = "a-plugin"

    assert (Plugin.plot_style, Plugin.table_order, Plugin.paper_rows, Plugin.is_reference) == (None, 6.5, (), False)
    assert (Plugin.display_label(), Plugin.backbones_setting) == ("a-plugin", None)
    registry = available_methods()
    assert reference_method() == "static" and registry["static"].is_reference
    order = sorted([*registry, "a-plugin"], key=method_order)
    assert order[0] == "static" and order[-2:] == ["a-plugin", "hashee"], order
    assert paper_model("a-plugin", "layers=6") is None and "a-plugin" not in method_styles()
