"""ELUE submission validator: checks a submission folder (or its zip) like the server would.

`validate_submission` returns one line per problem (empty: valid). It never raises for a bad
submission. Decisions:
- STS-B predictions must be finite floats; values outside [0, 5] are accepted (a regression head is
  not clipped, Pearson/Spearman do not need it, and the metric in runs.csv was computed unclipped).
- Classification predictions must be written as integers of the task's label set ("1", not "1.0").
- model.py may import torch and the standard library only; it is executed (in-process, under a
  private module name) to get `module_list` and `entire_model`; every module of `module_list` must
  be part of `entire_model` (parameters are counted from it).
- FLOPs: rebuilt with hashee.measure.flops.FlopCounter on the imported module_list (each distinct
  (name, shape) traced once) and compared with flops.json; more than 1 % apart is a problem.
- At most MAX_ROW_PROBLEMS row-level problems are listed per file, then a count of the rest.

The layout it checks is the one hashee/studies/elue/submit.py writes (described there).
"""

from __future__ import annotations

import json
import math
import tempfile
import zipfile
from pathlib import Path

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.tasks import TASKS, TaskSpec
from hashee.core.trace import Trace, parse_trace
from hashee.studies.elue.submit import (
    FLOPS_FILE,
    MODEL_FILE,
    PRED_COLUMNS,
    disallowed_imports,
    load_model_file,
)

FLOPS_TOLERANCE = 0.01
MAX_ROW_PROBLEMS = 10

class _Report:
    """Problem lines, with paths shown relative to what the user named (a folder or a zip)."""

    def __init__(self, root: Path, shown: str):
        self.root, self.shown, self.lines = root, shown, []

    def path(self, path: Path) -> str:
        try:
            return f"{self.shown}/{path.relative_to(self.root).as_posix()}"
        except ValueError:
            return str(path)

    def add(self, path: Path, message: str, line: int | None = None) -> None:
        where = self.path(path) + (f":{line}" if line is not None else "")
        self.lines.append(f"{where}: {message}")


def validate_submission(directory, data_dir, tasks=None) -> list[str]:
    """One line per problem of an ELUE submission folder (or its zip); empty when it is valid."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise HasheeError(f"{data_dir}: data dir not found (it must hold <TASK>/test.tsv)")
    names = list(TASKS) if tasks is None else list(tasks)
    for name in names:
        if name not in TASKS:
            raise unknown_name("task", name, TASKS)
    directory = Path(directory)
    if directory.is_file() and zipfile.is_zipfile(directory):
        with tempfile.TemporaryDirectory(prefix="hashee-submission-") as tmp:
            try:
                with zipfile.ZipFile(directory) as archive:
                    archive.extractall(tmp)
            except (zipfile.BadZipFile, OSError) as err:
                return [f"{directory}: cannot unpack ({err})"]
            return _validate_tree(_Report(Path(tmp), str(directory)), names, data_dir)
    if not directory.is_dir():
        return [f"{directory}: submission folder (or zip) not found"]
    return _validate_tree(_Report(directory, str(directory)), names, data_dir)


def _validate_tree(report: _Report, names: list[str], data_dir: Path) -> list[str]:
    root = report.root
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.name.startswith(".") and entry.name not in TASKS:
            report.add(entry, f"folder is not an ELUE task (folders must be named {', '.join(TASKS)})")
    for name in names:
        folder = root / name
        if not folder.is_dir():
            report.add(folder, f"task {name} is missing: ELUE gives no score unless every task has a folder")
            continue
        _validate_task(report, folder, TASKS[name], data_dir)
    return report.lines


def _load_module_list(report: _Report, folder: Path):
    """module_list of the task's model.py, or None after reporting why not."""
    from torch import nn

    path = folder / MODEL_FILE
    if not path.is_file():
        report.add(path, "missing: each task folder needs the model definition")
        return None
    try:
        source = path.read_text(encoding="utf-8")
        bad = disallowed_imports(source)
    except (UnicodeDecodeError, SyntaxError, ValueError) as err:
        report.add(path, f"not a readable Python file ({type(err).__name__}: {err})")
        return None
    if bad:
        report.add(path, f"imports {', '.join(bad)}: the ELUE server provides torch (and the standard library) only")
    try:
        module = load_model_file(path)
    except BaseException as err:  # noqa: BLE001  (any failure of a user's file is a problem line)
        if isinstance(err, KeyboardInterrupt):
            raise
        report.add(path, f"fails to execute: {type(err).__name__}: {err}")
        return None
    module_list, entire = getattr(module, "module_list", None), getattr(module, "entire_model", None)
    if not isinstance(entire, nn.Module):
        report.add(path, "defines no `entire_model` nn.Module (parameters are counted from it)")
    if not isinstance(module_list, dict) or not module_list:
        report.add(path, "defines no `module_list` dict (name -> nn.Module)")
        return None
    not_modules = [str(k) for k, v in module_list.items() if not isinstance(v, nn.Module)]
    if not_modules:
        report.add(path, f"module_list entries that are not nn.Modules: {', '.join(not_modules)}")
        return None
    if isinstance(entire, nn.Module):
        owned = {id(p) for p in entire.parameters()}
        outside = [str(k) for k, v in module_list.items() if any(id(p) not in owned for p in v.parameters())]
        if outside:
            report.add(path, f"module_list entries with parameters outside entire_model: {', '.join(outside)}")
    return module_list


