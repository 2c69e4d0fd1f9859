"""The difficulty table: our P/R/F1 beside the paper's (hashee/paper/difficulty.csv) and the
difference, the exit layer each predictor implies, and the human-defined study with its chance
level. Written as Markdown, CSV and LaTeX with the ELUE tables' writers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hashee.core.errors import HasheeError
from hashee.core.io import write_text_atomic
from hashee.measure.provenance import table_note
from hashee.measure.tables import DASH, DELTA, SYNTHETIC_CONFIGS, to_latex, to_markdown
from hashee.studies.difficulty.metrics import ROW_COLUMNS

PAPER_FILE = Path(__file__).resolve().parents[2] / "paper" / "difficulty.csv"  # hashee/paper/
LEVEL_ORDER = {"human": 0, "sentence": 1, "token": 2}


def load_paper(path=PAPER_FILE) -> pd.DataFrame:
    return pd.read_csv(path)


def read_rows(paths) -> pd.DataFrame:
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise HasheeError(f"{path}: cannot read difficulty rows ({err})") from None
        missing = [c for c in ("level", "predictor", "precision", "recall", "f1") if c not in frame.columns]
        if missing:
            raise HasheeError(f"{path}: missing column(s) {', '.join(missing)}")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).reindex(columns=ROW_COLUMNS)


def _fmt(value, digits: int = 1) -> str:
    return DASH if pd.isna(value) else f"{value:.{digits}f}"


def difficulty_table(rows: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    published = {(r.level, r.predictor): r for r in paper.itertuples()}
    rows = rows.assign(order=rows["level"].map(LEVEL_ORDER)).sort_values(["order"], kind="stable")
    out = []
    for row in rows.itertuples():
        ref = published.get((row.level, row.predictor))
        line = {"Level": row.level, "Predictor": row.predictor}
        for label, column in (("P", "precision"), ("R", "recall"), ("F1", "f1")):
            ours = getattr(row, column)
            theirs = getattr(ref, column) if ref is not None else float("nan")
            line[f"{label} (paper)"] = _fmt(theirs)
            line[f"{label} (ours)"] = _fmt(ours)
            line[f"{label} {DELTA}"] = _fmt(ours - theirs) if ref is not None else DASH
        line["Acc"] = _fmt(row.accuracy)
        line["Chance"] = _fmt(row.chance)
        line["Exit layer"] = _fmt(row.exit_layer, 2)
        line["Acc at exit"] = _fmt(row.exit_accuracy)
        line["Acc, last layer"] = _fmt(row.full_accuracy)
        out.append(line)
    return pd.DataFrame(out)


def table_notes(rows: pd.DataFrame, config_name: str | None) -> list[str]:
    notes = [
        "P/R/F1 (%): micro over (instance, layer) cells — (token, layer) at the token level — with "
        "positive = 'this layer gets it wrong'; padding and [CLS]/[SEP] are masked out.",
        "human: BERT classifier of difficult (no annotator majority) vs simple SNLI pairs; P/R/F1 with "
        "positive = difficult; Chance = majority-class share of its balanced test set. The paper reports "
        "this study as close to chance, without numbers.",
        "Exit layer: mean of the layer each instance (token) would exit at under the prediction (the first "
        "layer predicted correct, else the last); Acc at exit: the multi-exit model's accuracy there; "
        "Acc, last layer: its accuracy exiting at the last layer, on the same test instances.",
    ]
    layers = sorted({int(n) for n in rows["num_layers"].dropna()})
    backbones = sorted({str(b) for b in rows["backbone"].dropna()})
    notes.append(f"Ours: backbone {', '.join(backbones)}, {'/'.join(map(str, layers))} layers; the paper: "
                 "BERT-base, 12 layers.")
    if config_name in SYNTHETIC_CONFIGS:
        notes.append(f"Config '{config_name}' runs on generated offline data: its numbers are not comparable "
                     "with the paper's.")
    return notes


def write_difficulty_tables(row_files, out_dir, config_name: str | None = None, paper_file=PAPER_FILE) -> list[Path]:
    rows = read_rows(row_files)
    table = difficulty_table(rows, load_paper(paper_file))
    notes = table_notes(rows, config_name) + table_note(out_dir)
    texts = {"difficulty.md": to_markdown(table, notes), "difficulty.csv": table.to_csv(index=False),
             "difficulty.tex": to_latex(table, notes)}
    paths = []
    for name, text in texts.items():
        write_text_atomic(Path(out_dir) / name, text)
        paths.append(Path(out_dir) / name)
    return paths
