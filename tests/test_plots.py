"""Readable Pareto plots: fixed colors per method, the static line apart, the legend outside the axes,
sweeps joined in FLOPs order, the paper's points on request."""

import math

import numpy as np
import pandas as pd
import pytest

from hashee.measure.plots import HASH_STYLES, method_styles, pareto_figure, pareto_points
from hashee.measure.results import ROW_COLUMNS

SWEEP_KEYS = {"static": (), "hashee": (), "pabee": ("patience",), "cascadebert": ("threshold",),
              "berxit": ("threshold",), "my-plugin": ()}
REF = pd.DataFrame({"task": "SST-2", "layers": [1, 2, 3], "perf": [80.0, 84.0, 86.0],
                    "mflops": [1000.0, 2000.0, 3000.0], "provenance": "measured"})


def _row(method, setting, perf, mflops, speedup=None, task="SST-2"):
    return {"task": task, "method": method, "setting": setting, "seed": 1, "split": "test", "metric": "acc",
            "perf": perf, "mflops": mflops, "speedup": 12000.0 / mflops if speedup is None else speedup,
            "wall_ms": math.nan, "device": "cpu", "n_instances": 10}


def _runs():
    rows = [_row("static", f"layers={k}", p, f) for k, p, f in ((1, 80.0, 1000.0), (2, 84.0, 2000.0),
                                                                  (3, 86.0, 3000.0))]
    # Sweep rows in an order that zig-zags if plotted as listed.
    rows += [_row("pabee", f"layers=6,patience={p}", perf, f)
             for p, perf, f in ((3, 85.0, 2600.0), (1, 82.0, 1500.0), (2, 84.0, 2100.0))]
    rows += [_row("cascadebert", f"layers=6,threshold={t}", perf, f)
             for t, perf, f in ((0.9, 86.5, 2900.0), (0.5, 83.0, 1200.0))]
    rows += [_row("berxit", "layers=6,threshold=0.1", 83.0, 1800.0)]
    rows += [_row("hashee", f"hash={h},layers=6", perf, f)
             for h, perf, f in (("frequency", 85.5, 1700.0), ("mi", 85.0, 1900.0), ("rand-cons", 84.0, 2000.0))]
    rows += [_row("my-plugin", "layers=2", 81.0, 1100.0)]
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


def _figure(**kwargs):
    points = pareto_points(_runs(), sweep_keys=SWEEP_KEYS)
    return pareto_figure(points, REF, "SST-2", **kwargs)


def _lines(fig):
    ax = fig.axes[0]
    return {line.get_label(): line for line in ax.get_lines()}


def test_each_method_and_hash_has_its_own_color():
    lines = _lines(_figure())
    by_family = {}
    for label, line in lines.items():
        family = label.split(" (")[0] if label.startswith("HashEE") else label.split(" ")[0]
        by_family.setdefault(family, set()).add((line.get_color(), line.get_marker()))
    assert all(len(styles) == 1 for styles in by_family.values()), by_family
    colors = [next(iter(s))[0] for s in by_family.values()]
    assert len(colors) == len(set(colors)), by_family  # no two methods (or hashes) share a color
    assert {"static", "pabee", "cascadebert", "berxit", "my-plugin"} <= set(by_family)
    assert lines["pabee layers=6 (3 sweep points)"].get_color() == method_styles()["pabee"][0]
    assert lines["HashEE hash=mi,layers=6"].get_color() == HASH_STYLES["mi"][0]


def test_the_legend_names_each_method_by_its_class_label():
    """`label` (default: the id, which a plugin inherits) is how plots name a method: HashEE's class says
    "HashEE"; the baselines and an unregistered plugin keep their ids."""
    from hashee.core.hashee_method import HashEE
    from hashee.core.methods import Method

    assert HashEE.display_label() == "HashEE" and Method.label == ""
    labels = set(_lines(_figure()))
    assert {"HashEE hash=frequency,layers=6", "berxit layers=6", "my-plugin layers=2"} <= labels, labels
    assert not any(label.startswith("hashee ") for label in labels), labels


