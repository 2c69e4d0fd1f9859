"""Summarization's evaluation as the CLI calls it: `hashee evaluate` of a summarization model and
`hashee train --dataset --evaluate-out` (both in hashee/cli/training.py, the verbs both studies share)."""

from __future__ import annotations


def evaluate_summarization_model(model_dir, args, device, *, rows_out) -> None:
    """Generate, ROUGE, FLOPs, wall-clock: one row per split into `rows_out`."""
    from hashee.cli.training import decoding
    from hashee.studies.summarization.run import evaluate_summarizer

    rows = evaluate_summarizer(model_dir, args.data_dir, rows_out, splits=args.splits.split(","),
                               decoding=decoding(args), batch_size=args.batch_size, device=device,
                               time_repeats=args.time_repeats, time_warmup=args.time_warmup,
                               predictions=args.predictions)
    if not args.quiet:
        print(rows[["dataset", "method", "setting", "split", "rouge1", "rouge2", "rougeL", "total_gflops",
                    "time_s"]].to_string(index=False))

