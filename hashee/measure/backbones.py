"""The effect of backbones (docs/backbones.md): per backbone and task, the compared method (the registered
class with a `backbones_setting`: HashEE) and the reference method's model of the same depth (the class
with `is_reference`: the static model), their perf and speed-up and the difference;
results/<config>/tables/backbones.{md,csv,tex} and plots/backbones.png. The CSV's columns are prefixed
with the two methods' ids, the shown table names them by their classes' `label`.

Which rows are a backbone's: every backbone of the config's `backbones` section has a label, and its
runs' settings start with `backbone=<label>` (hashee.core.settings.with_backbone), except the config's
own backbone (`own`), whose runs are the main experiment's and carry no backbone key.

The paper shows this comparison as a figure; hashee/paper/ quotes no numbers for it (none are read off
a picture), so the table has no paper rows and says so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hashee.core.errors import HasheeError
from hashee.core.io import atomic_path, write_text_atomic
from hashee.core.settings import with_backbone
from hashee.core.tasks import TASKS
from hashee.measure.provenance import table_note
from hashee.measure.results import read_runs
from hashee.measure.tables import DASH, SYNTHETIC_CONFIGS, to_latex, to_markdown

__all__ = ["NO_PAPER_NUMBERS", "backbone_points", "backbones_plot", "backbones_table", "compared_methods",
           "display_table", "write_backbones"]

NO_PAPER_NUMBERS = ("The paper reports the effect of backbones as a figure; hashee/paper/ holds no numbers "
                    "for it, so no paper rows are quoted here.")
_STATS = ("perf", "std", "speedup", "n_seeds")


def compared_methods(method: str | None = None, reference: str | None = None) -> tuple[str, str]:
    """(the compared method, the reference method): by default the registry's (`backbones_method`,
    `reference_method`)."""
    from hashee.core.methods import backbones_method, reference_method  # here: the registry imports torch

    return method or backbones_method(), reference or reference_method()


def _seed_stats(rows: pd.DataFrame, where: str) -> dict:
    duplicated = rows["seed"].duplicated()
    if duplicated.any():
        raise HasheeError(f"{where}: several rows for seed {rows['seed'][duplicated].iloc[0]} "
                          "(a swept method? the backbones table takes one point per run)")
    return {"perf": rows["perf"].mean(), "std": rows["perf"].std(), "speedup": rows["speedup"].mean(),
            "n_seeds": len(rows)}


def backbone_points(runs: pd.DataFrame, labels: list[str], own: str | None, setting: str,
                    reference_setting: str, *, split: str = "test", method: str | None = None,
                    reference: str | None = None) -> pd.DataFrame:
    """One row per backbone label x task with runs: seed means of `method` [`setting`] and of the
    `reference` method [`reference_setting`] on that backbone (`compared_methods`), and method −
    reference (perf, speed-up). Columns `<id>_perf`, `<id>_std`, ... per method id. A model without runs
    on a task leaves its columns empty (NaN)."""
    if not labels:
        raise HasheeError("backbones table: no backbone labels given")
    method, reference = compared_methods(method, reference)
    rows = runs[(runs["split"] == split) & runs["perf"].notna()]
    records = []
    for label in labels:
        backbone = None if label == own else label
        settings = {method: with_backbone(setting, backbone), reference: with_backbone(reference_setting, backbone)}
        for task in TASKS:
            record = {"backbone": label, "task": task}
            for name in (method, reference):
                mine = rows[(rows["method"] == name) & (rows["setting"] == settings[name]) & (rows["task"] == task)]
                stats = _seed_stats(mine, f"runs {name} {settings[name]} {task}") if len(mine) else {}
                for key in _STATS:
                    record[f"{name}_{key}"] = stats.get(key, float("nan"))
            if pd.isna(record[f"{method}_perf"]) and pd.isna(record[f"{reference}_perf"]):
                continue
            record["delta_perf"] = record[f"{method}_perf"] - record[f"{reference}_perf"]
            record["delta_speedup"] = record[f"{method}_speedup"] - record[f"{reference}_speedup"]
            records.append(record)
    columns = ["backbone", "task"] + [f"{m}_{k}" for m in (method, reference) for k in _STATS]
    points = pd.DataFrame(records, columns=columns + ["delta_perf", "delta_speedup"])
    points.attrs["methods"] = (method, reference)
    return points


def _perf(mean, std, n) -> str:
    if pd.isna(mean):
        return DASH
    return f"{mean:.1f}" + (f" ± {std:.2f}" if n > 1 else "")


def _number(value, fmt: str) -> str:
    return DASH if pd.isna(value) else format(value, fmt)


def _methods_of(points: pd.DataFrame) -> tuple[str, str]:
    """The (compared, reference) ids of `backbone_points`' rows (its attrs, else the registry's)."""
    return tuple(points.attrs.get("methods") or compared_methods())


def _labels(methods) -> list[str]:
    from hashee.core.methods import method_label

    return [method_label(m) for m in methods]


def display_table(points: pd.DataFrame) -> pd.DataFrame:
    """The table as shown (md/tex): perf ×100 (mean ± std over seeds), speed-up, method − reference, the two
    named by their classes' `label`."""
    methods = _methods_of(points)
    labels = _labels(methods)
    shown = pd.DataFrame({"backbone": points["backbone"], "task": points["task"]})
    for method, name in zip(methods, labels):
        shown[f"{name} perf"] = [_perf(m, s, n) for m, s, n in
                                 zip(points[f"{method}_perf"], points[f"{method}_std"], points[f"{method}_n_seeds"])]
        shown[f"{name} speed-up"] = [_number(v, ".1f") + ("×" if pd.notna(v) else "") for v in points[f"{method}_speedup"]]
    shown[f"Δ perf ({labels[0]} − {labels[1]})"] = [_number(v, "+.1f") for v in points["delta_perf"]]
    shown["Δ speed-up"] = [_number(v, "+.1f") + ("×" if pd.notna(v) else "") for v in points["delta_speedup"]]
    return shown


