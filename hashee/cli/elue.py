"""The ELUE verbs of `hashee`: demo data, evaluation, timing, tables, submission (`fit-hash`, `train` and
`evaluate`, both studies': hashee/cli/training.py). Thin: parse arguments, call the
library, write outputs atomically (temporary name, then rename). User errors print one line."""

from __future__ import annotations

import json
import os

from hashee.cli.common import int_list, resolve_device


# ---------------------------------------------------------------- demo-data
def cmd_demo_data(args) -> None:
    from hashee.core.io import atomic_dir
    from hashee.studies.elue.data import write_demo_data

    with atomic_dir(args.out) as tmp:
        write_demo_data(tmp, seed=args.seed, size=args.size)
    print(f"wrote synthetic ELUE-layout data (seed {args.seed}, size {args.size}) to {args.out}")


# ---------------------------------------------------------------- evaluate
def evaluate_model(model_dir, args, device, *, rows_out, splits, test_labels, batch_size) -> None:
    """`hashee evaluate` of an ELUE model, and `hashee train --task --evaluate-out` (hashee/cli/training.py)."""
    from hashee.measure.evaluation import evaluate_trained

    evaluation = evaluate_trained(model_dir, args.data_dir, rows_out, predictions_out=args.predictions,
                                  splits=splits, test_labels=test_labels, batch_size=batch_size, device=device,
                                  flops_cache=args.flops_cache, progress=not args.quiet)
    if not args.quiet:
        print(evaluation.rows[["task", "method", "setting", "split", "perf", "mflops", "speedup"]]
              .to_string(index=False))


# ---------------------------------------------------------------- time
def cmd_time(args) -> None:
    import torch

    from hashee.measure.timing import TimingOptions, keep_freed_memory, time_models

    kept = keep_freed_memory()
    if args.threads:
        # Snakemake's cores are job slots (profiles/default: 8) and may outnumber the CPUs this process
        # may use; more torch threads than CPUs would time the threads' contention, not the model.
        torch.set_num_threads(max(1, min(args.threads, len(os.sched_getaffinity(0)))))
    device = resolve_device(args.device)
    options = TimingOptions(batch_sizes=tuple(args.batch_sizes), repeats=args.repeats, warmup=args.warmup,
                            max_instances=args.max_instances, max_points=args.max_points, dtype=args.dtype)
    # The log says what the timing held: a stage that shared its cores would time the sharing.
    print(f"timing {len(args.model)} model(s) on {device} with {torch.get_num_threads()} thread(s)"
          f"{' (CUDA events)' if device.type == 'cuda' else ''}, freed memory {'kept' if kept else 'returned'}"
          f": {options}", flush=True)
    frame = time_models(args.model, args.data_dir, options, device, args.out,
                        log=(lambda text: print(text, flush=True)) if not args.quiet else None)
    print(f"timed {frame['setting'].nunique()} setting(s) x {len(options.batch_sizes)} batch size(s) -> {args.out}")


# ---------------------------------------------------------------- gather / reference / tables
def cmd_backbones(args) -> None:
    from hashee.core.errors import unknown_name
    from hashee.core.methods import available_methods
    from hashee.measure.backbones import compared_methods, write_backbones

    if args.setting is None:
        method, classes = compared_methods(args.method)[0], available_methods()
        if method not in classes:
            raise unknown_name("method", method, classes)
        args.setting = classes[method].backbones_setting or ""

    labels = [label for label in args.labels.split(",") if label]
    write_backbones(args.runs, args.out_dir, args.plot, labels, args.own, args.setting, args.reference_setting,
                    config_name=args.config_name, method=args.method, reference=args.reference)
    print(f"backbones table -> {args.out_dir}, plot -> {args.plot}")


def cmd_gather(args) -> None:
    from hashee.measure.results import gather

    gather(args.rows, args.times or [], args.out)
    print(f"gathered {len(args.rows)} rows files -> {args.out}")


