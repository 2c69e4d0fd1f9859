"""The summarization table (Markdown, CSV, LaTeX) with the paper's numbers beside ours.

Input: rows files written by `hashee evaluate` (or `train --dataset --evaluate-out`), one row per run × split (RUN_COLUMNS).
Decisions:
- Test split only; one row per (dataset, backbone, method, setting); ROUGE is the mean over seeds
  (± sample std when there are several), with two decimals as the paper prints them.
- Speed-ups are ratios against the `full` method of the same dataset, backbone and seed, per
  seed, then averaged: encoder, decoder and total by FLOPs per instance, and "time ×" by
  wall-clock per instance of the whole generation. Whether the paper's speed-ups are FLOPs or time
  is unknown, so both are shown; the paper's go in the FLOPs columns.
- Paper rows: `full` -> "BART" / "CPT" by backbone family (CPT when the backbone name contains
  "cpt"), `truncated` -> "BART-6L" / "CPT-6L" (only when no `*layers` key of its setting says other
  than 6), `hashee` -> "HashEE w/ BART" / "HashEE w/ CPT", `dat` -> "DAT"; dataset ids map onto
  the paper's names (PAPER_DATASETS). Where the paper has no such row (DAT on CSL) the paper row
  shows "–"; the synthetic demo data sets get no paper row. Δ is computed from the displayed values.
- A dataset can run on several backbones (a `more_backbones` entry: its runs' settings start with
  backbone=<label>); each backbone's rows are its own, the paper row chosen by the backbone's family
  (the Chinese BART on CSL -> "BART").
- Every row of the paper's table that none of ours maps to is still shown, after ours, marked "paper only".
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hashee.core.errors import HasheeError
from hashee.core.io import write_text_atomic
from hashee.core.settings import BACKBONE_KEY, natural_key
from hashee.measure.provenance import table_note
from hashee.measure.results import load_paper, parse_setting, read_csv_checked
from hashee.measure.tables import DASH, DELTA, PAPER_ONLY, delta, to_latex, to_markdown
from hashee.studies.summarization.data import get_dataset
from hashee.studies.summarization.rouge import ROUGE_CONVENTION

RUN_COLUMNS = ["dataset", "backbone", "method", "setting", "seed", "split", "rouge1", "rouge2", "rougeL",
               "enc_gflops", "dec_gflops", "total_gflops", "gen_tokens", "truncated_sources", "time_s",
               "device", "n"]
_FLOATS = ("rouge1", "rouge2", "rougeL", "enc_gflops", "dec_gflops", "total_gflops", "gen_tokens", "time_s")
_INTS = ("seed", "truncated_sources", "n")
_KEY = ["dataset", "backbone", "method", "setting", "seed", "split"]
ROUGE = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
# Our speed-up columns -> the paper's columns.
SPEEDUPS = {"enc ×": "speedup_enc", "dec ×": "speedup_dec", "total ×": "speedup_total"}
TIME_SPEEDUP = "time ×"

PAPER_DATASETS = {"reddit": "Reddit", "cnndm": "CNN/DM", "csl": "CSL", "ttnews": "TTNews"}
# method -> paper model name for (BART family, CPT family)
PAPER_METHODS = {"full": ("BART", "CPT"), "dat": ("DAT", "DAT"), "truncated": ("BART-6L", "CPT-6L"),
                 "hashee": ("HashEE w/ BART", "HashEE w/ CPT")}
METHOD_ORDER = ("full", "dat", "truncated", "hashee")  # the paper's row order
# The layers the paper's truncated rows keep, per family: BART-6L is BART-large's 12 + 12 layers halved;
# CPT-6L keeps 6 encoder layers and CPT-large's whole 4-layer generation decoder (config/paper.yaml).
PAPER_TRUNCATED = ({"enc_layers": "6", "dec_layers": "6"}, {"enc_layers": "6", "dec_layers": "4"})


def paper_model(method: str, setting: str, backbone: str) -> str | None:
    """The paper's model name for one of our models, or None."""
    if method not in PAPER_METHODS:
        return None
    family = int("cpt" in backbone.lower())
    keys = {k: v for k, v in parse_setting(setting).items() if k != BACKBONE_KEY}  # the backbone is `backbone`
    if method == "truncated" and keys != PAPER_TRUNCATED[family]:
        return None
    return PAPER_METHODS[method][family]


def read_summ_runs(paths) -> pd.DataFrame:
    """Concatenate rows files (RUN_COLUMNS required); a duplicate run×split is an error naming both files."""
    if not paths:
        raise HasheeError("summ-table: no rows files given")
    frames = []
    for path in paths:
        frame = read_csv_checked(path, RUN_COLUMNS, "summarization rows", floats=_FLOATS, ints=_INTS,
                                 optional=("time_s",))
        frames.append(frame.assign(_where=[f"{path}:{i + 2}" for i in range(len(frame))]))
    runs = pd.concat(frames, ignore_index=True)
    dup = runs.duplicated(_KEY, keep=False)
    if dup.any():
        first = runs[dup].iloc[0]
        places = runs.loc[dup & (runs[_KEY] == first[_KEY]).all(axis=1), "_where"]
        raise HasheeError(f"summ-table: duplicate row {', '.join(f'{k}={first[k]}' for k in _KEY)} "
                          f"({', '.join(places)})")
    for col in ("enc_gflops", "dec_gflops", "total_gflops", "n"):
        bad = runs[col] <= 0
        if bad.any():
            raise HasheeError(f"{runs.loc[bad, '_where'].iloc[0]}: column {col!r} must be > 0")
    return runs


