"""The summarization data and table verbs: `hashee summ-demo-data` and `hashee summ-table`."""

from __future__ import annotations


def cmd_summ_demo_data(args) -> None:
    from hashee.core.io import atomic_dir
    from hashee.studies.summarization.data import write_demo

    with atomic_dir(args.out) as tmp:
        write_demo(tmp, seed=args.seed, size=args.size)
    print(f"wrote synthetic summarization data demo-en, demo-zh (seed {args.seed}, size {args.size}) to {args.out}")


def cmd_summ_table(args) -> None:
    from hashee.studies.summarization.table import write_summarization_table

    paths = write_summarization_table(args.runs, args.out_prefix, paper=not args.no_paper)
    print(f"summarization table -> {', '.join(map(str, paths))}")


def add_parsers(subparsers) -> None:
    from hashee.studies.summarization.data import DEMO_SIZES

    p = subparsers.add_parser("summ-demo-data", help="write the synthetic summarization data (demo-en, demo-zh)")
    p.add_argument("--out", required=True, help="folder to write; it gets demo-en/ and demo-zh/")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="small", choices=list(DEMO_SIZES))
    p.set_defaults(func=cmd_summ_demo_data)

    p = subparsers.add_parser("summ-table", help="the summarization table (md/csv/tex) with the paper's numbers")
    p.add_argument("--runs", nargs="+", required=True, help="rows CSVs of summarization models (hashee evaluate, train --evaluate-out)")
    p.add_argument("--out-prefix", required=True, help="output path without extension: writes .md, .csv, .tex")
    p.add_argument("--no-paper", action="store_true", help="leave out the paper and Δ rows")
    p.set_defaults(func=cmd_summ_table)
