"""Result rows: the one table every evaluation job writes, gathered into `runs.csv`.

A row is one (task, method, setting, seed, split) evaluation. `setting` names the variant as
comma-separated `key=value` pairs (`hash=frequency,layers=6`, `layers=6,patience=3`); it is part
of output paths, so it is a plain string everywhere and only parsed where keys matter.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.io import write_csv_atomic
from hashee.core.settings import format_setting, parse_setting  # noqa: F401  (re-exported)
from hashee.core.tasks import TASKS

ROW_COLUMNS = ["task", "method", "setting", "seed", "split", "metric", "perf", "mflops", "speedup",
               "wall_ms", "device", "n_instances"]
# Written by `hashee time`: one row per batch size; gather keeps batch size 1 (ELUE's setting).
TIME_COLUMNS = ["task", "method", "setting", "seed", "batch_size", "wall_ms", "device", "dtype"]
KEY_COLUMNS = ["task", "method", "setting", "seed"]

_ROW_FLOATS = ("perf", "mflops", "speedup", "wall_ms")
_ROW_INTS = ("seed", "n_instances")
_ROW_OPTIONAL = ("wall_ms", "perf")  # empty wall_ms: not timed; empty perf: labels hidden (ELUE test)

PAPER_TABLES = ("elue_test", "elue_scores", "hash_ablation", "summarization", "difficulty")


def read_csv_checked(path, required, kind: str, floats=(), ints=(), optional=()) -> pd.DataFrame:
    """Read a CSV whose `required` columns must exist; numeric columns are converted with errors
    naming the file, line and column. Other columns stay strings ('' for empty)."""
    path = Path(path)
    if not path.is_file():
        raise HasheeError(f"{path}: {kind} file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise HasheeError(f"{path}: empty {kind} file; expected columns {', '.join(required)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise HasheeError(f"{path}: unreadable {kind} CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise HasheeError(f"{path}: {kind} file is missing column(s) {', '.join(missing)} "
                          f"(expected {', '.join(required)})")
    for col in (*floats, *ints):
        if col not in frame.columns:
            continue
        text = frame[col].str.strip()
        values = pd.to_numeric(text.where(text != "", None), errors="coerce").astype("float64")
        bad = (text != "") & values.isna()
        if col not in optional:
            bad |= text == ""
        if col in ints:
            bad |= values.notna() & (values != values.round())
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise HasheeError(f"{path}:{i + 2}: column {col!r} needs "
                              f"{'an integer' if col in ints else 'a number'}, got {frame[col].iloc[i]!r}")
        frame[col] = values.astype("int64") if col in ints else values
    return frame


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    # Deterministic order whatever order the jobs finished in: tasks as in the task table.
    order = {name: i for i, name in enumerate(TASKS)}
    key = frame["task"].map(lambda t: order.get(t, len(order)))
    return (frame.assign(_task_order=key)
            .sort_values(["_task_order", "task", "method", "setting", "seed", "split"], kind="stable")
            .drop(columns="_task_order").reset_index(drop=True))


def read_runs(path) -> pd.DataFrame:
    """Read a rows file or `runs.csv`: ROW_COLUMNS required (extra columns are kept)."""
    return read_csv_checked(path, ROW_COLUMNS, "runs", floats=_ROW_FLOATS, ints=_ROW_INTS,
                            optional=_ROW_OPTIONAL)


def write_runs(frame: pd.DataFrame, path) -> None:
    missing = [c for c in ROW_COLUMNS if c not in frame.columns]
    if missing:
        raise HasheeError(f"{path}: cannot write runs, frame lacks column(s) {', '.join(missing)}")
    extra = [c for c in frame.columns if c not in ROW_COLUMNS]
    write_csv_atomic(path, frame[ROW_COLUMNS + extra])


def read_times(path) -> pd.DataFrame:
    return read_csv_checked(path, TIME_COLUMNS, "timing", floats=("wall_ms",), ints=("seed", "batch_size"),
                            optional=("wall_ms",))


def gather(rows_files: list, time_files: list, out) -> pd.DataFrame:
    """Concatenate per-job rows files into `out` and fill wall_ms/device from the batch-size-1
    timing rows of the same (task, method, setting, seed). Rows without timing keep NaN."""
    if not rows_files:
        raise HasheeError("gather: no rows files given")
    frames = [read_runs(p).assign(_file=str(p)) for p in rows_files]
    runs = pd.concat(frames, ignore_index=True)
    dup = runs.duplicated(KEY_COLUMNS + ["split"], keep=False)
    if dup.any():
        first = runs[dup].iloc[0]
        same = (runs[KEY_COLUMNS + ["split"]] == first[KEY_COLUMNS + ["split"]]).all(axis=1)
        files = sorted(set(runs.loc[same, "_file"]))
        raise HasheeError(f"gather: duplicate result row {_key_text(first)} split={first['split']} "
                          f"in {', '.join(files)}")

    if time_files:
        times = pd.concat([read_times(p).assign(_file=str(p)) for p in time_files], ignore_index=True)
        times = times[times["batch_size"] == 1]
        dup = times.duplicated(KEY_COLUMNS, keep=False)
        if dup.any():
            first = times[dup].iloc[0]
            raise HasheeError(f"gather: several batch-size-1 timings for {_key_text(first)} "
                              f"(in {', '.join(sorted(set(times[dup]['_file'])))})")
        # A timing that matches no row means the setting strings disagree: say so rather than
        # leave wall_ms silently empty.
        known = set(map(tuple, runs[KEY_COLUMNS].itertuples(index=False)))
        for row in times.to_dict("records"):
            if tuple(row[k] for k in KEY_COLUMNS) not in known:
                raise HasheeError(f"{row['_file']}: timing for {_key_text(row)} matches no result row")
        runs = runs.merge(times[KEY_COLUMNS + ["wall_ms", "device"]], on=KEY_COLUMNS, how="left",
                          suffixes=("", "_time"), validate="many_to_one")
        timed = runs["wall_ms_time"].notna()
        runs.loc[timed, "wall_ms"] = runs.loc[timed, "wall_ms_time"]
        runs.loc[timed, "device"] = runs.loc[timed, "device_time"]
        runs = runs.drop(columns=["wall_ms_time", "device_time"])

    runs = _sorted(runs.drop(columns="_file"))
    write_runs(runs, out)
    return runs


def _key_text(row) -> str:
    return ", ".join(f"{k}={row[k]}" for k in KEY_COLUMNS)


def method_sweep_keys(methods, source: str = "runs") -> dict[str, tuple[str, ...]]:
    """Each method's sweep keys (`Method.sweep_keys`), from its class in the registry, plugins loaded
    as the jobs load them ($HASHEE_PLUGINS, set from the config's `plugins`). Rows of one method that
    differ only in these keys are points of one trained model's curve; every other key names another
    model. `source` names the rows' file in the error for a method the registry lacks."""
    from hashee.core.methods import available_methods  # here: the registry imports torch and the baselines

    registry = available_methods()
    names = list(dict.fromkeys(methods))
    for name in names:
        if name not in registry:
            raise HasheeError(f"{source}: method {name!r} is not registered (known: {', '.join(sorted(registry))}); "
                              "a plugin method's module must be listed in the config's `plugins`")
    return {name: tuple(registry[name].sweep_keys) for name in names}


def split_setting(setting, sweep_keys) -> tuple[str, str]:
    """(model part, sweep part) of a setting, given its method's sweep keys:
    ('layers=6,patience=3', ('patience',)) -> ('layers=6', 'patience=3')."""
    d = parse_setting(setting)
    base = {k: v for k, v in d.items() if k not in sweep_keys}
    sweep = {k: v for k, v in d.items() if k in sweep_keys}
    return format_setting(base), format_setting(sweep)


def load_paper(name: str) -> pd.DataFrame:
    """One of the paper's tables as published (hashee/paper/<name>.csv)."""
    stem = name[:-4] if name.endswith(".csv") else name
    if stem not in PAPER_TABLES:
        raise unknown_name("paper table", name, PAPER_TABLES)
    with resources.as_file(resources.files("hashee").joinpath("paper", f"{stem}.csv")) as path:
        return pd.read_csv(path)


__all__ = ["KEY_COLUMNS", "PAPER_TABLES", "ROW_COLUMNS", "TIME_COLUMNS", "format_setting", "gather",
           "load_paper", "method_sweep_keys", "parse_setting", "read_csv_checked", "read_runs", "read_times",
           "split_setting", "write_runs"]