def _load_reported(report: _Report, folder: Path) -> dict | None:
    path = folder / FLOPS_FILE
    if not path.is_file():
        report.add(path, "missing: no reported FLOPs to check the `modules` column against")
        return None
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        return {str(name): float(entry["mflops"]) for name, entry in files.items()}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        report.add(path, f"unreadable ({type(err).__name__}: {err}); expected {{'files': {{name: {{'mflops': x}}}}}}")
        return None


def _test_indices(report: _Report, folder: Path, task: TaskSpec, data_dir: Path) -> set[int] | None:
    from hashee.core.data import read_split, task_file

    path = task_file(data_dir, task.name, "test")
    try:
        return {example.index for example in read_split(task, path, split="test")}
    except HasheeError as err:
        report.add(folder, f"cannot check predictions against the test set: {err}")
        return None


def _validate_task(report: _Report, folder: Path, task: TaskSpec, data_dir: Path) -> None:
    from hashee.measure.flops import FlopCounter

    module_list = _load_module_list(report, folder)
    reported = _load_reported(report, folder)
    indices = _test_indices(report, folder, task, data_dir)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".tsv")
    if not files:
        report.add(folder, "no prediction file (*.tsv)")
    counter = FlopCounter(module_list) if module_list is not None else None
    failed: dict = {}
    for path in files:
        traces = _validate_predictions(report, path, task, indices, module_list)
        if traces is None or counter is None:
            continue
        _check_flops(report, path, traces, counter, failed, reported)
    if reported is not None:
        for name in sorted(set(reported) - {p.name for p in files}):
            report.add(folder / FLOPS_FILE, f"lists {name}, which is not in the folder")


