# Config validation, paths and input functions. The stage files (data.smk ... submission.smk)
# only list steps; everything they compute from the config is defined here.

import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
ELUE_TASKS = ["SST-2", "IMDb", "SNLI", "SciTail", "MRPC", "STS-B"]  # hashee.core.tasks.TASKS order
SPLITS = ["train", "dev", "test"]
HASH_METHODS = {"hashee"}  # methods whose training reads a fitted hash (fit_hash job)
REGRESSION_TASK = "STS-B"


# ---------------------------------------------------------------------------------------------
# Validation: one readable line naming the key and what was expected.


def _schema_description(schema, path):
    """Description of the deepest schema node along a config key path (follows properties,
    additionalProperties and items; `$ref` siblings keep their description)."""
    node, found = schema, schema.get("description")
    for key in path:
        props = node.get("properties", {})
        if isinstance(key, str) and key in props:
            node = props[key]
        elif isinstance(key, int) and isinstance(node.get("items"), dict):
            node = node["items"]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            break
        if "$ref" in node and "description" not in node:
            ref = node["$ref"].rsplit("/", 1)[-1]
            node = {**schema.get("$defs", {}).get(ref, {}), **node}
        found = node.get("description", found)
    return found


def _config_error(error, schema):
    path = list(error.absolute_path)
    key = ".".join(str(p) for p in path) or "(top level)"
    message = error.message.replace("\n", " ")
    expected = _schema_description(schema, path)
    line = f"config key '{key}': {message}"
    if expected:
        line += f" -- expected {' '.join(str(expected).split())}"
    return line


def validate_config(cfg):
    try:
        validate(cfg, schema=str(SCHEMA))
    except WorkflowError as err:
        cause = err.__cause__ or err.__context__  # the jsonschema ValidationError
        if not hasattr(cause, "absolute_path"):
            raise
        import yaml

        with open(SCHEMA) as fh:
            schema = yaml.safe_load(fh)
        raise WorkflowError(_config_error(cause, schema)) from None


def setting_fields(setting):
    """'hash=frequency,layers=6' -> {'hash': 'frequency', 'layers': '6'}."""
    return dict(part.split("=", 1) for part in setting.split(",") if "=" in part)


def check_config(cfg):
    """Cross-key checks the schema cannot express."""
    methods = cfg["methods"]
    ref = cfg["reference"]
    if ref["file"] is None and ref["method"] not in methods:
        raise WorkflowError(
            f"config key 'reference.method': {ref['method']!r} is not a key of 'methods' "
            f"({', '.join(methods)}) -- expected a measured method, or set reference.file to a reference CSV"
        )
    if ref["file"] is not None and not Path(ref["file"]).is_file():
        raise WorkflowError(f"config key 'reference.file': {ref['file']} does not exist -- expected a reference CSV")
    buckets = cfg["hash"]["buckets"]
    for setting in methods.get("hashee", []):
        layers = int(setting_fields(setting)["layers"])
        if buckets > layers:
            raise WorkflowError(
                f"config key 'hash.buckets': {buckets} buckets exceed the {layers} layers of hashee setting "
                f"{setting!r} -- expected hash.buckets <= layers for every hashee setting"
            )
    sub = cfg["submission"]
    if sub["method"] not in methods:
        raise WorkflowError(
            f"config key 'submission.method': {sub['method']!r} is not a key of 'methods' ({', '.join(methods)})"
        )
    if sub["setting"] not in methods[sub["method"]]:
        raise WorkflowError(
            f"config key 'submission.setting': {sub['setting']!r} is not a setting of methods.{sub['method']} "
            f"-- expected one of {', '.join(methods[sub['method']])}"
        )
    if REGRESSION_TASK in cfg["tasks"] and sub["method"] in cfg["regression_skip"]:
        raise WorkflowError(
            f"config key 'submission.method': {sub['method']!r} is in regression_skip, so it has no "
            f"{REGRESSION_TASK} predictions -- expected a method that runs on every task in 'tasks'"
        )


