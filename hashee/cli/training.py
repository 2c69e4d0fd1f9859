"""`hashee fit-hash | train | evaluate`: the one training path of both studies. `--task T` trains on an
ELUE task (hashee.studies.elue.run), `--dataset D` on a summarization dataset (hashee.studies.summarization.run);
`evaluate` reads which from the saved model. The options are one list, with each study's defaults, and a
few that only one study reads (`STUDY_ONLY`, `EVALUATE_ONLY`)."""

from __future__ import annotations

import argparse

from hashee.cli.common import add_training_options, resolve_device, train_params
from hashee.cli.summarization import GENERATION_DEFAULTS
from hashee.core.errors import HasheeError

ELUE, SUMMARIZATION = "task", "dataset"  # the option that selects the study, and its name in `STUDY_DEFAULTS`
STUDY_NAMES = {ELUE: "ELUE (--task)", SUMMARIZATION: "summarization (--dataset)"}

# Defaults that differ between the studies (the options default to None and take these).
STUDY_DEFAULTS = {
    ELUE: {"backbone": "minilm", "batch_size": 32, "max_length": 128, "splits": "dev,test"},
    SUMMARIZATION: {"backbone": "minilm-seq2seq", "batch_size": 16, "max_length": 512, "splits": "test"},
}
# Options that only one study reads (left out of the namespace unless given: argparse.SUPPRESS).
STUDY_ONLY = {
    SUMMARIZATION: {"max_target_length": 128, **GENERATION_DEFAULTS},
    ELUE: {"flops_cache": None},
}


# `evaluate`'s: its defaults per study, and the options of one study only.
EVALUATE_DEFAULTS = {ELUE: {"batch_size": 64, "splits": "dev,test"}, SUMMARIZATION: {"batch_size": 16, "splits": "test"}}
EVALUATE_ONLY = {SUMMARIZATION: GENERATION_DEFAULTS, ELUE: {"flops_cache": None, "test_labels": None}}


def resolve_study(args) -> str:
    """Which study the arguments select (--task or --dataset); fills in its defaults, and refuses the other
    study's options."""
    study = ELUE if args.task is not None else SUMMARIZATION
    apply_study(args, study, STUDY_DEFAULTS, STUDY_ONLY, STUDY_NAMES[study])
    return study


def apply_study(args, study: str, defaults: dict, only: dict, selected_by: str) -> None:
    other = SUMMARIZATION if study == ELUE else ELUE
    for option in only[other]:
        if hasattr(args, option):
            raise HasheeError(f"--{option.replace('_', '-')} is an option of {STUDY_NAMES[other]} only, not of {selected_by}")
    for option, value in {**defaults[study], **only[study]}.items():
        if getattr(args, option, None) is None:
            setattr(args, option, value)


# ---------------------------------------------------------------- fit-hash
def cmd_fit_hash(args) -> None:
    if not args.setting or len(args.setting) != len(args.setting_out or []):
        raise HasheeError("fit-hash needs pairs of --setting S --setting-out FILE")
    study = resolve_study(args)
    if study == ELUE:
        from hashee.studies.elue.run import fit_task_hashes as fit
    else:
        from hashee.studies.summarization.run import fit_hashes as fit
    tasks = args.task or [args.dataset]
    check_path_placeholders(args, "task", tasks, ("setting_out",))
    for task in tasks:
        outs = [out.replace("{task}", task) for out in args.setting_out]
        for line in fit(task, args.data_dir, args.backbone, args.setting, outs, args.max_length, args.seed,
                        args.buckets):
            print(line)


# ---------------------------------------------------------------- train
# Path options of `train` that name one run's files: with several --setting, each holds {setting}; with
# several --task, each holds {task}.
RUN_PATH_OPTIONS = ("out", "workdir", "hash_file", "evaluate_out", "predictions")


def check_path_placeholders(args, field: str, values: list[str], options=RUN_PATH_OPTIONS) -> None:
    """Several values of --<field> (each given once) need {<field>} in every path option: one run's files each."""
    if len(values) != len(set(values)):
        raise HasheeError(f"--{field}: {next(v for v in values if values.count(v) > 1)!r} is given twice")
    if len(values) > 1:
        for option in options:
            value = getattr(args, option)
            for path in value if isinstance(value, list) else [value]:  # fit-hash's --setting-out repeats
                if path is not None and f"{{{field}}}" not in path:
                    raise HasheeError(f"--{option.replace('_', '-')} {path}: with several --{field}, each path "
                                      f"option must hold {{{field}}} (one run's files per {field})")


