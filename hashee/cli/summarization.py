"""`hashee summ-fit-hash | summ-train | summ-evaluate | summ-run`: the summarization verbs the workflow
calls. Thin, as hashee/cli/elue.py: parse arguments, call hashee.studies.summarization.run, print."""

from __future__ import annotations

from hashee.cli.common import add_training_options, resolve_device, train_params
from hashee.core.errors import HasheeError


# ---------------------------------------------------------------- summ-fit-hash
def cmd_fit_hash(args) -> None:
    from hashee.studies.summarization.run import fit_hashes

    if len(args.setting or []) != len(args.setting_out or []) or not args.setting:
        raise HasheeError("summ-fit-hash needs pairs of --setting S --setting-out FILE")
    for line in fit_hashes(args.dataset, args.data_dir, args.backbone, args.setting, args.setting_out,
                           args.max_source_length, args.seed):
        print(line)


# ---------------------------------------------------------------- summ-train
def cmd_train(args) -> None:
    from hashee.studies.summarization.run import train_summarizer

    params = train_params(args, args.max_source_length, eval_batch_size=args.batch_size)
    method, best_dev_loss = train_summarizer(
        args.method, args.setting, args.dataset, args.data_dir, args.backbone, params,
        max_target_length=args.max_target_length, max_train_examples=args.max_train_examples,
        hash_file=args.hash_file, workdir=args.workdir, out=args.out, device=resolve_device(args.device),
        progress=not args.quiet, progress_every=args.progress_every)
    print(f"trained {method.name} [{method.setting_text()}] on {args.dataset}: best dev loss "
          f"{best_dev_loss:.3f} -> {args.out}")


# ---------------------------------------------------------------- summ-evaluate
def cmd_evaluate(args) -> None:
    from hashee.studies.summarization.run import evaluate_summarizer

    decoding = {"num_beams": args.num_beams, "length_penalty": args.length_penalty, "max_length": args.max_length,
                "min_length": args.min_length, "no_repeat_ngram_size": args.no_repeat_ngram_size,
                "early_stopping": args.early_stopping}
    rows = evaluate_summarizer(args.model, args.data_dir, args.out, splits=args.splits.split(","), decoding=decoding,
                               batch_size=args.batch_size, device=resolve_device(args.device),
                               time_repeats=args.time_repeats, time_warmup=args.time_warmup,
                               predictions=args.predictions)
    if not args.quiet:
        print(rows[["dataset", "method", "setting", "split", "rouge1", "rouge2", "rougeL", "total_gflops",
                    "time_s"]].to_string(index=False))


def cmd_run(args) -> None:
    cmd_train(args)
    args.model, args.out = args.out, args.rows
    cmd_evaluate(args)


# ---------------------------------------------------------------- parser
def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


def add_parsers(sub) -> None:
    p = sub.add_parser("summ-fit-hash", help="summarization: fit HashEE hashes on train+dev source tokens")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--backbone", default="minilm-seq2seq")
    p.add_argument("--setting", action="append", help="a hashee setting, e.g. hash=frequency,buckets=6 (repeatable)")
    p.add_argument("--setting-out", action="append", help="hash file for the --setting at the same position")
    p.add_argument("--max-source-length", type=int, default=512)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_fit_hash)

    p = sub.add_parser("summ-train", help="summarization: fine-tune a seq2seq method (best dev loss; resumable)")
    _train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("summ-evaluate", help="summarization: generate, ROUGE, FLOPs, wall-clock -> one row per split")
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    _evaluate_options(p)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("summ-run", help="summarization: summ-train, then summ-evaluate of its model, in one process "
                                        "(the workflow's job: start-up costs more than a small run)")
    _train_options(p)
    _evaluate_options(p)
    p.add_argument("--rows", required=True, help="summ-evaluate's --out")
    p.set_defaults(func=cmd_run)


def _evaluate_options(p) -> None:
    p.add_argument("--splits", default="test")
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--length-penalty", type=float, default=1.0)
    p.add_argument("--max-length", type=int, default=64, help="decoder tokens, the start token included")
    p.add_argument("--min-length", type=int, default=0)
    p.add_argument("--no-repeat-ngram-size", type=int, default=0)
    p.add_argument("--early-stopping", type=_bool, default=False)
    p.add_argument("--time-repeats", type=int, default=1,
                   help="timed whole-generation passes, median reported (the last pass's outputs are scored)")
    p.add_argument("--time-warmup", type=int, default=0, help="untimed generation passes first")
    p.add_argument("--predictions", default=None, help="directory for <split>.tsv (where, prediction, reference)")


def _train_options(p) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--max-source-length", type=int, default=512)
    p.add_argument("--max-target-length", type=int, default=128)
    p.add_argument("--max-train-examples", type=int, default=0, help="first N training examples (0: all)")
    add_training_options(
        p, methods_help="full, truncated, hashee or dat", backbone="minilm-seq2seq", batch_size=16,
        hash_file_help="hashee: a hash from summ-fit-hash",
        freeze_help="keep the shared word-embedding / LM-head matrix fixed (the CPU demo: it costs as much as the layers)")
