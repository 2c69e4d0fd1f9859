"""Pareto plots: perf vs MFLOPs per task, every method, with the ELUE reference curve.

Figures are drawn on the Agg canvas directly (no pyplot), so importing this module changes no
global matplotlib backend state.

Readability decisions (docs/elue.md, "Plots"):
- Each method is named by its class's `label` and has one fixed color and marker (its class's `plot_style`), the
  same in every plot; HashEE's hashes are one red family, one marker per hash (`HASH_STYLES`). Methods without one (plugins)
  get colors from `_SPARE_COLORS` in name order. Several models of one method share its color and
  differ in line style.
- The static model (the class with `is_reference`) is the reference: one black line per static model, one legend entry
  ("static (1–6 layers)"), not one per depth. The ELUE reference curve p_EB is a grey dashed line,
  left out when it is the static line itself (the default config measures it from the static runs).
- A model's sweep points are joined in MFLOPs order, so a line never zig-zags back.
- The legend sits outside the axes (right of them), so it covers no data.
- Bottom axis: mean MFLOPs per instance; top axis: the speed-up vs BERT-base it corresponds to
  (speed-up = BERT-base MFLOPs / MFLOPs; the BERT-base MFLOPs of the task's test set is read off the
  rows, mflops × speedup).
- With bootstrap replicates (`boot`, docs/uncertainty.md) each point gets a vertical bar: the 95 %
  interval of its perf over test instances, in the model's color.
- Optionally (`paper=True`), the paper's published points for the models we ran (hollow markers in
  the method's color, placed at the BERT-base MFLOPs / published speed-up). Off by default: they are
  only comparable on the paper's backbone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hashee.core.hashee_method import HashEE
from hashee.core.io import atomic_path
from hashee.core.methods import available_methods, method_label, reference_method
from hashee.core.tasks import METRIC_NAMES, TASKS, get_task
from hashee.measure.bootstrap import Bootstrap, interval
from hashee.measure.results import load_paper, method_sweep_keys, parse_setting, split_setting
from hashee.measure.score import reference_curve
from hashee.measure.tables import paper_model

# The two methods the plots draw their own way: the reference (static) curve, one black line, and HashEE,
# a red per hash.
HASHEE = HashEE.name


def method_styles() -> dict[str, tuple[str, str]]:
    """method -> (color, marker), each registered class's `plot_style`: fixed, so a method looks the same
    in every plot."""
    return {name: cls.plot_style for name, cls in available_methods().items() if cls.plot_style}
# HashEE's hashes: one red family (dark to light), one marker each.
HASH_STYLES: dict[str, tuple[str, str]] = {
    "frequency": ("#a50f15", "*"),
    "mi": ("#de2d26", "X"),
    "clustered": ("#fb6a4a", "p"),
    "rand-cons": ("#67000d", "h"),
    "rand-incons": ("#e7298a", "8"),
}
_SPARE_COLORS = ("tab:pink", "tab:gray", "gold", "teal", "navy", "lime", "sienna", "slateblue")
_SPARE_MARKERS = ("o", "d", "H", "1", "2", "3", "4", "+")
_LINESTYLES = ("-", "--", ":", "-.")
REFERENCE_COLOR = "0.55"


def pareto_points(runs: pd.DataFrame, *, split: str = "test",
                  sweep_keys: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """Seed-mean (perf, mflops, speedup) per (task, method, setting) on `split`, each labelled with its
    `model`: the method and its setting without the method's sweep keys (`sweep_keys`: method ->
    keys, by default the registry's), so one trained model's sweep is one series; `base` is that
    setting part alone."""
    rows = runs[(runs["split"] == split) & runs["perf"].notna() & runs["mflops"].notna()]
    if sweep_keys is None:
        sweep_keys = method_sweep_keys(rows["method"])
    points = (rows.groupby(["task", "method", "setting"], sort=False)[["perf", "mflops", "speedup"]]
              .mean().reset_index())
    points["base"] = [split_setting(s, sweep_keys[m])[0] for m, s in zip(points["method"], points["setting"])]
    points["model"] = [f"{m} {b}".strip() for m, b in zip(points["method"], points["base"])]
    return points


class Palette:
    """Color and marker per method (per hash for HashEE): fixed, so a method looks the same in every plot
    (the Pareto plots here, the inference-time plots of hashee.measure.inference_time). Methods and hashes
    without a fixed style get spare ones, in name order, from `methods` / `hashee_settings`."""

    def __init__(self, methods, hashee_settings):
        self.reference = reference_method()
        self.methods = method_styles()
        others = sorted(set(methods) - set(self.methods) - {self.reference, HASHEE})
        for i, method in enumerate(others):
            self.methods[method] = (_SPARE_COLORS[i % len(_SPARE_COLORS)], _SPARE_MARKERS[i % len(_SPARE_MARKERS)])
        hashes = sorted({parse_setting(setting).get("hash", "") for setting in hashee_settings} - set(HASH_STYLES))
        spare_reds = ("#fcbba1", "#cb181d", "#99000d", "#fc9272")
        self.hashes = dict(HASH_STYLES)
        for i, name in enumerate(hashes):
            self.hashes[name] = (spare_reds[i % len(spare_reds)], _SPARE_MARKERS[i % len(_SPARE_MARKERS)])

    @staticmethod
    def legend_label(method: str, setting: str) -> str:
        """A method's legend entry (its class's `label`, marked where it is beyond the paper); HashEE's hashes
        one entry each."""
        from hashee.measure.tables import BEYOND_PAPER, beyond_paper

        fields = parse_setting(setting)
        if method == HASHEE and "hash" in fields:
            return f"{method_label(method)} {fields['hash']}"
        return f"{method_label(method)} ({BEYOND_PAPER})" if beyond_paper(method) else method_label(method)

    def color_marker(self, method: str, setting: str) -> tuple[str, str]:
        if method == self.reference:
            return "black", "s"
        if method == HASHEE:
            return self.hashes[parse_setting(setting).get("hash", "")]
        return self.methods[method]


class Style(Palette):
    """The palette, plus a line style and legend label per model of a Pareto plot."""

    def __init__(self, points: pd.DataFrame):
        super().__init__(points["method"], [b for m, b in zip(points["method"], points["base"]) if m == HASHEE])
        # Several models of one method (or one hash): same color and marker, another line style.
        self.linestyle: dict[str, str] = {}
        families = points.apply(lambda point: self.legend_label(point["method"], point["base"]), axis=1)
        for _, models in points.groupby(families)["model"]:
            for i, model in enumerate(sorted(set(models))):
                self.linestyle[model] = _LINESTYLES[i % len(_LINESTYLES)]


def _without_layers(setting: str) -> str:
    return ",".join(f"{k}={v}" for k, v in parse_setting(setting).items() if k != "layers")


def _depth_label(series: pd.DataFrame, rest: str, method: str) -> str:
    depths = sorted(int(v) for v in (parse_setting(s).get("layers") for s in series["setting"])
                    if v is not None and v.isdigit())
    span = "" if not depths else f"{depths[0]} layer{'s' if depths[0] != 1 else ''}" if len(depths) == 1 \
        else f"{depths[0]}–{depths[-1]} layers"
    return " ".join(p for p in (method, rest, f"({span})" if span else "") if p)


def _static_is_reference(static: pd.DataFrame, ref: pd.DataFrame | None, task: str) -> bool:
    """True when the reference curve's knots are the static line's points (the measured reference)."""
    if ref is None or task not in set(ref["task"]) or static.empty:
        return False
    curve = reference_curve(ref, task)
    knots = static.groupby("mflops")["perf"].mean()
    return len(knots) == len(curve.mflops) and np.allclose(knots.index, curve.mflops, rtol=1e-3) \
        and np.allclose(knots.to_numpy(), curve.perf, atol=1e-2)


def paper_overlay(mine: pd.DataFrame, task: str, bert_base_mflops: float) -> pd.DataFrame:
    """The paper's published point for every model in `mine` that maps to a paper row (tables'
    `paper_model`): model, paper name, perf, speedup and mflops (= BERT-base MFLOPs / speed-up)."""
    published = load_paper("elue_test").set_index(["model", "task"])
    rows = []
    for method, base in sorted(set(zip(mine["method"], mine["base"]))):
        name = paper_model(method, base)
        if name is None or (name, task) not in published.index:
            continue
        perf, speedup = published.loc[(name, task), ["perf", "speedup"]]
        rows.append({"method": method, "base": base, "paper": name, "perf": float(perf),
                     "speedup": float(speedup), "mflops": bert_base_mflops / float(speedup)})
    return pd.DataFrame(rows, columns=["method", "base", "paper", "perf", "speedup", "mflops"])


_SPEEDUP_TICKS = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100)


def _speedup_axis(ax, bert_base: float) -> None:
    """A top axis in speed-up (BERT-base MFLOPs / MFLOPs). Speed-up is 1/x, so its ticks are picked by
    hand: round values, at least 7 % of the axis width apart (automatic ticks pile up at the left)."""
    def to_speedup(mflops):
        return bert_base / np.maximum(np.asarray(mflops, dtype=float), 1e-9)

    top = ax.secondary_xaxis("top", functions=(to_speedup, to_speedup))  # its own inverse
    lo, hi = ax.get_xlim()
    ticks, last = [], None
    for speed in sorted(_SPEEDUP_TICKS, reverse=True):  # left to right
        x = bert_base / speed
        if lo <= x <= hi and (last is None or x - last >= 0.07 * (hi - lo)):
            ticks.append(speed)
            last = x
    top.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    top.set_xlabel("speed-up vs BERT-base")


def _interval_bars(ax, series: pd.DataFrame, color: str, boot: Bootstrap | None, level: float) -> None:
    """Vertical bars: each point's perf interval (a LineCollection, so no legend entry)."""
    if boot is None:
        return
    bars = [(x, *interval(reps[0], level)) for x, reps in
            ((x, boot.seed_mean(t, m, s)) for x, t, m, s in
             zip(series["mflops"], series["task"], series["method"], series["setting"])) if reps is not None]
    if bars:
        x, lo, hi = zip(*bars)
        ax.vlines(x, lo, hi, colors=color, linewidth=1.0, alpha=0.5, zorder=2.5)


