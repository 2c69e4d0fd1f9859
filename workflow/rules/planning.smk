# What the config plans: the training runs (task x method x setting x seed, less what a method cannot
# run), how train.jobs cuts them into train and fit_hash jobs, and the paths those jobs write. Reads only
# what config.smk named.

import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

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
    submissions = [path for _, _, folder in SUBMISSIONS for path in (folder, f"{folder}.zip")]
    return [f"{RESULTS}/runs.csv", *tables, *plots, *submissions,
            *difficulty_outputs(), *summarization_outputs(), *backbones_outputs()]  # difficulty.smk, summarization.smk, backbones_common.smk



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


def train_param(method, key):
    """A train key of `method`'s jobs: train_by_method[<method>][key] if set, else train[key]."""
    return config.get("train_by_method", {}).get(method, {}).get(key, TRAIN[key])


def task_max_length(task):
    return TRAIN["max_length_by_task"].get(task, TRAIN["max_length"])


def max_length(wildcards):
    return task_max_length(wildcards.task)


