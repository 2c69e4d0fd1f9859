"""The ELUE study's tables (ELUE test table, hash ablation) in Markdown, CSV and LaTeX, with the paper's
numbers side by side; what they share with the other studies' tables is in hashee.measure.tables.

ELUE table decisions:
- One row per model: (method, setting without sweep keys). A dynamic method's sweep (entropy
  threshold, patience, …; its class's `sweep_keys`) gives several points per task for one model; the
  table shows, per task, the single point with the best ELUE gap (perf − p_EB), chosen on the
  `select_on` split (dev by default, so the test numbers are not selected on test). Where a
  candidate lacks a dev row the choice falls back to the test gap and the cell is marked †.
  "ELUE (all points)" scores every sweep point, as the leaderboard does for a submitted curve.
- A cell is mean ± sample std (ddof 1) of perf over seeds (std only with >1 seed) and the mean
  speed-up; the ELUE score scores the seed-mean point (mean perf at mean MFLOPs).
- A row missing a task of the table shows "–" there and gets no score (ELUE scores only complete
  submissions; the paper leaves such rows unscored too).
- Paper rows are quoted from hashee/paper/*.csv; Δ is computed from the displayed (rounded)
  values so that it checks by hand. A paper row that none of our models maps to is still shown, at the
  end, marked "paper only" (its method: the class whose `paper_rows` name it, if one is registered), so
  the table always has every row of the paper's.
- Where the table's models run on more than one backbone (a `backbone=<label>` setting key beside the
  config's own backbone), a `backbone` column names each row's: the key's label, else `own_backbone`.
- With a bootstrap (`hashee.measure.bootstrap`, docs/uncertainty.md) every perf cell and ELUE score
  also shows its 95 % percentile interval over test instances, [lo, hi], and ≈ marks a difference
  that lies inside its interval: a cell whose gap to p_EB at its MFLOPs has an interval holding 0,
  an ELUE score whose interval holds 0, a Δ cell whose paper value lies inside our interval.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from hashee.core.errors import HasheeError
from hashee.core.hashee_method import HashEE
from hashee.core.io import write_text_atomic
from hashee.core.settings import backbone_label, natural_key
from hashee.core.tasks import TASKS, get_task
from hashee.measure.bootstrap import (
    Bootstrap,
    interval,
    load_bootstrap,
    reference_replicates,
    score_replicates,
)
from hashee.measure.provenance import table_note
from hashee.measure.results import load_paper, method_sweep_keys, parse_setting, read_runs, split_setting
from hashee.measure.score import (
    check_reference,
    describe_policy,
    elue_score,
    paper_score_inconsistency,
    point_gaps,
    read_reference,
)
from hashee.measure.tables import (
    BEYOND_PAPER,
    DASH,
    DELTA,
    INSIDE,
    PAPER_ONLY,
    SYNTHETIC_CONFIGS,
    beyond_paper,
    bounds,
    by_setting,
    delta,
    holds,
    method_order,
    paper_model,
    paper_row_owner,
    perf_cell,
    to_latex,
    to_markdown,
)

__all__ = ["ABLATION_TASKS", "elue_table", "hash_ablation_table", "score_cell", "table_notes", "uncertainty_note",
           "write_tables"]

ABLATION_TASKS = ("SST-2", "SNLI", "MRPC")
_PAPER_HASHES = ("Rand-incons", "Rand-cons", "Frequency", "MI", "Clustered")


def _seed_means(runs: pd.DataFrame, sweep_keys: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """One row per (method, setting, task, split): seed statistics; base/sweep parts of setting
    (`sweep_keys`: method -> its sweep keys)."""
    rows = runs[runs["perf"].notna()]
    for task in dict.fromkeys(rows["task"]):
        get_task(task)  # unknown task names fail here, with the valid ones listed
    backbone = rows["backbone"].fillna("").astype(str) if "backbone" in rows.columns else pd.Series("", index=rows.index)
    rows = rows.assign(_backbone=backbone)
    agg = (rows.groupby(["method", "setting", "task", "split"], sort=False)
           .agg(perf=("perf", "mean"), std=("perf", "std"), n_seeds=("seed", "nunique"),
                mflops=("mflops", "mean"), speedup=("speedup", "mean"), backbone=("_backbone", "first"))
           .reset_index())
    parts = [split_setting(s, sweep_keys[m]) for m, s in zip(agg["method"], agg["setting"])]
    agg["base"] = [p[0] for p in parts]
    agg["sweep"] = [p[1] for p in parts]
    return agg


def _table_tasks(agg: pd.DataFrame, split: str) -> list[str]:
    present = set(agg.loc[agg["split"] == split, "task"])
    return [t for t in TASKS if t in present]


def score_cell(score: float | None, reps: np.ndarray | None, level: float, std: float | None = None) -> str:
    if score is None:
        return DASH
    text = f"{score:.2f}" + ("" if std is None else f" ± {std:.2f}")
    if reps is None:
        return text
    ci = interval(reps, level)
    return f"{text} {bounds(ci, 2)}" + (f" {INSIDE}" if holds(ci, 0.0) else "")


def _seed_score_std(rows: pd.DataFrame, method: str, points: list, ref: pd.DataFrame, beyond: str) -> float | None:
    """Sample std (ddof 1) over seeds of the ELUE score of `points` (task, setting) scored seed by seed;
    None with fewer than 2 seeds that have every point."""
    wanted = {(p["task"], p["setting"]) for p in points}
    mine = rows[(rows["method"] == method)
                & pd.Series(list(zip(rows["task"], rows["setting"])), index=rows.index).isin(wanted)]
    scores = [elue_score(seed_rows[["task", "perf", "mflops"]], ref, beyond)
              for _, seed_rows in mine.groupby("seed")
              if set(zip(seed_rows["task"], seed_rows["setting"])) == wanted]
    return float(np.std(scores, ddof=1)) if len(scores) > 1 else None


def _display_setting(base: str, sweep_keys: list[str]) -> str:
    swept = ",".join(f"{k}=*" for k in sweep_keys)
    return f"{base} [{swept}]".strip() if swept else base


def elue_table(runs: pd.DataFrame, ref: pd.DataFrame, beyond: str = "extend", paper: bool = True, *,
               split: str = "test", select_on: str = "dev",
               sweep_keys: dict[str, tuple[str, ...]] | None = None,
               boot: Bootstrap | None = None, level: float = 0.95, own_backbone: str | None = None) -> pd.DataFrame:
    """The ELUE table: one row per model (plus paper and Δ rows; then the paper's rows no model of ours
    maps to, "paper only"), cells 'perf (speed-up×)'. `own_backbone`: how the backbone column names the
    config's own backbone (its runs carry no backbone key).

    `sweep_keys` (method -> keys) defaults to the registry's (`results.method_sweep_keys`). With
    `boot` (replicates of the `split` points), cells and scores carry `level` intervals. Notes for
    under the table are in `table.attrs['notes']`.
    """
    describe_policy(beyond)  # an unknown policy fails before any work
    if sweep_keys is None:
        sweep_keys = method_sweep_keys(runs["method"])
    agg = _seed_means(runs, sweep_keys)
    tasks = _table_tasks(agg, split)
    check_reference(ref, tasks)
    shown = agg[agg["split"] == split]
    select = agg[agg["split"] == select_on] if select_on != split else shown
    paper_rows = load_paper("elue_test").set_index(["model", "task"]) if paper else None
    paper_scores = load_paper("elue_scores").set_index("model")["elue_score"] if paper else None
    ref_reps = reference_replicates(ref, boot, shown) if boot is not None else {}

    def replicates(point):  # (perf, mflops) replicates of a seed-mean point, or None
        return None if boot is None else boot.seed_mean(point["task"], point["method"], point["setting"])

    models = sorted(set(zip(shown["method"], shown["base"])), key=lambda mb: (method_order(mb[0]), natural_key(mb[1])))

    # Several backbones in one table: each row says which (runs on the config's own carry no backbone key).
    labels = {backbone_label(base) for base in shown["base"]}
    several = len(labels) > 1
    own = own_backbone or "config's backbone"

    records, notes, any_sweep, any_fallback, matched = [], [], False, False, set()
    for method, base in models:
        where = {"backbone": backbone_label(base) or own} if several else {}
        mine = shown[(shown["method"] == method) & (shown["base"] == base)]
        swept_keys = sorted({k for s in mine["sweep"] for k in parse_setting(s)})
        label = _display_setting(base, swept_keys)
        cells, chosen, all_points, choices, intervals = {}, [], [], [], {}
        for task in tasks:
            cand = by_setting(mine[mine["task"] == task])
            if cand.empty:
                cells[task] = DASH
                continue
            all_points.append(cand[["task", "method", "setting", "perf", "mflops"]])
            pick, mark = cand.iloc[0], ""
            if len(cand) > 1:
                any_sweep = True
                sel = select[(select["method"] == method) & (select["task"] == task)
                             & select["setting"].isin(cand["setting"])]
                if select_on != split and set(sel["setting"]) == set(cand["setting"]):
                    gaps = point_gaps(by_setting(sel), ref, beyond)
                    pick = cand[cand["setting"] == gaps.loc[gaps["gap"].idxmax(), "setting"]].iloc[0]
                else:
                    gaps = point_gaps(cand, ref, beyond)
                    pick = cand.loc[gaps["gap"].idxmax()]
                    if select_on != split:  # wanted another split, had to use this one
                        mark, any_fallback = "†", True
                choices.append(f"{task} {pick['sweep']}{mark}")
            chosen.append(pick)
            reps = replicates(pick)
            ci = inside = None
            if reps is not None:
                ci = intervals[task] = interval(reps[0], level)
                inside = holds(interval(score_replicates([(task, *reps)], ref_reps, beyond), level), 0.0)
            cells[task] = perf_cell(pick["perf"], pick["std"], int(pick["n_seeds"]), pick["speedup"],
                                     ci, bool(inside)) + mark
        complete = bool(tasks) and len(chosen) == len(tasks)
        score = elue_score(pd.DataFrame(chosen)[["task", "perf", "mflops"]], ref, beyond) if complete else None
        score_all = elue_score(pd.concat(all_points), ref, beyond) if complete else None
        score_reps = score_all_reps = None
        if complete and boot is not None:
            picked = [replicates(p) for p in chosen]
            every = [replicates(p) for p in pd.concat(all_points).to_dict("records")]
            if all(r is not None for r in picked):
                score_reps = score_replicates([(p["task"], *r) for p, r in zip(chosen, picked)], ref_reps, beyond)
            if all(r is not None for r in every):
                score_all_reps = score_replicates(
                    [(p["task"], *r) for p, r in zip(pd.concat(all_points).to_dict("records"), every)],
                    ref_reps, beyond)
        seed_rows = runs[(runs["split"] == split) & runs["perf"].notna()]
        score_std = _seed_score_std(seed_rows, method, chosen, ref, beyond) if complete else None
        all_std = _seed_score_std(seed_rows, method, pd.concat(all_points).to_dict("records"), ref, beyond) \
            if complete else None
        records.append({"method": method, **where, "setting": label,
                        "row": f"ours, {BEYOND_PAPER}" if beyond_paper(method) else "ours", **cells,
                        "ELUE score": score_cell(score, score_reps, level, score_std),
                        "ELUE (all points)": score_cell(score_all, score_all_reps, level, all_std)})
        if choices:
            notes.append(f"{method} {label}: best point per task: {', '.join(choices)}.")

        name = paper_model(method, base, mine["backbone"].iloc[0] or None) if paper else None
        if name is None or name not in paper_rows.index.get_level_values("model"):
            continue
        matched.add(name)
        p_cells, d_cells = {}, {}
        picks = {p["task"]: p for p in chosen}
        for task in tasks:
            if (name, task) not in paper_rows.index:
                p_cells[task] = d_cells[task] = DASH
                continue
            pp, ps = paper_rows.loc[(name, task), ["perf", "speedup"]]
            p_cells[task] = f"{pp:.1f} ({ps:.1f}×)"
            ours = picks.get(task)
            d_cells[task] = DASH if ours is None else \
                f"{delta(ours['perf'], pp, 1):+.1f} ({delta(ours['speedup'], ps, 1):+.1f}×)" \
                + (f" {INSIDE}" if holds(intervals.get(task), pp) else "")
        p_score = paper_scores.get(name)
        records.append({"method": method, **where, "setting": name, "row": "paper", **p_cells,
                        "ELUE score": DASH if p_score is None else f"{p_score:.2f}",
                        "ELUE (all points)": DASH})
        score_inside = score_reps is not None and p_score is not None and holds(interval(score_reps, level), p_score)
        records.append({"method": method, **where, "setting": name, "row": DELTA, **d_cells,
                        "ELUE score": DASH if score is None or p_score is None
                        else f"{delta(score, p_score, 2):+.2f}" + (f" {INSIDE}" if score_inside else ""),
                        "ELUE (all points)": DASH})

    only = _paper_only_rows(paper_rows, paper_scores, matched, tasks, several) if paper else []
    records += only
    ids = ["method", "backbone", "setting", "row"] if several else ["method", "setting", "row"]
    columns = [*ids, *tasks, "ELUE score"] + (["ELUE (all points)"] if any_sweep else [])
    table = pd.DataFrame(records, columns=[*ids, *tasks, "ELUE score", "ELUE (all points)"])[columns]
    head = [f"Cells: {split} perf ×100 (mean ± sample std over seeds when >1 seed) and mean speed-up "
            "(FLOPs relative to BERT-base) in parentheses; the ELUE score scores the seed-mean point "
            "(± sample std of the scores seed by seed, when >1 seed)."]
    if any_sweep:
        head.append(f"Dynamic methods: per task the sweep point with the best ELUE gap on {select_on} is shown"
                    + (f" († chosen on {split}: no {select_on} rows)" if any_fallback else "")
                    + "; 'ELUE (all points)' scores every sweep point.")
    if paper:
        head.append(f"Paper rows quoted from the paper's ELUE table; {DELTA} from the displayed values.")
    if only:
        head.append(f"'{PAPER_ONLY}': a row of the paper's table that no model of this run maps to, quoted so that "
                    "the table has all of the paper's rows (not measured here).")
    extra = [m for m in dict.fromkeys(m for m, _ in models) if beyond_paper(m)]
    if extra:
        head.append(f"Rows marked '{BEYOND_PAPER}' ({', '.join(extra)}): methods the paper does not compare with.")
    if several:
        head.append(f"backbone: the label of the backbone each row ran on ({own}: the config's own backbone).")
    if boot is not None:
        head.append(uncertainty_note(boot, level, ref_reps))
    table.attrs["notes"] = head + notes
    return table


def _paper_only_rows(paper_rows: pd.DataFrame, paper_scores: pd.Series, matched: set, tasks: list[str],
                     several: bool) -> list[dict]:
    """The paper's ELUE rows that no model of ours mapped to, in the paper's order: its cells and score quoted;
    the method is the registered class whose `paper_rows` name the row (blank while none does), the
    backbone that class's family for the row."""
    records = []
    for name in dict.fromkeys(paper_rows.index.get_level_values("model")):
        if name in matched:
            continue
        method, family = paper_row_owner(name)
        cells = {task: f"{paper_rows.loc[(name, task), 'perf']:.1f} ({paper_rows.loc[(name, task), 'speedup']:.1f}×)"
                 if (name, task) in paper_rows.index else DASH for task in tasks}
        score = paper_scores.get(name)
        records.append({"method": method or "", **({"backbone": family or DASH} if several else {}),
                        "setting": name, "row": PAPER_ONLY, **cells,
                        "ELUE score": DASH if score is None else f"{score:.2f}", "ELUE (all points)": DASH})
    return records