def cmd_inference_time(args) -> None:
    from hashee.measure.inference_time import write_inference_time

    table = write_inference_time(args.runs, args.times, args.out_dir, plots_dir=args.plots_dir,
                                 config_name=args.config_name)
    print(f"inference-time comparison ({len(table)} timed points) -> {args.out_dir}"
          + (f", plots -> {args.plots_dir}" if args.plots_dir else ""))


def cmd_reference(args) -> None:
    from hashee.measure.score import reference_from_runs

    curve = reference_from_runs(args.runs, args.method, args.out, provenance=args.provenance)
    print(f"reference curve ({args.method or 'the reference method'}, {len(curve)} points) -> {args.out}")


def cmd_bootstrap(args) -> None:
    from hashee.measure.bootstrap import write_bootstrap

    boot = write_bootstrap(args.predictions, args.data_dir, args.out, replicates=args.replicates, seed=args.seed)
    print(f"bootstrap: {len(boot.keys)} test points x {boot.replicates} replicates -> {args.out}")


def cmd_tables(args) -> None:
    from hashee.measure.plots import pareto_plots
    from hashee.measure.results import read_runs
    from hashee.measure.score import read_reference
    from hashee.studies.elue.table import write_tables

    write_tables(args.runs, args.reference, args.out_dir, beyond=args.beyond, config_name=args.config_name,
                 bootstrap_path=args.bootstrap, level=args.level, own_backbone=args.backbone_label or None)
    if args.plots_dir:
        from hashee.measure.bootstrap import load_bootstrap

        boot = load_bootstrap(args.bootstrap) if args.bootstrap else None
        pareto_plots(read_runs(args.runs), read_reference(args.reference), args.plots_dir, paper=args.paper_points,
                     boot=boot, level=args.level)
    print(f"tables -> {args.out_dir}" + (f", plots -> {args.plots_dir}" if args.plots_dir else ""))


# ---------------------------------------------------------------- submission
def cmd_submit(args) -> None:
    from hashee.studies.elue.submit import write_submission

    write_submission(args.predictions, args.model, args.out_dir, zip_path=args.zip, flops_cache=args.flops_cache)
    print(f"ELUE submission -> {args.out_dir}" + (f" and {args.zip}" if args.zip else ""))


def cmd_zip_submission(args) -> None:
    from hashee.studies.elue.submit import write_zip

    names = write_zip(args.directory, args.zip)
    print(f"{args.directory} -> {args.zip} ({len(names)} files)")


def cmd_validate_submission(args) -> int:
    from hashee.studies.elue.validate import validate_submission

    problems = validate_submission(args.directory, args.data_dir, tasks=args.tasks.split(",") if args.tasks else None)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{args.directory}: submission is valid")
    return 0


def cmd_score_submission(args) -> None:
    from hashee.core.io import write_csv_atomic
    from hashee.studies.elue.score_submission import format_score, score_submission

    result = score_submission(args.directory, args.data_dir, args.reference, labels_dir=args.labels_dir,
                              tasks=args.tasks.split(",") if args.tasks else None, beyond=args.beyond)
    if args.out:
        write_csv_atomic(args.out, result.files)
    print(format_score(result, source=args.reference))


def cmd_report_page(args) -> None:
    from hashee.measure.report import write_page

    print(f"{args.source} -> {write_page(args.source, args.out, title=args.title)}")


def cmd_info(args) -> None:
    """Versions, threads and devices: what a bug report needs."""
    import platform

    import torch
    import transformers

    from hashee import __version__

    info = {"hashee": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), "gpus": torch.cuda.device_count(),
            "cwd": os.getcwd(), "pid": os.getpid()}
    print(json.dumps(info) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items()))


# ---------------------------------------------------------------- provenance
def cmd_provenance(args) -> None:
    from hashee.measure.provenance import collect, parse_config_json, write

    record = collect(data_files=args.data, config=parse_config_json(args.config_json), lock_file=args.lock_file,
                     repo_dir=args.repo_dir)
    write(args.out, record)
    print(f"provenance (commit {record['git_commit'] or 'unknown'}, {len(record['data'])} data files) -> {args.out}")