def _with_speedups(rows: pd.DataFrame, split: str) -> pd.DataFrame:
    """Per-seed speed-ups of every row against the `full` row of its dataset, backbone and seed."""
    group = ["dataset", "backbone", "seed"]
    full = rows[rows["method"] == "full"]
    dup = full.duplicated(group, keep=False)
    if dup.any():
        first = full[dup].iloc[0]
        raise HasheeError(f"dataset {first['dataset']} (backbone {first['backbone']}, seed {first['seed']}): several "
                          f"'full' runs ({', '.join(full.loc[dup, 'setting'].map(repr))}); speed-ups need exactly one")
    cost = ["enc_gflops", "dec_gflops", "total_gflops", "time_s", "n"]
    merged = rows.merge(full[group + cost], on=group, how="left", suffixes=("", "_full"))
    missing = merged["n_full"].isna()
    if missing.any():
        first = merged[missing].iloc[0]
        raise HasheeError(f"dataset {first['dataset']}: no 'full' run (backbone {first['backbone']}, seed "
                          f"{first['seed']}, {split} split) to compute the speed-ups of {first['method']} against")
    other_n = merged["n"] != merged["n_full"]
    if other_n.any():
        first = merged[other_n].iloc[0]
        raise HasheeError(f"{first['_where']}: {first['method']} on {first['dataset']} has n={first['n']} "
                          f"{split} examples but 'full' has {int(first['n_full'])}; compare on the same examples")
    for column, paper_column in SPEEDUPS.items():
        part = paper_column.removeprefix("speedup_")
        merged[column] = merged[f"{part}_gflops_full"] / merged[f"{part}_gflops"]
    merged[TIME_SPEEDUP] = (merged["time_s_full"] / merged["n_full"]) / (merged["time_s"] / merged["n"])
    return merged


def _order(agg: pd.DataFrame) -> pd.DataFrame:
    datasets = list(PAPER_DATASETS)
    keys = [((datasets.index(r.dataset) if r.dataset in datasets else len(datasets), natural_key(r.dataset)),
             natural_key(r.backbone),
             METHOD_ORDER.index(r.method) if r.method in METHOD_ORDER else len(METHOD_ORDER) - 1.5,
             r.method, natural_key(r.setting)) for r in agg.itertuples()]
    return agg.iloc[sorted(range(len(agg)), key=lambda i: keys[i])].reset_index(drop=True)


def _speed(value: float) -> str:
    return DASH if pd.isna(value) else f"{value:.1f}×"


def summarization_table(runs: pd.DataFrame, paper: bool = True, *, split: str = "test") -> pd.DataFrame:
    """One 'ours' row per (dataset, backbone, method, setting), each followed by a paper row and,
    where the paper has the model on that dataset, a Δ row. Notes for the caption in attrs['notes']."""
    rows = runs[runs["split"] == split]
    if rows.empty:
        raise HasheeError(f"summ-table: no rows on the {split} split")
    for name in dict.fromkeys(rows["dataset"]):
        get_dataset(name)  # unknown ids fail here, listing the valid ones
    rows = _with_speedups(rows, split)
    speed_columns = [*SPEEDUPS, TIME_SPEEDUP]
    agg = (rows.groupby(["dataset", "backbone", "method", "setting"], sort=False)
           .agg(n_seeds=("seed", "nunique"), n=("n", "first"), gen_tokens=("gen_tokens", "mean"),
                truncated=("truncated_sources", "mean"),
                **{f"{k}_mean": (k, "mean") for k in ROUGE}, **{f"{k}_std": (k, "std") for k in ROUGE},
                **{c: (c, "mean") for c in speed_columns})
           .reset_index())
    agg = _order(agg)
    published = load_paper("summarization").set_index(["model", "dataset"]) if paper else None

    records, notes, matched = [], [], set()
    for r in agg.to_dict("records"):
        base = {"dataset": PAPER_DATASETS.get(r["dataset"], r["dataset"]), "backbone": r["backbone"],
                "method": r["method"]}
        several = r["n_seeds"] > 1
        records.append({**base, "setting": r["setting"], "row": "ours",
                        **{label: f"{r[f'{k}_mean']:.2f}" + (f" ± {r[f'{k}_std']:.2f}" if several else "")
                           for k, label in ROUGE.items()},
                        **{c: _speed(r[c]) for c in speed_columns}, "gen. tokens": f"{r['gen_tokens']:.1f}"})
        if r["truncated"] > 0:
            label = f"{r['method']} [{r['setting']}]" if r["setting"] else r["method"]
            notes.append(f"{r['dataset']} {label}: {r['truncated']:g} of {r['n']} {split} "
                         "sources truncated to the model's maximum source length (mean over seeds).")
        if not paper or r["dataset"] not in PAPER_DATASETS:  # synthetic data: the caption says so
            continue
        name = paper_model(r["method"], r["setting"], r["backbone"])
        key = (name, PAPER_DATASETS.get(r["dataset"]))
        if name is None or key not in published.index:
            records.append({**base, "setting": DASH, "row": "paper",
                            **{c: DASH for c in [*ROUGE.values(), *speed_columns, "gen. tokens"]}})
            continue
        p = published.loc[key]
        matched.add(key)
        records.append({**base, "setting": name, "row": "paper",
                        **{label: f"{p[k]:.2f}" for k, label in ROUGE.items()},
                        **{c: _speed(p[pc]) for c, pc in SPEEDUPS.items()}, TIME_SPEEDUP: DASH,
                        "gen. tokens": DASH})
        records.append({**base, "setting": name, "row": DELTA,
                        **{label: f"{delta(r[f'{k}_mean'], p[k], 2):+.2f}" for k, label in ROUGE.items()},
                        **{c: f"{delta(r[c], p[pc], 1):+.1f}×" for c, pc in SPEEDUPS.items()},
                        TIME_SPEEDUP: DASH, "gen. tokens": DASH})

    only = _paper_only_rows(published, matched, speed_columns) if paper else []
    columns = ["dataset", "backbone", "method", "setting", "row", *ROUGE.values(), *speed_columns, "gen. tokens"]
    table = pd.DataFrame(records + only, columns=columns)
    table.attrs["notes"] = _caption(rows, split, paper) + notes
    if only:
        table.attrs["notes"].append(f"'{PAPER_ONLY}': a row of the paper's table that no run of ours maps to, quoted "
                                    "so that the table has all of the paper's rows (not measured here).")
    return table