def uncertainty_note(boot: Bootstrap, level: float, ref_reps: dict | None = None) -> str:
    """What the intervals and ≈ marks mean, and how they were made."""
    text = (f"[lo, hi]: {level:.0%} bootstrap percentile interval over test instances ({boot.replicates} "
            "replicates, one resampling per task shared by every run, so comparisons are paired; seeds are "
            f"averaged replicate by replicate; docs/uncertainty.md). {INSIDE}: the difference lies inside its "
            "interval — a cell's gap to p_EB at its MFLOPs, an ELUE score's difference from 0 (the "
            f"reference curve), a {DELTA} cell's paper value.")
    if ref_reps:
        fixed = [t for t, (_, _, paired) in ref_reps.items() if not paired]
        text += (" The reference curve is resampled with the same instances." if not fixed else
                 f" Reference curve fixed (not our runs) on {', '.join(fixed)}.")
    if len(boot.keys) and not boot.all_flops_resampled():
        text += " Some runs have no per-instance FLOPs (predictions/flops.tsv): their MFLOPs are held at the mean."
    return text


def _norm_hash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def hash_ablation_table(runs: pd.DataFrame, paper: bool = True, *, split: str = "test",
                        method: str = HashEE.name, boot: Bootstrap | None = None, level: float = 0.95) -> pd.DataFrame:
    """Effect of the hash function: one row per (hash, layers[, other keys]); SST-2/SNLI/MRPC perf
    (mean ± std over seeds; with `boot`, its `level` interval over test instances) and speed-up (mean
    over the tasks shown), with paper and Δ rows (≈: the paper's value lies inside our interval)."""
    rows = runs[(runs["method"] == method) & (runs["split"] == split) & runs["perf"].notna()
                & runs["task"].isin(ABLATION_TASKS)]
    # The ablation is on the config's backbone: runs of the backbones experiment (backbone=<label>) are not.
    rows = rows.loc[rows["setting"].map(lambda s: backbone_label(s) is None).astype(bool)]
    parsed = [parse_setting(s) for s in rows["setting"]]
    rows = rows.assign(hash=[d.get("hash", "?") for d in parsed], layers=[d.get("layers", "") for d in parsed],
                       rest=[",".join(f"{k}={v}" for k, v in d.items() if k not in ("hash", "layers"))
                             for d in parsed])
    agg = (rows.groupby(["hash", "layers", "rest", "task"], sort=False)
           .agg(perf=("perf", "mean"), std=("perf", "std"), n=("seed", "nunique"), speedup=("speedup", "mean"),
                setting=("setting", "first"))
           .reset_index())
    reps = {} if boot is None else {
        (t, s): boot.seed_mean(t, method, s) for t, s in zip(agg["task"], agg["setting"])}
    intervals = {key: interval(r[0], level) for key, r in reps.items() if r is not None}
    published = load_paper("hash_ablation") if paper else None
    order = {_norm_hash(h): i for i, h in enumerate(_PAPER_HASHES)}
    keys = agg[["hash", "layers", "rest"]].drop_duplicates()
    keys = sorted(keys.itertuples(index=False),
                  key=lambda k: (natural_key(k.layers), order.get(_norm_hash(k.hash), len(order)), k.hash, k.rest))

    records = []
    for h, layers, rest in keys:
        mine = agg[(agg["hash"] == h) & (agg["layers"] == layers) & (agg["rest"] == rest)].set_index("task")
        ci = {t: intervals.get((t, mine.loc[t, "setting"])) for t in mine.index}
        cells = {t: DASH if t not in mine.index else
                 perf_cell(mine.loc[t, "perf"], mine.loc[t, "std"], int(mine.loc[t, "n"]), ci=ci[t])
                 for t in ABLATION_TASKS}
        speed = float(mine["speedup"].mean())
        records.append({"hash": h, "layers": layers, "setting": rest, "row": "ours", **cells,
                        "speed-up": f"{speed:.1f}×"})
        if published is None:
            continue
        hit = published[(published["backbone"] == f"ElasticBERT-{layers}L")
                        & (published["hash"].map(_norm_hash) == _norm_hash(h))]
        if hit.empty:
            continue
        p = hit.iloc[0]
        p_cells, d_cells = {}, {}
        for t in ABLATION_TASKS:
            col = t.replace("-", "").lower()
            std_col = f"{col}_std"
            has_std = std_col in published.columns and pd.notna(p.get(std_col))
            p_cells[t] = f"{p[col]:.1f}" + (f" ± {p[std_col]:.2f}" if has_std else "")
            d_cells[t] = DASH if t not in mine.index else f"{delta(mine.loc[t, 'perf'], p[col], 1):+.1f}" \
                + (f" {INSIDE}" if holds(ci[t], p[col]) else "")
        records.append({"hash": p["hash"], "layers": layers, "setting": "", "row": f"paper: {p['backbone']}",
                        **p_cells, "speed-up": f"{p['speedup']:.1f}×"})
        records.append({"hash": p["hash"], "layers": layers, "setting": "", "row": DELTA, **d_cells,
                        "speed-up": f"{delta(speed, p['speedup'], 1):+.1f}×"})

    columns = ["hash", "layers", "setting", "row", *ABLATION_TASKS, "speed-up"]
    table = pd.DataFrame(records, columns=columns)
    if not (table["setting"] != "").any():
        table = table.drop(columns="setting")
    table.attrs["notes"] = [
        f"Cells: {split} perf ×100 of method '{method}', mean ± sample std over seeds (std when >1 seed); "
        "speed-up: mean over the tasks shown and seeds.",
        *(["Paper rows: the paper's hash ablation on ElasticBERT-nL (SNLI std not published); "
           f"{DELTA} from the displayed values."] if paper else []),
        *([] if len(table) else [f"No '{method}' runs on SST-2, SNLI or MRPC ({split} split)."]),
        *([] if boot is None else [uncertainty_note(boot, level)]),
    ]
    return table


