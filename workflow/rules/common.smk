# Config validation, paths and input functions. The stage files (data.smk ... submission.smk)
# only list steps; everything they compute from the config is defined here.

import copy
import hashlib
import inspect
import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from hashee.core.errors import HasheeError
from hashee.core.methods import import_plugin, available_methods
from hashee.core.settings import parse_setting
from hashee.core.tasks import TASKS as TASK_SPECS

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
ELUE_TASKS = list(TASK_SPECS)  # every ELUE task, in the library's order (demo-data writes them all)
SPLITS = ["train", "dev", "test"]


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


# Choice mappings: what a run plans. Snakemake merges a --configfile onto config/config.yaml key by
# key, which would only ever add to the demo's methods and data sets; for these keys the user's own
# value (their --configfile files, then --config, merged in that order) replaces the default's, and
# an entry set to null is dropped (docs/configuration.md, "Selecting methods").
CHOICE_MAPPINGS = [("methods",), ("train_by_method",), ("summarization", "datasets"), ("summarization", "methods"),
                   ("backbones", "models"), ("backbones", "published")]
REMOVED_KEYS = {
    "regression_skip": "whether a method runs on STS-B is its class attribute supports_regression "
    "(docs/adding-a-baseline.md); delete the key",
    "warm_start": "the fork server it switched on is gone (it saved ~4 CPU-s of start-up per job; docs/architecture.md, "
    "\"Jobs\"); delete the key",
}


def replace_choice_mappings(cfg, user_cfg):
    """Each CHOICE_MAPPINGS key the user's config names: the user's mapping, less its null entries."""
    for *parents, key in CHOICE_MAPPINGS:
        given, target = user_cfg, cfg
        for parent in parents:
            given = given.get(parent) if isinstance(given, Mapping) else None
            target = target.get(parent) if isinstance(target, Mapping) else None
        if not (isinstance(given, Mapping) and key in given and isinstance(target, dict)):
            continue
        value = copy.deepcopy(given[key])  # validation fills defaults in: never into Snakemake's copy
        if isinstance(value, Mapping):  # anything else is left to validation to name
            value = {name: entry for name, entry in value.items() if entry is not None}
        target[key] = value


def registered_methods(plugins):
    """id -> Method class: this installation's methods plus the config's plugins, imported here as
    the jobs import them, so that the class facts below are theirs."""
    try:
        for plugin in plugins:
            import_plugin(plugin)
        return dict(available_methods())
    except HasheeError as err:
        raise WorkflowError(f"config key 'plugins': {err}") from None


