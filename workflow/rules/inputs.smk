# Input functions and params helpers of the rules: the data files a job reads (a missing real file named
# before planning), timing's models, a plugin's digest, the submission's inputs, the reference's provenance.

import hashlib
import inspect
import os
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError

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


def submission_input(entry):
    """Input function of a submission of `entry` ({method, setting}) at the first seed: per task (in `tasks`
    order) its test predictions and its model (for the FLOPs module list), plus the test files. Not runs.csv:
    the submission can be built while the other runs still train."""
    run = {"method": entry["method"], "setting": entry["setting"], "seed": SEEDS[0]}

    def inputs(wildcards):
        return {
            "predictions": [f"{RESULTS}/train/{RUN}/predictions".format(task=t, **run) for t in TASKS],
            "models": [f"{RESULTS}/train/{RUN}/model".format(task=t, **run) for t in TASKS],
            "data": all_test_data(wildcards),
        }

    return inputs


def reference_provenance():
    seeds = ",".join(str(s) for s in SEEDS)
    return (
        f"measured: method {REFERENCE['method']} ({', '.join(METHODS[REFERENCE['method']])}), "
        f"config {NAME}, backbone {config['backbone']}, seeds {seeds}"
    )