def cmd_train(args) -> None:
    """Train each --task (ELUE; repeatable) and, per task, each --setting in turn in this one process (a
    workflow job: the imports are paid once per job, not per run), then evaluate each run when --evaluate-out
    is given."""
    train_one = _train_elue if resolve_study(args) == ELUE else _train_summarization
    tasks = args.task or [None]
    settings = args.setting or [""]
    check_path_placeholders(args, "setting", settings)
    check_path_placeholders(args, "task", args.task or [])
    device = resolve_device(args.device)
    for task in tasks:
        for setting in settings:
            run_args = argparse.Namespace(**vars(args))
            run_args.task, run_args.setting = task, setting
            for option in RUN_PATH_OPTIONS:
                value = getattr(args, option)
                if value is not None:
                    setattr(run_args, option, value.replace("{task}", task or "").replace("{setting}", setting))
            train_one(run_args, device)


def _train_elue(args, device) -> None:
    import shutil

    from hashee.cli.elue import evaluate_model
    from hashee.studies.elue.run import train_and_save

    run = train_and_save(args.task, args.method, args.setting, args.data_dir, args.backbone,
                         train_params(args, args.max_length, max_train_examples=args.max_train_examples), args.workdir, args.out, hash_file=args.hash_file,
                         device=device, progress=not args.quiet, progress_every=args.progress_every)
    if args.evaluate_out:  # in the same process: a job's start-up costs more than evaluating small data
        evaluate_model(args.out, args, device, rows_out=args.evaluate_out, splits=args.splits.split(","),
                       test_labels=None, batch_size=64)
    # The model is written: resume checkpoints (hundreds of MB per run) have served their purpose.
    shutil.rmtree(args.workdir, ignore_errors=True)
    print(f"trained {run.method.name} [{run.method.setting_text()}] on {run.task.name}: "
          f"best dev {run.best_dev:.2f} -> {args.out}", flush=True)


def _train_summarization(args, device) -> None:
    from hashee.cli.summarization import evaluate_summarization_model
    from hashee.studies.summarization.run import train_summarizer

    params = train_params(args, args.max_length, eval_batch_size=args.batch_size)
    method, best_dev_loss = train_summarizer(
        args.method, args.setting, args.dataset, args.data_dir, args.backbone, params,
        max_target_length=args.max_target_length, max_train_examples=args.max_train_examples,
        hash_file=args.hash_file, workdir=args.workdir, out=args.out, device=device,
        progress=not args.quiet, progress_every=args.progress_every)
    print(f"trained {method.name} [{method.setting_text()}] on {args.dataset}: best dev loss "
          f"{best_dev_loss:.3f} -> {args.out}", flush=True)
    if args.evaluate_out:  # generation, ROUGE, FLOPs and time in the same process (the workflow's summ_run job)
        evaluate_summarization_model(args.out, args, device, rows_out=args.evaluate_out)


# ---------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> None:
    """A saved model of either study: its meta.json says which (a summarization model's names its dataset)."""
    from hashee.core.checkpoint import read_meta

    study = SUMMARIZATION if "dataset" in read_meta(args.model) else ELUE
    apply_study(args, study, EVALUATE_DEFAULTS, EVALUATE_ONLY,
                f"the {STUDY_NAMES[study].split()[0]} model {args.model}")
    device = resolve_device(args.device)
    if study == ELUE:
        from hashee.cli.elue import evaluate_model

        evaluate_model(args.model, args, device, rows_out=args.out, splits=args.splits.split(","),
                       test_labels=args.test_labels, batch_size=args.batch_size)
    else:
        from hashee.cli.summarization import evaluate_summarization_model

        evaluate_summarization_model(args.model, args, device, rows_out=args.out)


# ---------------------------------------------------------------- parser
def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


def add_study_options(p) -> None:
    """--task or --dataset (which study), --data-dir, and the input length with each study's default."""
    study = p.add_mutually_exclusive_group(required=True)
    study.add_argument("--task", action="append", default=None,
                       help="an ELUE task: train on ELUE; repeat it to run several tasks in turn, with {task} in "
                            "each path option")
    study.add_argument("--dataset", default=None, help="a summarization dataset (demo-en, cnndm, ...): train a seq2seq method")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--max-length", type=int, default=None,
                   help="input tokens: ELUE's (default 128); summarization's source tokens (default 512)")


