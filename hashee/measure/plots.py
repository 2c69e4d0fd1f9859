"""Pareto plots: perf vs MFLOPs per task, every method, with the ELUE reference curve.

Figures are drawn on the Agg canvas directly (no pyplot), so importing this module changes no
global matplotlib backend state.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hashee.core.io import atomic_path
from hashee.core.tasks import METRIC_NAMES, TASKS, get_task
from hashee.measure.results import method_sweep_keys, split_setting
from hashee.measure.score import reference_curve


def pareto_points(runs: pd.DataFrame, *, split: str = "test",
                  sweep_keys: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """Seed-mean (perf, mflops) per (task, method, setting) on `split`, each labelled with its
    `model`: the method and its setting without the method's sweep keys (`sweep_keys`: method ->
    keys, by default the registry's), so one trained model's sweep is one series."""
    rows = runs[(runs["split"] == split) & runs["perf"].notna() & runs["mflops"].notna()]
    if sweep_keys is None:
        sweep_keys = method_sweep_keys(rows["method"])
    points = (rows.groupby(["task", "method", "setting"], sort=False)[["perf", "mflops"]].mean().reset_index())
    points["model"] = [f"{m} {split_setting(s, sweep_keys[m])[0]}".strip()
                       for m, s in zip(points["method"], points["setting"])]
    return points


def pareto_plots(runs: pd.DataFrame, ref: pd.DataFrame | None, out_dir, *, split: str = "test",
                 sweep_keys: dict[str, tuple[str, ...]] | None = None) -> list[Path]:
    """Write pareto_<TASK>.png per task with results on `split`; return the paths.

    Each model (`pareto_points`) is one series of seed-mean points; a dynamic method's sweep points
    are joined by a line in MFLOPs order. The reference points are drawn as a dashed line when `ref`
    covers the task."""
    points = pareto_points(runs, split=split, sweep_keys=sweep_keys)
    out_dir = Path(out_dir)
    paths = []
    for task in [t for t in TASKS if t in set(points["task"])]:
        fig = Figure(figsize=(6.4, 4.8))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        if ref is not None and task in set(ref["task"]):
            curve = reference_curve(ref, task)
            ax.plot(curve.mflops, curve.perf, "k--o", markersize=3, linewidth=1, label="reference (p_EB)")
        mine = points[points["task"] == task]
        for model, series in mine.groupby("model", sort=True):
            series = series.sort_values("mflops")
            style = "-o" if len(series) > 1 else "o"
            ax.plot(series["mflops"], series["perf"], style, markersize=4, label=model)
        ax.set_xlabel(f"MFLOPs per instance (mean over {split} instances)")
        ax.set_ylabel(f"{METRIC_NAMES[get_task(task).metric]} ×100")
        ax.set_title(f"{task} ({split})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = out_dir / f"pareto_{task}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        paths.append(path)
    return paths


__all__ = ["pareto_plots", "pareto_points"]