def test_static_is_one_black_line_and_stands_for_the_reference_it_equals():
    lines = _lines(_figure())
    static = [label for label in lines if label.startswith("static")]
    assert static == ["static (1–3 layers) = reference p_EB"]
    assert lines[static[0]].get_color() == "black"
    assert not any("ELUE reference" in label for label in lines)  # drawn once, as the static line
    other = REF.assign(perf=REF["perf"] - 1.0)  # a published curve: its own dashed line
    points = pareto_points(_runs(), sweep_keys=SWEEP_KEYS)
    labels = list(_lines(pareto_figure(points, other, "SST-2")))
    assert "static (1–3 layers)" in labels and any(label.startswith("ELUE reference p_EB") for label in labels)


def test_sweep_points_are_joined_in_flops_order():
    for label, line in _lines(_figure()).items():
        x = np.asarray(line.get_xdata(), dtype=float)
        assert (np.diff(x) >= 0).all(), label


def test_legend_lies_outside_the_axes():
    fig = _figure()
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1
    assert len(ax.get_legend().get_texts()) == len(ax.get_lines())


def test_axes_name_their_units():
    fig = _figure()
    ax = fig.axes[0]
    assert "MFLOPs per instance" in ax.get_xlabel() and "accuracy ×100" in ax.get_ylabel()
    tops = [child for child in ax.child_axes if "speed-up" in child.get_xlabel()]
    assert tops, "no speed-up axis"


def test_paper_points_only_on_request_at_their_speedup():
    assert not any(label.startswith("paper:") for label in _lines(_figure()))
    lines = _lines(_figure(paper=True))
    paper = {label: line for label, line in lines.items() if label.startswith("paper:")}
    assert "paper: HashEE (4.8×)" in paper and "paper: BERxiT w/ ElasticBERT (4.4×)" in paper
    # the paper's PABEE ran on BERT-base: not beside a PABEE run on the config's backbone (ElasticBERT)
    assert not any(label.startswith("paper: PABEE") for label in paper)
    # BERT-base costs 12000 MFLOPs here (mflops x speedup), so 4.8x sits at 2500 MFLOPs.
    assert paper["paper: HashEE (4.8×)"].get_xdata()[0] == pytest.approx(12000.0 / 4.8)
    assert paper["paper: HashEE (4.8×)"].get_markerfacecolor() == "none"


def test_bootstrap_intervals_are_bars_in_the_model_color():
    from matplotlib.collections import LineCollection

    from hashee.measure.bootstrap import Bootstrap

    runs = _runs()
    test = runs[runs["method"].isin(["pabee", "static"])]
    keys = test[["task", "method", "setting", "seed"]]
    spread = np.linspace(-2.0, 2.0, 200)
    boot = Bootstrap(keys, np.stack([p + spread for p in test["perf"]]), np.stack([np.full(200, f) for f in test["mflops"]]),
                     np.ones(len(test), bool), replicates=200)
    points = pareto_points(runs, sweep_keys=SWEEP_KEYS)
    fig = pareto_figure(points, REF, "SST-2", boot=boot)
    bars = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert len(bars) == 2  # pabee's and static's; the others have no replicates
    by_color = {tuple(np.round(c.get_colors()[0][:3], 3)): c for c in bars}
    from matplotlib.colors import to_rgb

    pabee = by_color[tuple(np.round(to_rgb(method_styles()["pabee"][0]), 3))]
    for (x0, y0), (x1, y1) in pabee.get_segments():
        perf = test.loc[(test["method"] == "pabee") & (test["mflops"] == x0), "perf"].iloc[0]
        assert x0 == x1 and y0 < perf < y1 and y1 - y0 < 4.0
    assert "bootstrap intervals" in fig.axes[0].get_title(loc="left")
    assert not [c for c in pareto_figure(points, REF, "SST-2").axes[0].collections if isinstance(c, LineCollection)]
