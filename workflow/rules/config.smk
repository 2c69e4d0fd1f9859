# The config: validated (the schema, removed keys, cross-key checks), then named, with the paths of the
# outputs. The one place that reads and checks the config; planning.smk plans from what it names, and
# inputs.smk holds the rules' input functions. The stage files (data.smk ... submission.smk) only list steps.

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

from hashee.core.data import SPLITS  # train, dev, test: the library's ELUE file names
from hashee.core.errors import HasheeError
from hashee.core.methods import import_plugin, available_methods
from hashee.core.settings import parse_setting
from hashee.core.tasks import TASKS as TASK_SPECS

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
ELUE_TASKS = list(TASK_SPECS)  # every ELUE task, in the library's order (demo-data writes them all)


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
# Keys no longer read, dotted for nested ones ("backbones.hashee"): one line each, saying what to do instead.
REMOVED_KEYS = {
    "regression_skip": "whether a method runs on STS-B is its class attribute supports_regression "
    "(docs/adding-a-baseline.md); delete the key",
    "warm_start": "the fork server it switched on is gone (it saved ~4 CPU-s of start-up per job; docs/architecture.md, "
    "\"Jobs\"); delete the key",
    # The backbones experiment names no method: the compared method is the class with a backbones_setting.
    "backbones.hashee": "spell it backbones.setting (the compared method's setting on every backbone; "
    "docs/backbones.md)",
    "backbones.static": "spell it backbones.reference_setting (the reference model's setting on every backbone; "
    "docs/backbones.md)",
}


def removed_key(cfg, dotted):
    """True where `cfg` holds the dotted key `dotted`."""
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


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
    # The default's more_submissions name the default's methods: a config that chooses its methods
    # submits what it names itself (none, unless it sets more_submissions too).
    if isinstance(user_cfg, Mapping) and "methods" in user_cfg and "more_submissions" not in user_cfg:
        cfg["more_submissions"] = []


# The rehearsal (rehearsal.enabled; config/rehearsal.yaml over config/paper.yaml, docs/paper-run.md): the config's
# hub models and data folders are replaced before anything reads them (hashee.studies.rehearsal.config).
HUB_STANDINS = {}  # <hub_dir>/<name> -> the hub name it stands in for


def apply_rehearsal(cfg):
    from hashee.studies.rehearsal.config import rehearse

    try:
        HUB_STANDINS.update(rehearse(cfg))
    except HasheeError as err:
        raise WorkflowError(str(err)) from None


def standin_input(name):
    """Input of a job that loads backbone `name`: the rehearsal's tiny checkpoint folder, if it stands in."""
    return [name] if name in HUB_STANDINS else []


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
    submissions = submission_keys(cfg)
    for key, sub in submissions:
        check_submission(key, sub, cfg, methods, method_classes)
    submitted = [sub["method"] for _, sub in submissions[1:]]
    twice = sorted({m for m in submitted if submitted.count(m) > 1})
    if twice:
        raise WorkflowError(
            f"config key 'more_submissions': method {twice[0]!r} is listed twice -- expected each method at most "
            "once (its submission is results/<config>/submissions/<method>/)"
        )


def submission_keys(cfg):
    """(config key, {method, setting}) of every submission: `submission`, then `more_submissions`."""
    more = cfg.get("more_submissions") or []  # its shape: workflow/schemas/config.schema.yaml
    return [("submission", cfg["submission"])] + [(f"more_submissions[{i}]", sub) for i, sub in enumerate(more)]


def check_submission(key, sub, cfg, methods, method_classes):
    if sub["method"] not in methods:
        raise WorkflowError(
            f"config key '{key}.method': {sub['method']!r} is not a key of 'methods' ({', '.join(methods)})"
        )
    if sub["setting"] not in methods[sub["method"]]:
        raise WorkflowError(
            f"config key '{key}.setting': {sub['setting']!r} is not a setting of methods.{sub['method']} "
            f"-- expected one of {', '.join(methods[sub['method']])}"
        )
    regression = [task for task in cfg["tasks"] if TASK_SPECS[task].is_regression]
    if regression and not method_classes[sub["method"]].supports_regression:
        raise WorkflowError(
            f"config key '{key}.method': {sub['method']!r} has no regression exit rule (supports_regression "
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
    if removed_key(config, _key):
        raise WorkflowError(f"config key '{_key}' is no longer read -- {_why}")
validate_config(config)
apply_rehearsal(config)
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
# Every ELUE submission: (rule name, its config entry, its folder; its zip is the folder + .zip). The first is
# `submission`'s (the one to upload); `more_submissions` adds one per method under submissions/.
SUBMISSIONS = [("submission", SUBMISSION, f"{RESULTS}/submission")] + [
    (f"submission_{sub['method']}", sub, f"{RESULTS}/submissions/{sub['method']}")
    for sub in config.get("more_submissions") or []
]
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


