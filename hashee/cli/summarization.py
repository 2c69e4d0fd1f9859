"""`hashee summ-evaluate`: generate with a trained summarization model, ROUGE, FLOPs, wall-clock. Thin, as
hashee/cli/elue.py. Summarization's hashes and training are `fit-hash --dataset` and `train --dataset`
(hashee/cli/training.py), whose `--evaluate-out` evaluates as this verb does."""

from __future__ import annotations

from hashee.cli.common import resolve_device


def cmd_evaluate(args) -> None:
    evaluate_summarization_model(args.model, args, resolve_device(args.device), rows_out=args.out)


def evaluate_summarization_model(model_dir, args, device, *, rows_out) -> None:
    """`summ-evaluate`, and `train --dataset --evaluate-out`: one row per split into `rows_out`."""
    from hashee.cli.training import decoding
    from hashee.studies.summarization.run import evaluate_summarizer

    rows = evaluate_summarizer(model_dir, args.data_dir, rows_out, splits=args.splits.split(","),
                               decoding=decoding(args), batch_size=args.batch_size, device=device,
                               time_repeats=args.time_repeats, time_warmup=args.time_warmup,
                               predictions=args.predictions)
    if not args.quiet:
        print(rows[["dataset", "method", "setting", "split", "rouge1", "rouge2", "rougeL", "total_gflops",
                    "time_s"]].to_string(index=False))


def add_parsers(sub) -> None:
    from hashee.cli.training import add_generation_options

    p = sub.add_parser("summ-evaluate", help="summarization: generate, ROUGE, FLOPs, wall-clock -> one row per split")
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--splits", default="test")
    add_generation_options(p)
    p.add_argument("--predictions", default=None, help="directory for <split>.tsv (where, prediction, reference)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)
