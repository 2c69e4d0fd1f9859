"""The "actual inference time" comparison: measured speed-up beside FLOPs speed-up (docs/timing.md).

For every timed method and sweep point of a task (seed means):
  flops_speedup   = MFLOPs(full model) / MFLOPs(point)          from runs.csv, `split` (test by default)
  speedup_b<N>    = wall_ms(full model) / wall_ms(point)         at batch size N, from the timing stage
  ratio_b<N>      = speedup_b<N> / flops_speedup                 1.0: every saved FLOP is saved time
The full model is the deepest static model of the task (the config's one backbone with all the layers
it trains), timed in the same timing stage (same job, device and threads); without one, no speed-ups.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hashee.core.errors import HasheeError
from hashee.core.io import atomic_path, write_text_atomic
from hashee.core.settings import backbone_label
from hashee.core.tasks import TASKS
from hashee.measure.plots import HASHEE, Palette
from hashee.measure.results import KEY_COLUMNS, parse_setting, read_csv_checked, read_runs

TIMING_REQUIRED = [*KEY_COLUMNS, "batch_size", "wall_ms", "device", "threads", "dtype"]


def read_timing(paths) -> pd.DataFrame:
    """The timing stage's CSVs (`hashee time`), concatenated; bad or missing columns name the file."""
    floats = ("wall_ms", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "throughput")
    frames = [read_csv_checked(path, TIMING_REQUIRED, "timing", floats=floats, ints=("seed", "batch_size", "threads"))
              for path in paths]
    if not frames:
        raise HasheeError("inference-time: no timing files given")
    return pd.concat(frames, ignore_index=True)


def _depth(setting: str) -> int:
    return int(parse_setting(setting).get("layers") or 0)


def _backbone(setting: str) -> str:
    """The `backbone=` label of a run on another backbone than the config's ('' for the config's own)."""
    return backbone_label(setting) or ""


def inference_time_table(runs: pd.DataFrame, times: pd.DataFrame, *, split: str = "test") -> pd.DataFrame:
    """One row per timed (task, method, setting): MFLOPs, FLOPs speed-up, and per batch size the
    wall ms per instance, the measured speed-up and measured/FLOPs. Tasks in the task table's order."""
    flops = (runs[runs["split"] == split].groupby(["task", "method", "setting"])["mflops"].mean())
    timed = (times.groupby(["task", "method", "setting", "batch_size"])
             [["wall_ms", "latency_ms_p50", "latency_ms_p99"]].mean().reset_index())
    missing = timed[~timed.set_index(["task", "method", "setting"]).index.isin(flops.index)]
    if len(missing):
        row = missing.iloc[0]
        raise HasheeError(f"inference-time: timing of {row['task']} {row['method']} [{row['setting']}] has no "
                          f"{split} row in runs.csv (setting strings disagree?)")
    from hashee.core.methods import reference_method

    full_method = reference_method()  # the static model: the full model of every backbone
    timed = timed.assign(backbone=timed["setting"].map(_backbone))
    full = timed[timed["method"] == full_method].assign(depth=lambda f: f["setting"].map(_depth))
    # per task and backbone, its deepest static model: a method is compared with the full model of its own backbone
    full = full[full["depth"] == full.groupby(["task", "backbone"])["depth"].transform("max")]
    full_ms = full.set_index(["task", "backbone", "batch_size"])["wall_ms"]
    full_flops = {(task, backbone): flops[(task, full_method, setting)]
                  for task, backbone, setting in zip(full["task"], full["backbone"], full["setting"])}
    order = {name: i for i, name in enumerate(TASKS)}
    rows = []
    for (task, method, setting), group in timed.groupby(["task", "method", "setting"], sort=False):
        mflops = flops[(task, method, setting)]
        backbone = _backbone(setting)
        reference = full_flops.get((task, backbone))
        row = {"task": task, "method": method, "setting": setting, "mflops": mflops,
               "flops_speedup": reference / mflops if reference else np.nan}
        for point in group.itertuples():
            size = point.batch_size
            base = full_ms.get((task, backbone, size), np.nan)
            row[f"ms_b{size}"] = point.wall_ms
            row[f"p50_ms_b{size}"], row[f"p99_ms_b{size}"] = point.latency_ms_p50, point.latency_ms_p99
            row[f"speedup_b{size}"] = base / point.wall_ms
            row[f"ratio_b{size}"] = row[f"speedup_b{size}"] / row["flops_speedup"]
        rows.append(row)
    table = pd.DataFrame(rows)
    table = table.assign(_order=table["task"].map(lambda t: order.get(t, len(order))))
    return table.sort_values(["_order", "method", "flops_speedup", "setting"]).drop(columns="_order").reset_index(drop=True)


