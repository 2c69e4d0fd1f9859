"""The ELUE score of a submission before it is uploaded (`hashee score-submission`).

From a submission folder (or its zip; the layout hashee/studies/elue/submit.py writes), labelled test
files and a reference curve, compute what the leaderboard computes:

- per prediction file `<TASK>_<k>.tsv`: the task metric (hashee.core.metrics, x100) of its `pred`
  column against the gold labels joined by `index`, and its mean MFLOPs per instance rebuilt from
  the `modules` column with the file's own model.py `module_list`, as the validator does
  (hashee/studies/elue/validate.py; the server never reads our flops.json);
- per task: the mean gap perf − p_EB(MFLOPs) over its files, and the ELUE score: the mean of the
  task gaps, rounded to 2 decimals (hashee.measure.score.elue_score, the leaderboard's formula).

The submission is validated first (`validate_submission`): a submission the validator refuses is
refused here, in one line that names its first problem. Labels come from `<labels_dir>/<TASK>/
test_full.tsv` (train/dev layout, rows in test.tsv's order, as `hashee evaluate --test-labels` reads
them); ELUE keeps its own test labels private, so the score is only as good as those labels and the
reference curve: the leaderboard's ElasticBERT curve is not the one the paper's table implies
(hashee.measure.score.paper_score_inconsistency).
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.tasks import TASKS, TaskSpec
from hashee.measure.score import describe_policy, elue_score, point_gaps, read_reference

LABELS_FILE = "test_full.tsv"
FILE_COLUMNS = ["task", "file", "setting", "n_instances", "perf", "mflops", "p_eb", "gap"]
TASK_COLUMNS = ["task", "metric", "n_files", "perf", "mflops", "gap"]


@dataclass
class SubmissionScore:
    files: pd.DataFrame  # one row per prediction file: FILE_COLUMNS
    tasks: pd.DataFrame  # one row per task: TASK_COLUMNS (means over its files)
    score: float  # the ELUE score, 2 decimals
    beyond: str  # the reference curve's out-of-range policy

    @property
    def complete(self) -> bool:
        """Every ELUE task is scored (the leaderboard scores nothing less)."""
        return set(self.tasks["task"]) == set(TASKS)


def score_submission(directory, data_dir, reference, *, labels_dir=None, tasks=None,
                     beyond: str = "extend") -> SubmissionScore:
    """Score a submission folder (or zip); see the module docstring. `data_dir`: `<TASK>/test.tsv`;
    `labels_dir` (default: data_dir): `<TASK>/test_full.tsv`; `reference`: a reference CSV
    (`hashee reference`); `tasks`: default all six."""
    from hashee.studies.elue.validate import validate_submission

    names = list(TASKS) if tasks is None else list(tasks)
    for name in names:
        if name not in TASKS:
            raise unknown_name("task", name, TASKS)
    ref = read_reference(reference, names)
    labels_dir = Path(labels_dir if labels_dir is not None else data_dir)
    problems = validate_submission(directory, data_dir, tasks=names)
    if problems:
        raise HasheeError(f"not a valid submission ({len(problems)} problem(s); `hashee validate-submission` "
                          f"lists them), first: {problems[0]}")
    directory = Path(directory)
    if directory.is_file():  # a zip: the validator has read it already, so it unpacks
        with tempfile.TemporaryDirectory(prefix="hashee-score-") as tmp:
            with zipfile.ZipFile(directory) as archive:
                archive.extractall(tmp)
            rows = _score_files(Path(tmp), names, Path(data_dir), labels_dir)
    else:
        rows = _score_files(directory, names, Path(data_dir), labels_dir)
    files = point_gaps(pd.DataFrame(rows), ref, beyond)[FILE_COLUMNS]
    per_task = files.groupby("task", sort=False).agg(n_files=("file", "size"), perf=("perf", "mean"),
                                                     mflops=("mflops", "mean"), gap=("gap", "mean")).reset_index()
    per_task.insert(1, "metric", [TASKS[t].metric for t in per_task["task"]])
    return SubmissionScore(files, per_task[TASK_COLUMNS], elue_score(files, ref, beyond), beyond)


def _score_files(root: Path, names: list[str], data_dir: Path, labels_dir: Path) -> list[dict]:
    from hashee.core.data import task_file
    from hashee.measure.evaluation import labels_by_test_index

    rows = []
    for name in names:
        task = TASKS[name]
        labels_file = labels_dir / name / LABELS_FILE
        if not labels_file.is_file():
            raise HasheeError(f"{labels_file}: labelled test file not found (train/dev layout, the rows of "
                              f"{name}'s test.tsv in order; ELUE's own test labels are private)")
        gold = labels_by_test_index(task, task_file(data_dir, name, "test"), labels_file)
        rows += _score_task(root / name, task, gold)
    return rows


def _score_task(folder: Path, task: TaskSpec, gold: dict) -> list[dict]:
    import json

    from hashee.core.metrics import compute_metric
    from hashee.core.trace import parse_trace
    from hashee.measure.flops import FlopCounter
    from hashee.studies.elue.submit import FLOPS_FILE, MODEL_FILE, load_model_file

    counter = FlopCounter(load_model_file(folder / MODEL_FILE).module_list)
    listed = json.loads((folder / FLOPS_FILE).read_text(encoding="utf-8"))["files"]
    rows = []
    for path in sorted(folder.glob(f"{task.name}_*.tsv"), key=lambda p: int(p.stem.rsplit("_", 1)[1])):
        # The validator has checked the layout: header, three tab-separated fields, known labels.
        lines = [line.rstrip("\r").split("\t") for line in path.read_text(encoding="utf-8").split("\n")[1:]
                 if line.strip()]
        index = [int(fields[0]) for fields in lines]
        predictions = np.array([float(fields[1]) if task.is_regression else task.labels.index(fields[1].strip())
                                for fields in lines])
        labels = np.array([gold[i] for i in index])  # every test index has a label: both follow test.tsv
        perf = compute_metric(task, predictions, labels)
        mflops = counter.mean_mflops(parse_trace(fields[2], str(path)) for fields in lines)
        rows.append({"task": task.name, "file": path.name, "setting": str(listed.get(path.name, {}).get("setting", "")),
                     "n_instances": len(lines), "perf": perf, "mflops": mflops})
    return rows


def format_score(result: SubmissionScore, source: str = "") -> str:
    """The tables `hashee score-submission` prints: per file, per task, then the score."""
    files = result.files.assign(perf=result.files["perf"].round(2), mflops=result.files["mflops"].round(3),
                                p_eb=result.files["p_eb"].round(2), gap=result.files["gap"].round(2))
    tasks = result.tasks.assign(perf=result.tasks["perf"].round(2), mflops=result.tasks["mflops"].round(3),
                                gap=result.tasks["gap"].round(2))
    lines = ["Per prediction file (perf x100; p_EB: the reference curve at the file's MFLOPs):",
             files.to_markdown(index=False, floatfmt="g"), "",
             "Per task (means over its files):", tasks.to_markdown(index=False, floatfmt="g"), "",
             f"ELUE score: {result.score:.2f}" + (f"  (reference: {source})" if source else ""),
             describe_policy(result.beyond)]
    if not result.complete:
        absent = [t for t in TASKS if t not in set(result.tasks["task"])]
        lines.append(f"Partial: {', '.join(absent)} not scored; the leaderboard scores only a submission of all six tasks.")
    return "\n".join(lines)


__all__ = ["FILE_COLUMNS", "LABELS_FILE", "TASK_COLUMNS", "SubmissionScore", "format_score", "score_submission"]
