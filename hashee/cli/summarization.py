"""Summarization's evaluation as the CLI calls it: `hashee evaluate` of a summarization model and
`hashee train --dataset --evaluate-out` (both in hashee/cli/training.py, the verbs both studies share)."""

from __future__ import annotations

# Summarization's generation options (`train --dataset`, `evaluate`), with their defaults.
GENERATION_DEFAULTS = {"num_beams": 1, "length_penalty": 1.0, "gen_max_length": 64, "gen_min_length": 0,
                       "no_repeat_ngram_size": 0, "early_stopping": False, "time_repeats": 1, "time_warmup": 0}


def decoding(args) -> dict:
    """Summarization's generation options as `generate` takes them."""
    return {"num_beams": args.num_beams, "length_penalty": args.length_penalty, "max_length": args.gen_max_length,
            "min_length": args.gen_min_length, "no_repeat_ngram_size": args.no_repeat_ngram_size,
            "early_stopping": args.early_stopping}


def evaluate_summarization_model(model_dir, args, device, *, rows_out) -> None:
    """Generate, ROUGE, FLOPs, wall-clock: one row per split into `rows_out`."""
    from hashee.studies.summarization.run import evaluate_summarizer

    rows = evaluate_summarizer(model_dir, args.data_dir, rows_out, splits=args.splits.split(","),
                               decoding=decoding(args), batch_size=args.batch_size, device=device,
                               time_repeats=args.time_repeats, time_warmup=args.time_warmup,
                               predictions=args.predictions)
    if not args.quiet:
        print(rows[["dataset", "method", "setting", "split", "rouge1", "rouge2", "rougeL", "total_gflops",
                    "time_s"]].to_string(index=False))