def check_config(cfg, method_classes):
    """Cross-key checks the schema cannot express."""
    methods = cfg["methods"]
    for method in methods:
        if method not in method_classes:
            raise WorkflowError(
                f"config key 'methods.{method}': no such method -- expected one of "
                f"{', '.join(sorted(method_classes))}, or a module listed under 'plugins' that registers it"
            )
    ref = cfg["reference"]
    if ref["file"] is None and ref["method"] not in methods:
        raise WorkflowError(
            f"config key 'reference.method': {ref['method']!r} is not a key of 'methods' "
            f"({', '.join(methods)}) -- expected a measured method, or set reference.file to a reference CSV"
        )
    if ref["file"] is not None and not Path(ref["file"]).is_file():
        raise WorkflowError(f"config key 'reference.file': {ref['file']} does not exist -- expected a reference CSV")
    buckets = cfg["hash"]["buckets"]
    for method, settings in methods.items():
        if not method_classes[method].needs_fitted_hash:
            continue
        for setting in settings:
            layers = parse_setting(setting).get("layers")
            if layers is not None and buckets > int(layers):
                raise WorkflowError(
                    f"config key 'hash.buckets': {buckets} buckets exceed the {layers} layers of {method} setting "
                    f"{setting!r} -- expected hash.buckets <= layers for every {method} setting"
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
    regression = [task for task in cfg["tasks"] if TASK_SPECS[task].is_regression]
    if regression and not method_classes[sub["method"]].supports_regression:
        raise WorkflowError(
            f"config key 'submission.method': {sub['method']!r} has no regression exit rule (supports_regression "
            f"is False), so it has no {regression[0]} predictions -- expected a method that runs on every task in 'tasks'"
        )


def resolve_env_path(key, value, expected):
    """A path-valued config key; a value starting with '$' is read from that environment variable
    (`expected`: the folder the variable should name, for the error: /path/to/<expected>)."""
    if value.startswith("$"):
        name = re.sub(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?.*$", r"\1", value)
        expanded = os.path.expandvars(value)
        if "$" in expanded or not expanded:
            raise WorkflowError(
                f"config key '{key}' is {value!r} but environment variable {name} is not set "
                f"-- expected export {name}=/path/to/{expected}"
            )
        value = expanded
    return os.path.expanduser(value).rstrip("/")


replace_choice_mappings(config, workflow.config_settings.overwrite_config)
for _key, _why in REMOVED_KEYS.items():
    if _key in config:
        raise WorkflowError(f"config key '{_key}' is no longer read -- {_why}")
validate_config(config)
# Out-of-tree methods (module names or .py files) the jobs' `hashee` commands import.
PLUGINS = [str(Path(p).resolve()) if p.endswith(".py") else p for p in config.get("plugins", [])]
METHOD_CLASSES = registered_methods(PLUGINS)
check_config(config, METHOD_CLASSES)


# ---------------------------------------------------------------------------------------------
# The config, named.

NAME = config["name"]
TASKS = config["tasks"]
SEEDS = config["seeds"]
METHODS = config["methods"]
# The jobs that look methods up in the registry (train; submission, which loads the models; tables,
# which read each method's sweep_keys) get the plugins as a variable on their command line
# (params.plugins_env), so planning leaves Snakemake's own environment alone.
PLUGINS_ENV = f"HASHEE_PLUGINS={shlex.quote(','.join(PLUGINS))} " if PLUGINS else ""
# Methods whose training reads a fitted hash; one fit_hash job per task and seed fits all their settings.
FITTED_HASH_METHODS = {method for method in METHODS if METHOD_CLASSES[method].needs_fitted_hash}
HASH_SETTINGS = list(dict.fromkeys(s for m in METHODS if m in FITTED_HASH_METHODS for s in METHODS[m]))
DEMO = config["data"]["demo"]
ELUE_DIR = resolve_env_path(
    "data.elue_dir", config["data"]["elue_dir"], "ELUE (with <TASK>/train.tsv, dev.tsv, test.tsv)"
)
TRAIN = config["train"]
TIMING = config["timing"]
REFERENCE = config["reference"]
SUBMISSION = config["submission"]
GPUS = config["gpus"]

# Paths: results/<config>/<stage>/{task}/{method}/{setting}/{seed}/...
RESULTS = f"results/{NAME}"
LOGS = f"logs/{NAME}"
BENCHMARKS = f"{LOGS}/benchmarks"  # Snakemake's benchmark: files
WORK = f"work/{NAME}"
RUN = "{task}/{method}/{setting}/{seed}"
# GPU slot locks are per host (a shared file system must not serialize a cluster's GPUs).
GPU_LOCK_DIR = ".snakemake/gpu-locks"

# Helper scripts of the workflow (not part of the library): the GPU slot allocator.
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
GPU_SLOTS = shlex.quote(str(SCRIPTS / "gpu_slots.py"))
# Rules call the `hashee` CLI and `python` from PATH; put the interpreter running Snakemake first,
# so a virtual environment works without being activated (.venv/bin/snakemake ...). An edit of the
# inherited environment, not a command-line prefix: a changed command would rerun every job.
os.environ.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


wildcard_constraints:
    task="|".join(re.escape(t) for t in TASKS),
    method="|".join(re.escape(m) for m in METHODS),
    setting="[A-Za-z0-9=,._-]+",
    seed="[0-9]+",


# ---------------------------------------------------------------------------------------------
# What the config plans.


def planned_runs():
    """One dict per training run: every task x method x setting x seed, except a method without a
    regression exit rule (its class's supports_regression) on a regression task (STS-B); then the
    backbones experiment's runs that are not among them (backbones.smk)."""
    runs = [
        {"task": task, "method": method, "setting": setting, "seed": seed}
        for task in TASKS
        for method, settings in METHODS.items()
        if METHOD_CLASSES[method].supports_regression or not TASK_SPECS[task].is_regression
        for setting in settings
        for seed in SEEDS
    ]
    return runs + [run for run in backbone_runs() if run not in runs]


def run_paths(pattern):
    return [pattern.format(**run) for run in planned_runs()]


def get_final_output():
    tables = [f"{RESULTS}/tables/{table}.{ext}" for table in ("elue", "hash_ablation") for ext in ("md", "csv", "tex")]
    plots = [f"{RESULTS}/plots/pareto_{task}.png" for task in TASKS]
    return [f"{RESULTS}/runs.csv", *tables, *plots, f"{RESULTS}/submission", f"{RESULTS}/submission.zip",
            *difficulty_outputs(), *summarization_outputs(), *backbones_outputs()]  # difficulty.smk, summarization.smk, backbones_common.smk


# ---------------------------------------------------------------------------------------------
# Input functions and params helpers.


def launch_detail(value):
    """A params entry for how a job is launched (the GPU slot helper's path, the plugins' variable), not
    what it computes: a function of `input`, which Snakemake counts as derived from the inputs and
    leaves out of its params rerun trigger, so moving the checkout or adding a plugin reruns nothing."""
    return lambda wildcards, input: value


def data_files(task):
    """<elue_dir>/<TASK>/{train,dev,test}.tsv, and the labelled test_full.tsv where there is one (the jobs score
    test with it: an input, so provenance.json hashes it and a new one reruns them); without demo generation
    they must exist already."""
    files = [f"{ELUE_DIR}/{task}/{split}.tsv" for split in SPLITS]
    labelled = f"{ELUE_DIR}/{task}/test_full.tsv"
    if DEMO["generate"]:
        files.append(labelled)
    else:
        if os.path.isfile(labelled):
            files.append(labelled)
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


def tasks_data(tasks):
    """The data files of `tasks`, in order."""
    return [path for task in tasks for path in data_files(task)]


@dataclass(frozen=True)
class TaskCut:
    """How the jobs of a train or fit_hash rule cover tasks. Either one job for all of `tasks`, their paths
    spelled out and {task} left in path options for the CLI to fill in per task; or, with `task_wildcard`,
    one job per task ({task} a wildcard). The methods return what the rule needs from that, as functions
    of the job's wildcards."""

    tasks: tuple
    task_wildcard: bool

    def job_tasks(self, wildcards):
        return [wildcards.task] if self.task_wildcard else list(self.tasks)

    def task_of(self, wildcards):
        """A path's task folder: the job's task, or {task} for the CLI to fill in per task."""
        return wildcards.task if self.task_wildcard else "{task}"

    @property
    def path_tasks(self):
        """The task folders of the rule's outputs."""
        return ["{task}"] if self.task_wildcard else list(self.tasks)

    def data(self):
        return lambda wildcards: tasks_data(self.job_tasks(wildcards))

    def task_args(self):
        return lambda wildcards: " ".join(f"--task {shlex.quote(task)}" for task in self.job_tasks(wildcards))

    def max_length(self):
        """--max-length of a job: its tasks' (a job of several tasks is cut so that they share it)."""
        return lambda wildcards: task_max_length(self.job_tasks(wildcards)[0])


@dataclass(frozen=True)
class TrainGroup:
    """The train jobs of `method`'s `settings` (trained in that order) on `backbone` for `tasks`, per seed:
    one job for all the tasks (train.jobs: per_method; they share an input length), one per task
    (per_task), or one per task and setting (per_setting, a single setting)."""

    method: str
    settings: tuple
    backbone_label: str | None  # a backbones-experiment label, None: the config's own backbone
    tasks: tuple
    jobs: str = "per_method"
    part: int = 0  # > 0: another group of the same name (other settings, tasks or input length)

    @property
    def cut(self):
        return TaskCut(self.tasks, task_wildcard=self.jobs != "per_method")

    @property
    def label(self):
        if self.jobs == "per_setting":
            return f"{self.method}/{self.settings[0]}"  # the run's own path, as its results
        return self.method + (f"@{self.backbone_label}" if self.backbone_label else "")

    @property
    def identifier(self):
        return re.sub(r"\W", "_", self.label)

    @property
    def rule_name(self):
        return f"train_{self.identifier}_{self.part}" if self.part else f"train_{self.identifier}"

    @property
    def job_path(self):
        """The job's log and benchmark path below train/, without the seed."""
        if self.cut.task_wildcard:
            return f"{{task}}/{self.label}"
        return self.label + (f"_{self.part}" if self.part else "")

    @property
    def backbone(self):
        return backbone_for_label(self.backbone_label)

    @property
    def priority(self):
        """Runs per job, above the studies' long jobs (10): with more jobs ready than slots, the ones that train
        most start first (per_method: static's 36 runs and HashEE's 30, then a baseline's 6)."""
        return 20 + len(self.settings) * (1 if self.cut.task_wildcard else len(self.tasks))


def train_groups():
    """The planned runs as train jobs: per task, method and backbone label the settings (in config order;
    every seed the same); train.jobs decides how they are cut into jobs (TrainGroup). Tasks with the same
    settings share a rule (they differ only on STS-B, where a method without a regression rule is not
    planned, or in the backbones experiment); per_method also needs the same input length (max_length_by_task)."""
    settings = {}
    for run in planned_runs():
        key = (run["task"], run["method"], backbone_label(run["setting"]))
        settings.setdefault(key, [])
        if run["setting"] not in settings[key]:
            settings[key].append(run["setting"])
    jobs = TRAIN["jobs"]
    tasks = {}
    for (task, method, label), group_settings in settings.items():
        length = task_max_length(task) if jobs == "per_method" else None
        for chunk in ([(s,) for s in group_settings] if jobs == "per_setting" else [tuple(group_settings)]):
            tasks.setdefault((method, chunk, label, length), []).append(task)
    groups, parts = [], {}
    for (method, group_settings, label, _length), group_tasks in tasks.items():
        group = TrainGroup(method, group_settings, label, tuple(group_tasks), jobs)
        part = parts[group.identifier] = parts.get(group.identifier, -1) + 1
        groups.append(replace(group, part=part))
    return groups


def group_outputs(group, name):
    """A train rule's outputs: `name` under each run folder of the group, {seed} (and {task}, for a job per
    task) left as wildcards."""
    return [f"{RESULTS}/train/{task}/{group.method}/{setting}/{{seed}}/{name}" for task in group.cut.path_tasks
            for setting in group.settings]


def run_pattern(root, group, *names):
    """A path option of a group's `hashee train` (params): one run's folder, or `names` under it, below
    `root`, {setting} (and {task}, in a job of several tasks) left for the CLI to fill in, quoted whole
    (one path per option in the command)."""
    return lambda wildcards: shlex.quote(
        str(Path(root, group.cut.task_of(wildcards), group.method, "{setting}", str(wildcards.seed), *names)))


def hash_file(task, setting, seed):
    """A fitted hash (hashes.smk); any argument may be a {placeholder}."""
    return f"{RESULTS}/hashes/{task}/{setting}/{seed}/hash.pt"


def group_hash_files(group):
    """Input of a method that trains from a fitted hash (HashEE): each task's and setting's hash file (hashes.smk)."""
    if group.method not in FITTED_HASH_METHODS:
        return []
    return lambda wildcards: [hash_file(task, setting, wildcards.seed)
                              for task in group.cut.job_tasks(wildcards) for setting in group.settings]


def group_hash_arg(group):
    """--hash-file of a train job with hash inputs: the pattern of its runs' hash files."""
    return lambda wildcards, input: (
        f"--hash-file {shlex.quote(hash_file(group.cut.task_of(wildcards), '{setting}', wildcards.seed))}"
        if input.hashes else "")


# ------------------------------------------------------------------ hashes.smk
def hash_cuts():
    """The tasks of each fit_hash rule, per_method one job per input length, else one job per task."""
    if TRAIN["jobs"] != "per_method":
        return [TaskCut(tuple(TASKS), task_wildcard=True)]
    by_length = {}
    for task in TASKS:
        by_length.setdefault(task_max_length(task), []).append(task)
    return [TaskCut(tuple(tasks), task_wildcard=False) for tasks in by_length.values()]


def hash_job_path(cut, part):
    """A fit_hash job's log and benchmark path below hashes/, without the seed."""
    return "{task}" if cut.task_wildcard else "all" + (f"_{part}" if part else "")


def hash_pairs(cut):
    """--setting S --setting-out FILE per HashEE setting; FILE keeps {task} for the CLI in a job of several."""
    def pairs(wildcards):
        task = cut.task_of(wildcards)
        return " ".join(f"--setting {shlex.quote(setting)} "
                        f"--setting-out {shlex.quote(hash_file(task, setting, wildcards.seed))}"
                        for setting in HASH_SETTINGS)
    return pairs


# ------------------------------------------------------------------ timing.smk
def timed_models(wildcards):
    """A timing job's models: its task's (per_task), or every task's (the job `all`)."""
    return [f"{RESULTS}/train/{RUN}/model".format(**run) for run in planned_runs()
            if wildcards.task in ("all", run["task"])]


def timing_data(wildcards):
    return tasks_data(TASKS if wildcards.task == "all" else [wildcards.task])


def plugin_source_digest(method):
    """SHA-256 of the file that defines a plugin's method, '' for this project's own methods (the commit in
    provenance.json pins those). A params entry of the train jobs: Snakemake tracks params, so an edit to a
    plugin reruns its method, where the module, outside the workflow, would otherwise go unnoticed."""
    cls = METHOD_CLASSES[method]
    if cls.__module__.split(".")[0] in ("hashee", "baselines"):
        return ""
    return hashlib.sha256(Path(inspect.getsourcefile(cls)).read_bytes()).hexdigest()


def train_param(method, key):
    """A train key of `method`'s jobs: train_by_method[<method>][key] if set, else train[key]."""
    return config.get("train_by_method", {}).get(method, {}).get(key, TRAIN[key])


def task_max_length(task):
    return TRAIN["max_length_by_task"].get(task, TRAIN["max_length"])


def max_length(wildcards):
    return task_max_length(wildcards.task)


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
