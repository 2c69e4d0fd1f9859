"""`hashee methods`: what is registered, as `lm_eval --tasks list` lists a harness's tasks."""

from __future__ import annotations

import json


def method_table(classes: dict) -> list[dict]:
    """One record per registered method class, in the tables' order (`table_order`, then id): its id, the
    label plots and the backbones table show (the id when it has none), sweep keys, regression support, one line."""
    ordered = sorted(classes.items(), key=lambda item: (item[1].table_order, item[0]))
    return [{"method": name, "label": cls.display_label() if hasattr(cls, "display_label") else name,
             "sweep_keys": list(cls.sweep_keys), "regression": bool(cls.supports_regression),
             "description": cls.summary()} for name, cls in ordered]


def format_methods(records: list[dict]) -> str:
    header = {"method": "method", "label": "label", "sweep_keys": "sweep keys", "regression": "regression",
              "description": "description"}
    rows = [header] + [{**r, "sweep_keys": ",".join(r["sweep_keys"]) or "-",
                        "regression": "yes" if r["regression"] else "no"} for r in records]
    widths = {key: max(len(str(row[key])) for row in rows) for key in ("method", "label", "sweep_keys", "regression")}
    return "\n".join(f"{row['method']:<{widths['method']}}  {row['label']:<{widths['label']}}  "
                     f"{row['sweep_keys']:<{widths['sweep_keys']}}  "
                     f"{row['regression']:<{widths['regression']}}  {row['description']}".rstrip() for row in rows)


def cmd_methods(args) -> None:
    if args.study == "summarization":
        from hashee.studies.summarization.methods import SUMM_METHODS as registry
    else:
        from hashee.core.methods import METHODS as registry
    records = method_table(registry.classes())
    print(json.dumps(records) if args.json else format_methods(records))


def add_parsers(sub) -> None:
    p = sub.add_parser("methods", help="list the registered methods (built-ins and $HASHEE_PLUGINS): label, sweep "
                                       "keys, regression support, a one-line description")
    p.add_argument("--study", default="elue", choices=["elue", "summarization"],
                   help="whose registry: ELUE's methods (default) or the summarization study's")
    p.add_argument("--json", action="store_true", help="one JSON list instead of the table")
    p.set_defaults(func=cmd_methods)