def _paper_only_rows(published: pd.DataFrame, matched: set, speed_columns: list[str]) -> list[dict]:
    """The paper's rows no run of ours mapped to, in the paper's order (its method: the one whose paper name it is)."""
    owners = {name: method for method, names in PAPER_METHODS.items() for name in names}
    records = []
    for (name, dataset), p in published.iterrows():
        if (name, dataset) in matched:
            continue
        records.append({"dataset": dataset, "backbone": DASH, "method": owners.get(name, ""), "setting": name,
                        "row": PAPER_ONLY, **{label: f"{p[k]:.2f}" for k, label in ROUGE.items()},
                        **{c: _speed(p[pc]) for c, pc in SPEEDUPS.items()}, TIME_SPEEDUP: DASH, "gen. tokens": DASH})
    return records


def _caption(rows: pd.DataFrame, split: str, paper: bool) -> list[str]:
    languages = list(dict.fromkeys(get_dataset(d).language for d in rows["dataset"]))
    timed = rows[rows["time_s"].notna()]
    devices = ", ".join(dict.fromkeys(timed["device"].astype(str))) or "not timed"
    notes = [f"Cells: {split} ROUGE F1 ×100 (mean over seeds; ± sample std when >1 seed) and speed-ups against the "
             "'full' model of the same dataset, backbone and seed (mean over seeds).",
             *(ROUGE_CONVENTION[lang] for lang in languages),
             "Speed-ups: enc/dec/total × by FLOPs per instance (encoder per source, decoder per generated summary "
             "over the tokens it actually generated); time × by wall-clock of the whole generation per instance. "
             "The paper does not say whether its speed-ups are FLOPs or time: both are shown, the paper's in "
             "the FLOPs columns.",
             f"Timing device: {devices}" + (" (CPU timings are indicative)." if "cpu" in devices.lower() else ".")]
    synthetic = [d for d in dict.fromkeys(rows["dataset"]) if d.startswith("demo")]
    if synthetic:
        notes.append(f"{', '.join(synthetic)}: synthetic demo data — no paper row, not comparable with the paper.")
    if paper:
        notes.append(f"Paper rows quoted from the paper's summarization table; {DELTA} from the displayed values.")
    return notes


def write_summarization_table(run_paths, out_prefix, *, paper: bool = True, split: str = "test") -> list[Path]:
    """Write <out_prefix>.{md,csv,tex}; everything is computed before the first (atomic) write."""
    table = summarization_table(read_summ_runs(run_paths), paper, split=split)
    notes = table.attrs["notes"] + table_note(Path(f"{out_prefix}.md").parent)
    texts = {".md": to_markdown(table, notes), ".csv": table.to_csv(index=False), ".tex": to_latex(table, notes)}
    paths = []
    for suffix, text in texts.items():
        path = Path(f"{out_prefix}{suffix}")
        write_text_atomic(path, text)
        paths.append(path)
    return paths


__all__ = ["PAPER_DATASETS", "PAPER_METHODS", "RUN_COLUMNS", "paper_model", "read_summ_runs",
           "summarization_table", "write_summarization_table"]