def _validate_predictions(report: _Report, path: Path, task: TaskSpec, indices: set[int] | None,
                          module_list: dict | None) -> list[tuple[int, Trace]] | None:
    """Row checks of one prediction file; returns (line, trace) per row if every trace is usable."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        report.add(path, f"not valid UTF-8 ({err.reason} at byte {err.start})")
        return None
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    header = lines[0].split("\t") if lines else []
    if tuple(header) != PRED_COLUMNS:
        report.add(path, f"header {' | '.join(header) or '(empty file)'}: expected exactly "
                         f"{' | '.join(PRED_COLUMNS)}, tab-separated", line=1)
        return None
    row_problems: list[tuple[int, str]] = []
    seen: dict[int, int] = {}
    traces: list[tuple[int, Trace]] = []
    usable = True
    for line_no, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(PRED_COLUMNS):
            row_problems.append((line_no, f"{len(fields)} field(s), expected {len(PRED_COLUMNS)} (tab-separated, "
                                          f"no quoting)"))
            usable = False
            continue
        index_text, pred, modules = (field.strip() for field in fields)
        try:
            index = int(index_text)
        except ValueError:
            row_problems.append((line_no, f"index {index_text!r} is not an integer"))
            index = None
        if index is not None:
            if index in seen:
                row_problems.append((line_no, f"duplicate index {index} (first on line {seen[index]})"))
            else:
                seen[index] = line_no
            if indices is not None and index not in indices:
                row_problems.append((line_no, f"index {index} is not in {task.name}'s test set"))
        problem = _pred_problem(task, pred)
        if problem:
            row_problems.append((line_no, problem))
        try:
            trace = parse_trace(modules, "modules")
        except HasheeError as err:
            row_problems.append((line_no, str(err)))
            usable = False
            continue
        if module_list is not None:
            unknown = sorted({call.name for call in trace} - set(module_list))
            if unknown:
                row_problems.append((line_no, f"modules names {', '.join(unknown)}, not in model.py's module_list "
                                              f"({', '.join(map(str, module_list))})"))
                usable = False
        traces.append((line_no, trace))
    for line_no, message in row_problems[:MAX_ROW_PROBLEMS]:
        report.add(path, message, line=line_no)
    if len(row_problems) > MAX_ROW_PROBLEMS:
        report.add(path, f"{len(row_problems) - MAX_ROW_PROBLEMS} more row problem(s) not shown")
    n_rows = len(lines) - 1
    if indices is not None:
        if n_rows != len(indices):
            report.add(path, f"{n_rows} prediction row(s), {task.name}'s test set has {len(indices)}")
        missing = sorted(indices - set(seen))
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            report.add(path, f"{len(missing)} test index(es) without a prediction: {shown}")
    if n_rows == 0:
        report.add(path, "no prediction rows")
        return None
    return traces if usable else None


def _pred_problem(task: TaskSpec, pred: str) -> str | None:
    if task.is_regression:
        try:
            value = float(pred)
        except ValueError:
            return f"{task.name} prediction {pred!r} is not a number"
        return None if math.isfinite(value) else f"{task.name} prediction {pred!r} is not finite"
    if pred not in task.labels:
        return f"{task.name} prediction {pred!r} is not one of its labels {', '.join(task.labels)}"
    return None


def _check_flops(report: _Report, path: Path, traces, counter, failed: dict, reported: dict | None) -> None:
    """Rebuild the file's mean MFLOPs from its traces with the submitted module_list; compare."""
    total = 0
    for line_no, trace in traces:
        for call in trace:
            if call in failed:
                report.add(path, f"FLOPs not rebuilt: module_list[{call.name!r}] fails on input shape "
                                 f"{call.shape} (see above)", line=line_no)
                return
            try:
                total += counter.call_flops(call)
            except Exception as err:  # noqa: BLE001  (a module of a user's file failing is a problem line)
                failed[call] = err
                report.add(path, f"module_list[{call.name!r}] fails on input shape {call.shape}: "
                                 f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", line=line_no)
                return
    rebuilt = total / len(traces) / 1e6
    if reported is None:
        return
    if path.name not in reported:
        report.add(path, f"not listed in {FLOPS_FILE}: no reported FLOPs (rebuilt: {rebuilt:.4f} MFLOPs)")
        return
    ours = reported[path.name]
    if not math.isfinite(ours) or abs(rebuilt - ours) > FLOPS_TOLERANCE * max(abs(ours), 1e-12):
        off = (rebuilt - ours) / ours * 100 if ours else float("inf")
        report.add(path, f"FLOPs mismatch: the modules column rebuilds {rebuilt:.4f} MFLOPs with model.py's "
                         f"module_list, {FLOPS_FILE} reports {ours:.4f} ({off:+.2f} %, tolerance "
                         f"{FLOPS_TOLERANCE:.0%})")