def batch_sizes(table: pd.DataFrame) -> list[int]:
    return sorted(int(c.removeprefix("speedup_b")) for c in table.columns if c.startswith("speedup_b"))


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table as printed: rounded numbers, '–' where there is no full model to compare with."""
    columns = {"task": "task", "method": "method", "setting": "setting", "mflops": "MFLOPs",
               "flops_speedup": "FLOPs speed-up"}
    for size in batch_sizes(table):
        columns.update({f"ms_b{size}": f"ms/inst. b{size}", f"p99_ms_b{size}": f"p99 ms/call b{size}",
                        f"speedup_b{size}": f"measured speed-up b{size}", f"ratio_b{size}": f"measured/FLOPs b{size}"})
    shown = table[list(columns)].rename(columns=columns)
    from hashee.measure.tables import BEYOND_PAPER, beyond_paper

    shown["method"] = [f"{m} ({BEYOND_PAPER})" if beyond_paper(m) else m for m in shown["method"]]

    def cell(value, digits):
        return "–" if pd.isna(value) else f"{value:.{digits}f}"

    for name in shown.columns[3:]:
        digits = 1 if name == "MFLOPs" else 3
        shown[name] = [cell(v, digits) for v in shown[name]]
    return shown


def caption_notes(times: pd.DataFrame, config_name: str | None = None, tables_dir=None) -> list[str]:
    from hashee.core.methods import available_methods, reference_method
    from hashee.measure.provenance import table_note

    devices = ", ".join(sorted(set(times["device"])))
    threads = ", ".join(str(t) for t in sorted(set(times["threads"])))
    notes = [f"Measured by the timing stage alone on its device ({devices}; {threads} thread(s); "
             f"dtype {', '.join(sorted(set(times['dtype'])))}), predictions only, after warm-up: batch 1 runs "
             "the instances one at a time. ms/inst.: total time / instances; p99 ms/call: 99th percentile of a "
             "call's latency (at batch 1, an instance's).",
             f"Speed-ups against the full model (the deepest {reference_method()} model of the backbone), timed in "
             "the same stage; FLOPs speed-up from the mean test MFLOPs. measured/FLOPs 1.0: every saved FLOP "
             "saved time."]
    registry = available_methods()
    batch_one = sorted(m for m in set(times["method"]) if getattr(registry.get(m), "official_batch_one", False))
    if batch_one:
        notes.append(f"{', '.join(batch_one)}: the official code runs batch 1 only; here they run batched, "
                     "with exited instances leaving the batch.")
    if "cpu" in devices.lower():
        notes.append("CPU timings: indicative of this machine only.")
    if config_name:
        notes.append(f"Config: {config_name}.")
    return notes + table_note(tables_dir)


def inference_time_plots(table: pd.DataFrame, out_dir) -> list[Path]:
    """plots/inference_time_<TASK>.png: measured vs FLOPs speed-up, one panel per batch size, a
    marker per sweep point, the diagonal where measured = FLOPs."""
    out_dir, paths = Path(out_dir), []
    sizes = batch_sizes(table)
    for task in [t for t in TASKS if t in set(table["task"])]:
        mine = table[table["task"] == task]
        palette = Palette(mine["method"], mine.loc[mine["method"] == HASHEE, "setting"])
        fig = Figure(figsize=(5.2 * len(sizes), 4.6))
        FigureCanvasAgg(fig)
        top = np.nanmax([mine["flops_speedup"].max(), *(mine[f"speedup_b{s}"].max() for s in sizes), 1.0]) * 1.1
        for number, size in enumerate(sizes, start=1):
            ax = fig.add_subplot(1, len(sizes), number)
            ax.plot([0, top], [0, top], "k--", linewidth=1, label="measured = FLOPs")
            for label, series in mine.groupby(mine.apply(lambda row: Palette.legend_label(row["method"], row["setting"]), axis=1), sort=True):
                color, marker = palette.color_marker(series["method"].iloc[0], series["setting"].iloc[0])
                ax.plot(series["flops_speedup"], series[f"speedup_b{size}"], marker, color=color, markersize=5,
                        linestyle="none", label=label)
            ax.set_xlim(0, top)
            ax.set_ylim(0, top)
            ax.set_xlabel("FLOPs speed-up vs the full model")
            ax.set_ylabel("measured speed-up")
            ax.set_title(f"{task}, batch {size}")
            ax.grid(alpha=0.3)
            if number == len(sizes):  # one legend, outside the axes, as on the Pareto plots
                ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        fig.tight_layout()
        path = out_dir / f"inference_time_{task}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        paths.append(path)
    return paths


def write_inference_time(runs_path, time_paths, out_dir, plots_dir=None, config_name: str | None = None) -> pd.DataFrame:
    """tables/inference_time.{md,csv,tex} (+ the plots into `plots_dir`) from runs.csv and the timing CSVs."""
    from hashee.core.io import write_csv_atomic
    from hashee.measure.tables import to_latex, to_markdown

    times = read_timing(time_paths)
    table = inference_time_table(read_runs(runs_path), times)
    out_dir = Path(out_dir)
    notes = caption_notes(times, config_name, out_dir)
    write_csv_atomic(out_dir / "inference_time.csv", table)
    shown = display_table(table)
    write_text_atomic(out_dir / "inference_time.md", to_markdown(shown, notes))
    write_text_atomic(out_dir / "inference_time.tex", to_latex(shown, notes))
    if plots_dir:
        inference_time_plots(table, plots_dir)
    return table


__all__ = ["display_table", "inference_time_plots", "inference_time_table", "read_timing",
           "write_inference_time"]