def table_notes(ref: pd.DataFrame, beyond: str, config_name: str | None = None) -> list[str]:
    """Notes printed under every table: data origin, reference provenance, out-of-range policy,
    and why the paper's ELUE scores are quoted rather than recomputed."""
    notes = []
    if config_name in SYNTHETIC_CONFIGS:
        notes.append(f"Synthetic demo data (config '{config_name}'): it shows the pipeline and how the methods "
                     "trade accuracy for FLOPs on tasks of graded difficulty (a known share decided by one word); it "
                     "cannot show how they rank on real text — not comparable with the paper.")
    elif config_name:
        notes.append(f"Config: {config_name}.")
    prov = [p for p in dict.fromkeys(ref["provenance"].astype(str).str.strip()) if p]
    notes.append(f"Reference points ({ref.attrs.get('source', 'reference')}): {'; '.join(prov) or 'provenance not recorded'}.")
    notes.append(describe_policy(beyond))
    inc = paper_score_inconsistency()
    notes.append(
        "The paper's ELUE scores cannot be recomputed from its table rows: BERT-3L − ElasticBERT-3L averages "
        f"{inc.table_gap:.2f} over the six tasks at equal cost (4.0× both), yet the published scores differ by "
        f"{inc.published_gap:.2f} — the leaderboard's reference curve differs from the table's ElasticBERT-3L "
        "row, so paper scores are quoted, not recomputed.")
    return notes