def add_generation_options(p, suppress: bool = False) -> None:
    """Summarization's generation and timing options (`evaluate`; `train --dataset --evaluate-out`).
    `suppress`: absent from the namespace unless given (train refuses them with --task)."""
    def default(key):
        return argparse.SUPPRESS if suppress else GENERATION_DEFAULTS[key]

    p.add_argument("--num-beams", type=int, default=default("num_beams"))
    p.add_argument("--length-penalty", type=float, default=default("length_penalty"))
    p.add_argument("--gen-max-length", type=int, default=default("gen_max_length"),
                   help="generated decoder tokens, the start token included (default 64)")
    p.add_argument("--gen-min-length", type=int, default=default("gen_min_length"))
    p.add_argument("--no-repeat-ngram-size", type=int, default=default("no_repeat_ngram_size"))
    p.add_argument("--early-stopping", type=_bool, default=default("early_stopping"), metavar="true|false")
    p.add_argument("--time-repeats", type=int, default=default("time_repeats"),
                   help="timed whole-generation passes, median reported (the last pass's outputs are scored; default 1)")
    p.add_argument("--time-warmup", type=int, default=default("time_warmup"),
                   help="untimed generation passes first (default 0)")


def add_parsers(sub) -> None:
    p = sub.add_parser("fit-hash", help="fit HashEE hashes on train+dev (never test): --task (ELUE) or --dataset "
                                        "(summarization: source tokens)")
    add_study_options(p)
    p.add_argument("--backbone", default=None, help="default: minilm (--task), minilm-seq2seq (--dataset)")
    p.add_argument("--setting", action="append", help="a HashEE setting, e.g. hash=mi,layers=6 (repeatable)")
    p.add_argument("--setting-out", action="append", help="hash file for the --setting at the same position")
    p.add_argument("--buckets", type=int, default=None,
                   help="buckets of settings that name none (default: the method's, 6)")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_fit_hash)

    p = sub.add_parser("train", help="fine-tune a method on an ELUE task (--task) or a summarization dataset "
                                     "(--dataset); best checkpoint on dev; resumable")
    add_study_options(p)
    add_training_options(
        p, methods_help="a registered method: ELUE's (hashee, static, the baselines, plugins); summarization's "
                        "(full, truncated, hashee, dat)",
        backbone=None, batch_size=None,
        hash_file_help="methods that use a hash (HashEE): one from fit-hash (ELUE default: fit one now; "
                       "summarization: required)",
        freeze_help="keep the word-embedding matrix fixed (summarization: the matrix tied to the LM head); "
                    "the CPU demo: a large share of a small model's step")
    p.add_argument("--evaluate-out", default=None,
                   help="then evaluate the trained model in this process, rows into this CSV (as `hashee evaluate`; "
                        "the same function)")
    p.add_argument("--predictions", default=None, help="with --evaluate-out: test predictions folder")
    p.add_argument("--splits", default=None, help="with --evaluate-out: default dev,test (ELUE), test (summarization)")
    p.add_argument("--max-train-examples", type=int, default=0,
                   help="train on N examples (default 0: all): ELUE a fixed random subset, the same for every method "
                        "and seed; summarization the first N")
    elue = p.add_argument_group("ELUE only (--task)")
    elue.add_argument("--flops-cache", default=argparse.SUPPRESS, help="with --evaluate-out: FLOPs cache folder")
    summ = p.add_argument_group("summarization only (--dataset)")
    summ.add_argument("--max-target-length", type=int, default=argparse.SUPPRESS, help="target tokens (default 128)")
    add_generation_options(summ, suppress=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="a trained model's metrics, per-instance FLOPs and test predictions (ELUE); "
                                        "generation, ROUGE, FLOPs and wall-clock (summarization)")
    p.add_argument("--model", required=True, help="a model folder of `train` (either study: its meta.json says which)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--splits", default=None, help="default dev,test (ELUE), test (summarization)")
    p.add_argument("--config-name", default="")
    p.add_argument("--batch-size", type=int, default=None, help="default 64 (ELUE), 16 (summarization)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="the rows CSV")
    p.add_argument("--predictions", default=None,
                   help="directory for test prediction TSVs (ELUE: index, pred, modules; summarization: <split>.tsv "
                        "with where, prediction, reference)")
    p.add_argument("--quiet", action="store_true")
    elue = p.add_argument_group("ELUE models only")
    elue.add_argument("--test-labels", default=argparse.SUPPRESS,
                      help="a labelled TSV (train/dev layout) for the test split; default: <TASK>/test_full.tsv if "
                           "present (ELUE keeps test labels private; the demo data writes them)")
    elue.add_argument("--flops-cache", default=argparse.SUPPRESS, help="directory of FLOPs counts shared between jobs")
    add_generation_options(p.add_argument_group("summarization models only"), suppress=True)
    p.set_defaults(func=cmd_evaluate)