def pareto_figure(points: pd.DataFrame, ref: pd.DataFrame | None, task: str, *, split: str = "test",
                  paper: bool = False, style: Style | None = None, boot: Bootstrap | None = None,
                  level: float = 0.95) -> Figure:
    """One task's Pareto figure (see the module docstring) from `pareto_points` rows; `boot`: interval
    bars from bootstrap replicates of the `split` points."""
    style = style or Style(points)
    mine = points[points["task"] == task]
    fig = Figure(figsize=(9.0, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    static = mine[mine["method"] == style.reference]
    static = static.assign(line=[_without_layers(b) for b in static["base"]])  # depths of one model: one line
    ref_is_static = _static_is_reference(static, ref, task)
    if ref is not None and task in set(ref["task"]) and not ref_is_static:
        curve = reference_curve(ref, task)
        ax.plot(curve.mflops, curve.perf, "--", color=REFERENCE_COLOR, marker=".", linewidth=1.2, zorder=1,
                label=f"ELUE reference p_EB ({len(curve.mflops)} points)")
    for number, (line, series) in enumerate(static.groupby("line", sort=True)):
        series = series.sort_values(["mflops", "perf"])
        label = _depth_label(series, line, method_label(style.reference)) + (" = reference p_EB" if ref_is_static else "")
        ax.plot(series["mflops"], series["perf"], color="black", marker="s", markersize=4, linewidth=1.6,
                linestyle=_LINESTYLES[number % len(_LINESTYLES)], zorder=2, label=label)
        _interval_bars(ax, series, "black", boot, level)
    order = sorted(set(mine["model"]) - set(static["model"]),
                   key=lambda m: (m.split(" ")[0] == HASHEE, m))  # HashEE last, on top
    for model in order:
        series = mine[mine["model"] == model].sort_values(["mflops", "perf"])
        method, base = series["method"].iloc[0], series["base"].iloc[0]
        color, marker = style.color_marker(method, base)
        big = 9 if marker in "*X" else 6
        ax.plot(series["mflops"], series["perf"], color=color, marker=marker, markersize=big,
                linestyle=style.linestyle[model] if len(series) > 1 else "none", linewidth=1.4, zorder=3,
                label=f"{method_label(method)} {base}".strip() + (f" ({len(series)} sweep points)" if len(series) > 1 else ""))
        _interval_bars(ax, series, color, boot, level)
    bert_base = float(np.median(mine["mflops"] * mine["speedup"])) if mine["speedup"].notna().any() else None
    if paper and bert_base:
        for item in paper_overlay(mine, task, bert_base).itertuples(index=False):
            color, marker = style.color_marker(item.method, item.base)
            ax.plot([item.mflops], [item.perf], linestyle="none", marker=marker, markersize=11,
                    markerfacecolor="none", markeredgecolor=color, markeredgewidth=1.6, zorder=4,
                    label=f"paper: {item.paper} ({item.speedup:.1f}×)")
    if bert_base:
        _speedup_axis(ax, bert_base)
    ax.set_xlabel(f"MFLOPs per instance (mean over {split} instances)")
    ax.set_ylabel(f"{get_task(task).name} {METRIC_NAMES[get_task(task).metric]} ×100 ({split})")
    bars = f"; bars: {level:.0%} bootstrap intervals over test instances" if boot is not None else ""
    ax.set_title(f"{task}: performance vs cost, seed means{bars}", loc="left", fontsize="medium", pad=34)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small", frameon=False)
    return fig


def pareto_plots(runs: pd.DataFrame, ref: pd.DataFrame | None, out_dir, *, split: str = "test",
                 sweep_keys: dict[str, tuple[str, ...]] | None = None, paper: bool = False,
                 boot: Bootstrap | None = None, level: float = 0.95) -> list[Path]:
    """Write pareto_<TASK>.png per task with results on `split` (`pareto_figure`); return the paths.
    `paper`: overlay the paper's published points (only meaningful on the paper's backbone); `boot`:
    interval bars (test replicates, so only with split 'test')."""
    points = pareto_points(runs, split=split, sweep_keys=sweep_keys)
    if points.empty:
        return []
    style = Style(points)
    boot = boot if split == "test" else None  # the replicates are of test points
    figures = {task: pareto_figure(points, ref, task, split=split, paper=paper, style=style, boot=boot, level=level)
               for task in TASKS if task in set(points["task"])}
    out_dir = Path(out_dir)
    paths = []
    for task, fig in figures.items():
        path = out_dir / f"pareto_{task}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        paths.append(path)
    return paths


__all__ = ["HASH_STYLES", "method_styles", "Style", "paper_overlay", "pareto_figure", "pareto_plots",
           "pareto_points"]