def write_tables(runs_path, reference_path, out_dir, beyond: str = "extend", config_name: str | None = None,
                 *, paper: bool = True, split: str = "test", select_on: str = "dev",
                 bootstrap_path=None, level: float = 0.95, own_backbone: str | None = None) -> list[Path]:
    """Write elue.{md,csv,tex} and hash_ablation.{md,csv,tex}; with `bootstrap_path` (`hashee bootstrap`)
    the cells carry intervals. Everything is computed before the first write, so an error leaves
    `out_dir` untouched; each file is written atomically."""
    describe_policy(beyond)
    runs = read_runs(runs_path)
    sweep_keys = method_sweep_keys(runs["method"], source=str(runs_path))
    tasks = [t for t in TASKS if t in set(runs.loc[(runs["split"] == split) & runs["perf"].notna(), "task"])]
    ref = read_reference(reference_path, tasks=tasks)
    boot = load_bootstrap(bootstrap_path) if bootstrap_path and split == "test" else None  # test replicates
    footer = table_notes(ref, beyond, config_name) + table_note(out_dir)
    texts = {}
    for stem, table in (("elue", elue_table(runs, ref, beyond, paper, split=split, select_on=select_on,
                                            sweep_keys=sweep_keys, boot=boot, level=level,
                                            own_backbone=own_backbone)),
                        ("hash_ablation", hash_ablation_table(runs, paper, split=split, boot=boot, level=level))):
        notes = table.attrs.get("notes", []) + footer
        texts[f"{stem}.md"] = to_markdown(table, notes)
        texts[f"{stem}.csv"] = table.to_csv(index=False)
        texts[f"{stem}.tex"] = to_latex(table, notes)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise HasheeError(f"{out_dir}: not a directory")
    paths = []
    for name, text in texts.items():
        write_text_atomic(out_dir / name, text)
        paths.append(out_dir / name)
    return paths