def backbones_table(runs: pd.DataFrame, labels: list[str], own: str | None, setting: str,
                    reference_setting: str, *, split: str = "test", method: str | None = None,
                    reference: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """(points, notes): `backbone_points` and the notes printed under the table."""
    points = backbone_points(runs, labels, own, setting, reference_setting, split=split, method=method,
                             reference=reference)
    name, ref_name = _labels(_methods_of(points))
    notes = [f"Per backbone and task: {split} perf ×100 (mean ± sample std over seeds when >1 seed) and mean "
             f"speed-up (FLOPs relative to BERT-base) of {name} [{setting}] and of the {ref_name} model "
             f"[{reference_setting}] on that backbone; Δ = {name} − {ref_name}, from the seed means.",
             NO_PAPER_NUMBERS]
    missing = [label for label in labels if label not in set(points["backbone"])]
    if missing:
        notes.append(f"No {split} runs for backbone(s) {', '.join(missing)}.")
    return points, notes


def backbones_plot(points: pd.DataFrame, out, *, split: str = "test") -> Path:
    """One panel per task: perf against speed-up, per backbone its reference model (open square) and the
    compared method (filled circle) joined by a line; written atomically to `out` (PNG)."""
    method, reference = _methods_of(points)
    name, ref_name = _labels((method, reference))
    tasks = [t for t in TASKS if t in set(points["task"])]
    if not tasks:
        raise HasheeError(f"backbones plot: no {split} runs of any backbone to draw")
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.6 * rows))
    FigureCanvasAgg(fig)
    colors = {label: f"C{i % 10}" for i, label in enumerate(dict.fromkeys(points["backbone"]))}
    for index, task in enumerate(tasks, start=1):
        ax = fig.add_subplot(rows, cols, index)
        for record in points[points["task"] == task].to_dict("records"):
            color = colors[record["backbone"]]
            ours = record[f"{method}_speedup"], record[f"{method}_perf"]
            ref = record[f"{reference}_speedup"], record[f"{reference}_perf"]
            ax.plot([ref[0], ours[0]], [ref[1], ours[1]], "-", color=color, linewidth=1, alpha=0.6)
            ax.plot(*ref, "s", mfc="none", color=color)
            ax.plot(*ours, "o", color=color, label=record["backbone"])
        ax.set_title(task)
        ax.set_xlabel("speed-up (×, FLOPs vs BERT-base)")
        ax.set_ylabel(f"{split} perf ×100")
        ax.grid(alpha=0.3)
        if index == 1:
            ax.legend(fontsize=7, title=f"● {name}  □ {ref_name}", title_fontsize=7)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return out


def write_backbones(runs_path, out_dir, plot_path, labels: list[str], own: str | None, setting: str,
                    reference_setting: str, config_name: str | None = None, *, split: str = "test",
                    method: str | None = None, reference: str | None = None) -> list[Path]:
    """backbones.{md,csv,tex} in `out_dir` and the plot at `plot_path`. Everything is computed before the
    first write; each file is written atomically. The CSV holds the numbers, the md/tex the shown table."""
    runs = read_runs(runs_path)
    points, notes = backbones_table(runs, labels, own, setting, reference_setting, split=split, method=method,
                                    reference=reference)
    if config_name in SYNTHETIC_CONFIGS:
        notes.append(f"Synthetic demo data (config '{config_name}') — not comparable with the paper.")
    notes += table_note(out_dir)
    shown = display_table(points)
    texts = {"backbones.md": to_markdown(shown, notes), "backbones.tex": to_latex(shown, notes),
             "backbones.csv": points.to_csv(index=False)}
    out_dir = Path(out_dir)
    paths = [backbones_plot(points, plot_path, split=split)]
    for name, text in texts.items():
        write_text_atomic(out_dir / name, text)
        paths.append(out_dir / name)
    return paths