# ---------------------------------------------------------------- parser
def add_parsers(sub) -> None:
    """The ELUE verbs."""

    p = sub.add_parser("info", help="versions, torch threads, CUDA devices (for bug reports)")
    p.add_argument("--json", action="store_true", help="one JSON line")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo-data", help="write the synthetic offline ELUE-layout data set")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="small", choices=["small", "tiny"])
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("time", help="wall-clock of trained models' predictions, one model after another (GPU: CUDA events)")
    p.add_argument("--model", nargs="+", required=True, help="trained model folder(s), timed in turn in this process")
    p.add_argument("--data-dir", required=True, help="the ELUE folder whose <TASK>/test.tsv is timed")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads, at most the CPUs available (0: torch's "
                                                          "default; the workflow passes every core it holds)")
    p.add_argument("--out", required=True, help="one CSV: a row per model x timed sweep point x batch size")
    p.add_argument("--batch-sizes", type=int_list, default=[1, 32], help="batch sizes (ELUE: 1, one instance at a time)")
    p.add_argument("--repeats", type=int, default=5, help="timed passes; every call of every pass is a latency sample")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (cycling over the batches)")
    p.add_argument("--max-instances", type=int, default=0, help="time the first N test instances (0: all)")
    p.add_argument("--max-points", type=int, default=0,
                   help="time N sweep points per model, evenly spread, ends included (0: every point)")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="autocast dtype on GPU")
    p.add_argument("--quiet", action="store_true", help="no line per timed row")
    p.set_defaults(func=cmd_time)

    p = sub.add_parser("gather", help="concatenate per-job rows into runs.csv, joining batch-1 wall time")
    p.add_argument("--out", required=True)
    p.add_argument("--rows", nargs="+", required=True)
    p.add_argument("--times", nargs="*", default=[])
    p.set_defaults(func=cmd_gather)

    p = sub.add_parser("bootstrap", help="bootstrap replicates (perf, MFLOPs) of every test point, for intervals")
    p.add_argument("--predictions", nargs="+", required=True,
                   help="predictions dirs of `hashee evaluate --predictions` (rows.csv beside each)")
    p.add_argument("--data-dir", required=True, help="ELUE folder with <TASK>/test.tsv and test_full.tsv")
    p.add_argument("--out", required=True, help="the replicates file (.npz)")
    p.add_argument("--replicates", type=int, default=1000)
    p.add_argument("--seed", type=int, default=2022, help="resampling seed, shared by every run of a task")
    p.set_defaults(func=cmd_bootstrap)

    p = sub.add_parser("inference-time", help="measured vs FLOPs speed-up table (md/csv/tex) and plots, from "
                                              "runs.csv and the timing stage's CSVs")
    p.add_argument("--runs", required=True, help="runs.csv (the FLOPs of each point)")
    p.add_argument("--times", nargs="+", required=True, help="the timing CSVs (hashee time)")
    p.add_argument("--out-dir", required=True, help="folder of inference_time.{md,csv,tex}")
    p.add_argument("--plots-dir", default=None, help="folder of inference_time_<TASK>.png")
    p.add_argument("--config-name", default="")
    p.set_defaults(func=cmd_inference_time)

    p = sub.add_parser("reference", help="ELUE reference curve points from the static runs")
    p.add_argument("--runs", required=True)
    p.add_argument("--method", default=None, help="whose runs (default: the registered reference method, "
                                                   "is_reference: the static model)")
    p.add_argument("--provenance", default="")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("tables", help="ELUE and ablation tables (md/csv/tex) and Pareto plots")
    p.add_argument("--runs", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--plots-dir", default=None)
    p.add_argument("--config-name", default="")
    p.add_argument("--beyond", default="extend", choices=["extend", "clamp", "error"])
    p.add_argument("--bootstrap", default=None, help="replicates file of `hashee bootstrap`: intervals in the tables")
    p.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals")
    p.add_argument("--paper-points", action="store_true",
                   help="overlay the paper's published points on the plots (the paper's backbone only)")
    p.add_argument("--backbone-label", default="",
                   help="how the ELUE table names the config's own backbone where runs on several backbones are in it")
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("backbones", help="the effect of backbones: the compared method (HashEE) vs the reference "
                       "(static) model per backbone (backbones.md/csv/tex and a plot)")
    p.add_argument("--runs", required=True)
    p.add_argument("--labels", required=True, help="comma-separated backbone labels, in the table's order")
    p.add_argument("--own", default=None,
                   help="the label of the config's own backbone, whose runs carry no backbone=<label> key")
    p.add_argument("--method", default=None,
                   help="the compared method (default: the registered class with a backbones_setting, HashEE)")
    p.add_argument("--setting", default=None, help="its setting (default: its class's backbones_setting)")
    p.add_argument("--reference", default=None, help="the reference method (default: the is_reference class, static)")
    p.add_argument("--reference-setting", default="layers=6", help="the reference model's setting")
    p.add_argument("--out-dir", required=True, help="folder for backbones.md, .csv and .tex")
    p.add_argument("--plot", required=True, help="the PNG to write")
    p.add_argument("--config-name", default="")
    p.set_defaults(func=cmd_backbones)

    p = sub.add_parser("provenance", help="record commit, lock file, versions, hardware, data hashes, config (JSON)")
    p.add_argument("--config-json", default="{}", help="the merged config as JSON text (the workflow passes its own)")
    p.add_argument("--data", nargs="*", default=[], help="the data files the run reads (each gets its SHA-256)")
    p.add_argument("--lock-file", default=None, help="default: requirements.lock at the root of --repo-dir")
    p.add_argument("--repo-dir", default=None, help="the git checkout to describe (default: hashee's own)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_provenance)

    p = sub.add_parser("submit", help="write an ELUE submission folder (+ zip)")
    p.add_argument("--predictions", nargs="+", required=True, help="one predictions dir per task (from evaluate)")
    p.add_argument("--model", nargs="+", required=True, help="the trained model dir of each task, same order")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--zip", default=None)
    p.add_argument("--flops-cache", default=None,
                   help="the train jobs' FLOPs cache: our model's counts are read from it (the model file's are recounted)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("zip-submission", help="zip a submission folder reproducibly (only the files ELUE reads)")
    p.add_argument("directory")
    p.add_argument("zip")
    p.set_defaults(func=cmd_zip_submission)

    p = sub.add_parser("validate-submission", help="check a submission folder against the task test files")
    p.add_argument("directory")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--tasks", default=None, help="comma-separated tasks (default: all six)")
    p.set_defaults(func=cmd_validate_submission)

    p = sub.add_parser("score-submission",
                       help="the ELUE score a submission would get: per-task perf, MFLOPs rebuilt from `modules`, score")
    p.add_argument("directory", help="the submission folder (or its zip)")
    p.add_argument("--data-dir", required=True, help="folder holding <TASK>/test.tsv")
    p.add_argument("--labels-dir", default=None,
                   help="folder holding the labelled <TASK>/test_full.tsv (test rows in order; default: --data-dir)")
    p.add_argument("--reference", required=True, help="the reference curve CSV (`hashee reference`; results/<config>/reference.csv)")
    p.add_argument("--tasks", default=None, help="comma-separated tasks (default: all six)")
    p.add_argument("--beyond", default="extend", choices=["extend", "clamp", "error"],
                   help="p_EB outside the reference curve's FLOPs range")
    p.add_argument("--out", default=None, help="also write the per-file rows to this CSV")
    p.set_defaults(func=cmd_score_submission)

    p = sub.add_parser("report-page", help="a table's .md or provenance.json as an HTML page for the Snakemake report")
    p.add_argument("source", help="tables/<name>.md or provenance.json")
    p.add_argument("out", help="the HTML page to write")
    p.add_argument("--title", default=None, help="page title (default: from the file name)")
    p.set_defaults(func=cmd_report_page)