def resolve_elue_dir(value):
    """`data.elue_dir`; a value starting with '$' is read from that environment variable."""
    if value.startswith("$"):
        name = re.sub(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?.*$", r"\1", value)
        expanded = os.path.expandvars(value)
        if "$" in expanded or not expanded:
            raise WorkflowError(
                f"config key 'data.elue_dir' is {value!r} but environment variable {name} is not set "
                f"-- expected export {name}=/path/to/ELUE (with <TASK>/train.tsv, dev.tsv, test.tsv)"
            )
        value = expanded
    return os.path.expanduser(value)


validate_config(config)
check_config(config)


# ---------------------------------------------------------------------------------------------
# The config, named.

NAME = config["name"]
TASKS = config["tasks"]
SEEDS = config["seeds"]
METHODS = config["methods"]
# Out-of-tree methods (module names or .py files) the jobs' `hashee` commands import.
PLUGINS = [str(Path(p).resolve()) if p.endswith(".py") else p for p in config.get("plugins", [])]
if PLUGINS:
    os.environ.update(HASHEE_PLUGINS=",".join(PLUGINS))
HASH_SETTINGS = METHODS.get("hashee", [])  # one fit_hash job per task and seed fits them all
REGRESSION_SKIP = set(config["regression_skip"])
DEMO = config["data"]["demo"]
ELUE_DIR = resolve_elue_dir(config["data"]["elue_dir"]).rstrip("/")
TRAIN = config["train"]
TIMING = config["timing"]
REFERENCE = config["reference"]
SUBMISSION = config["submission"]
GPUS = config["gpus"]

# Paths: results/<config>/<stage>/{task}/{method}/{setting}/{seed}/...
RESULTS = f"results/{NAME}"
LOGS = f"logs/{NAME}"
BENCHMARKS = f"benchmarks/{NAME}"
WORK = f"work/{NAME}"
RUN = "{task}/{method}/{setting}/{seed}"
# GPU slot locks are per host (a shared file system must not serialize a cluster's GPUs).
GPU_LOCK_DIR = ".snakemake/gpu-locks"

# Helper scripts of the workflow (not part of the library): the GPU slot allocator, the warm launcher.
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
GPU_SLOTS = shlex.quote(str(SCRIPTS / "gpu_slots.py"))
WARM = shlex.quote(str(SCRIPTS / "warm.py"))
# warm_start: every `hashee <verb>` of a job runs in a child forked from one process that has
# already imported torch & co. (workflow/scripts/warm.py). It works by putting warm-bin/, whose
# `hashee` hands its arguments to that launcher, first on PATH: an environment switch, so toggling
# it reruns nothing, and the library never knows.
WARM_START = config.get("warm_start", False)
# Rules call the `hashee` CLI and `python` from PATH; put the interpreter running Snakemake first,
# so a virtual environment works without being activated (.venv/bin/snakemake ...).
_path = [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
if WARM_START:
    _path.insert(0, str(SCRIPTS / "warm-bin"))
os.environ.update(PATH=os.pathsep.join(_path))


wildcard_constraints:
    task="|".join(re.escape(t) for t in TASKS),
    method="|".join(re.escape(m) for m in METHODS),
    setting="[A-Za-z0-9=,._-]+",
    seed="[0-9]+",


# ---------------------------------------------------------------------------------------------
# What the config plans.


def planned_runs():
    """One dict per training run: every task x method x setting x seed, except the methods in
    regression_skip on the regression task."""
    return [
        {"task": task, "method": method, "setting": setting, "seed": seed}
        for task in TASKS
        for method, settings in METHODS.items()
        if not (task == REGRESSION_TASK and method in REGRESSION_SKIP)
        for setting in settings
        for seed in SEEDS
    ]


def run_paths(pattern):
    return [pattern.format(**run) for run in planned_runs()]


def get_final_output():
    tables = [f"{RESULTS}/tables/{table}.{ext}" for table in ("elue", "hash_ablation") for ext in ("md", "csv", "tex")]
    plots = [f"{RESULTS}/plots/pareto_{task}.png" for task in TASKS]
    return [f"{RESULTS}/runs.csv", *tables, *plots, f"{RESULTS}/submission", f"{RESULTS}/submission.zip",
            *difficulty_outputs(), *summarization_outputs()]  # defined in difficulty.smk, summarization.smk


# ---------------------------------------------------------------------------------------------
# Input functions and params helpers.


def data_files(task):
    """<elue_dir>/<TASK>/{train,dev,test}.tsv; without demo generation they must exist already."""
    files = [f"{ELUE_DIR}/{task}/{split}.tsv" for split in SPLITS]
    if DEMO["generate"]:
        files.append(f"{ELUE_DIR}/{task}/test_full.tsv")  # labelled test (demo only)
    else:
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise WorkflowError(
                f"missing ELUE data file {missing[0]} -- config key 'data.elue_dir' "
                f"({config['data']['elue_dir']!r}) must name a folder holding <TASK>/train.tsv, dev.tsv "
                f"and test.tsv for every task in 'tasks', or set data.demo.generate: true for synthetic data"
            )
    return files


# Real data is checked before planning, so a wrong data.elue_dir is one clear line, not a failed job.
if not DEMO["generate"]:
    for _task in TASKS:
        data_files(_task)


def task_data(wildcards):
    return data_files(wildcards.task)


def all_test_data(wildcards):
    return [data_files(task)[SPLITS.index("test")] for task in TASKS]


def data_dir(wildcards, input):
    """--data-dir of a job: the ELUE folder its first TSV input lives in."""
    return str(Path(input.data[0]).parents[1])


def train_input(wildcards):
    inputs = {"data": data_files(wildcards.task)}
    if wildcards.method in HASH_METHODS:
        inputs["hash"] = f"{RESULTS}/hashes/{wildcards.task}/{wildcards.setting}/{wildcards.seed}/hash.pt"
    return inputs


def hash_file_arg(wildcards, input):
    return f"--hash-file {shlex.quote(input.hash)}" if "hash" in input.keys() else ""


def train_param(key):
    """A train key for a job: train_by_method[<method>][key] if set, else train[key]."""

    def value(wildcards):
        return config.get("train_by_method", {}).get(wildcards.method, {}).get(key, TRAIN[key])

    return value


def max_length(wildcards):
    return TRAIN["max_length_by_task"].get(wildcards.task, TRAIN["max_length"])


def submission_input(wildcards):
    """The submitted method/setting at the first seed: per task (in `tasks` order) its test
    predictions and its model (for the FLOPs module list), plus the test files. Not runs.csv:
    the submission can be built while the other runs still train."""
    run = {"method": SUBMISSION["method"], "setting": SUBMISSION["setting"], "seed": SEEDS[0]}
    return {
        "predictions": [f"{RESULTS}/train/{RUN}/predictions".format(task=t, **run) for t in TASKS],
        "models": [f"{RESULTS}/train/{RUN}/model".format(task=t, **run) for t in TASKS],
        "data": all_test_data(wildcards),
    }


def reference_provenance():
    seeds = ",".join(str(s) for s in SEEDS)
    return (
        f"measured: method {REFERENCE['method']} ({', '.join(METHODS[REFERENCE['method']])}), "
        f"config {NAME}, backbone {config['backbone']}, seeds {seeds}"
    )
