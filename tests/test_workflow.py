"""The Snakemake workflow through the real `snakemake` command: lint, planned job counts per
config, clear config/data errors, ruff, and the tiny config end to end.

Every run works in a temporary folder (`--snakefile <repo>/Snakefile`, cwd = tmp), so nothing
lands in the repository's results/. Expected job counts are computed here from the config files.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake_helpers import (
    BIN,
    ROOT,
    job_stats,
    load_config,
    run_snakemake,
    snakemake_cmd,
    snakemake_env,
)

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def with_default_config(folder: Path) -> Path:
    """A folder to run from that holds config/config.yaml, as the repository root does: Snakemake then
    loads it under every --configfile (run from elsewhere, the given files are the whole config)."""
    (folder / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config" / "config.yaml", folder / "config" / "config.yaml")
    return folder


def method_classes(cfg: dict) -> dict:
    """id -> Method class, the config's plugins included: the facts the workflow plans by."""
    from hashee.core.methods import available_methods, import_plugin

    for plugin in cfg.get("plugins") or []:
        import_plugin(plugin)
    return available_methods()


def planned_runs(cfg: dict) -> list[tuple[str, str, str, int]]:
    """Every task x method x setting x seed, but not a method without a regression rule on STS-B; then the
    backbones experiment's runs that are not among them."""
    from hashee.core.tasks import get_task

    classes = method_classes(cfg)
    runs = [(task, method, setting, seed)
            for task in cfg["tasks"]
            for method, settings in cfg["methods"].items()
            if classes[method].supports_regression or not get_task(task).is_regression
            for setting in settings
            for seed in cfg["seeds"]]
    return runs + [run for run in backbone_runs(cfg) if run not in runs]


def backbone_runs(cfg: dict) -> list[tuple[str, str, str, int]]:
    """The backbones experiment (docs/backbones.md): per `models` label the compared method (the class with a
    backbones_setting: HashEE), the reference (static) model and the PLM row, their settings prefixed
    'backbone=<label>,' unless the label is the config's own backbone; per `published` label the whole static model."""
    from hashee.core.methods import backbones_method, reference_method

    section = cfg.get("backbones") or {}
    if not section.get("enabled"):
        return []
    method, reference = backbones_method(), reference_method()
    setting = section.get("setting") or method_classes(cfg)[method].backbones_setting
    models = []
    for label, name in section["models"].items():
        prefix = "" if name == cfg["backbone"] else f"backbone={label},"
        models += [(method, prefix + setting), (reference, prefix + section["reference_setting"]),
                   (reference, prefix + f"layers={section['plm_layers']}")]
    models += [(reference, f"backbone={label}") for label in section.get("published") or {}]
    return [(task, method, setting, seed)
            for task in cfg["tasks"] for method, setting in dict.fromkeys(models) for seed in cfg["seeds"]]


def planned_train_methods(output: str) -> dict[str, set[str]]:
    """task -> methods of the train jobs a dry run lists."""
    planned = {}
    for task, method in re.findall(r"train/([^/\s{]+)/([^/\s]+)/[^/\s]+/\d+/rows\.csv", output):  # not the {task} of a command
        planned.setdefault(task, set()).add(method)
    return planned


def train_jobs(runs, jobs: str = "per_method", max_length_by_task=None) -> dict[str, int]:
    """Train jobs per rule, by train.jobs: per_method one job per method x backbone label x seed trains all its
    tasks and settings (and evaluates them; tasks of another input length in a job of their own), in rule
    train_<method>[@<label>]; per_task one job per task x method x backbone label x seed; per_setting one job
    per run, in rule train_<method>/<setting> (non-word characters as _)."""
    def label(method, setting):
        if jobs == "per_setting":
            return f"{method}/{setting}"
        return method + (f"@{setting.split(',')[0].removeprefix('backbone=')}" if setting.startswith("backbone=") else "")

    def cut(task):  # what besides the label and seed tells jobs apart
        return (max_length_by_task or {}).get(task) if jobs == "per_method" else task

    planned = {(cut(task), label(method, setting), seed) for task, method, setting, seed in runs}
    counts = {}
    for _, job_label, _ in planned:
        rule = "train_" + re.sub(r"\W", "_", job_label)
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def _count_by(rule_of, runs) -> dict[str, int]:
    counts = {}
    for run in runs:
        counts[rule_of(run)] = counts.get(rule_of(run), 0) + 1
    return counts


def expected_jobs(cfg: dict) -> dict[str, int]:
    """Jobs per rule the config implies: the train jobs of train.jobs (train_jobs: each trains its runs and
    evaluates it), a hash per HashEE run, demo data when generated, and one of each compile step (provenance
    included) plus `all`."""
    runs = planned_runs(cfg)

    def hash_job(task):  # per_method: one job per input length (max_length_by_task) and seed
        if cfg["train"].get("jobs", "per_method") == "per_method":
            return cfg["train"].get("max_length_by_task", {}).get(task)
        return task

    fitted = [run for run in runs if method_classes(cfg)[run[1]].needs_fitted_hash]
    counts = {
        "demo_data": 1 if cfg["data"]["demo"]["generate"] else 0,
        # one job per seed (train.jobs: per_method; per task and seed otherwise) fits every HashEE setting's
        # hash; other backbones' hashes one job each
        "fit_hash": len({(hash_job(run[0]), run[3]) for run in fitted if not run[2].startswith("backbone=")}),
        # one rule per backbone label (fit_backbone_hash_<label>): the setting is not a wildcard (snakemake#2366)
        **_count_by(lambda run: "fit_backbone_hash_" + re.sub(r"\W", "_", run[2].split(",")[0][len("backbone="):]),
                    [run for run in fitted if run[2].startswith("backbone=")]),
        "backbones_table": 1 if (cfg.get("backbones") or {}).get("enabled") else 0,
        **train_jobs(runs, cfg["train"].get("jobs", "per_method"), cfg["train"].get("max_length_by_task")),
        # the timing stage: one job per task, or one for all (timing.jobs: one)
        "time_models": len(cfg["tasks"]) if cfg["timing"].get("jobs", "per_task") == "per_task" else 1,
        "inference_time": 1,
        "gather": 1,
        "reference": 1,
        "bootstrap": 1,
        "tables": 1,
        "submission": 1,
        "zip_submission": 1,
        "provenance": 1,
        "all": 1,
        # the report's HTML pages (workflow/rules/report.smk): the ELUE tables, inference time and provenance
        "report_elue": 1,
        "report_hash_ablation": 1,
        "report_inference_time": 1,
        "report_provenance": 1,
        "report_backbones": 1 if (cfg.get("backbones") or {}).get("enabled") else 0,
    }
    for sub in cfg.get("more_submissions") or []:  # one rule each, and its zip
        counts[f"submission_{sub['method']}"] = counts[f"zip_submission_{sub['method']}"] = 1
    difficulty = cfg.get("difficulty") or {}
    if difficulty.get("enabled"):  # the difficulty study: data (if generated), 3 studies, 1 table
        counts["difficulty_data"] = 1 if difficulty["demo"]["generate"] else 0
        counts["difficulty_run"] = 3
        counts["difficulty_table"] = 1
        counts["report_difficulty"] = 1
    summ = cfg.get("summarization") or {}
    if summ.get("enabled"):  # summarization: data (if generated), a hash per hashee run, a run job each, 1 table
        runs = summ_runs(summ)
        counts["summ_demo_data"] = 1 if (summ.get("demo") or {}).get("generate") else 0
        from hashee.studies.summarization.methods import SUMM_METHODS

        # one rule per hash setting (summ_fit_hash, summ_fit_hash_1, ...) and per method and setting
        # (summ_run_<method>_<setting>): a setting is not a wildcard (snakemake#2366)
        hashed = [run for run in runs if SUMM_METHODS.classes()[run[1]].needs_fitted_hash]
        hash_rules = {setting: "summ_fit_hash" + (f"_{i}" if i else "")
                      for i, setting in enumerate(dict.fromkeys(run[2] for run in hashed))}
        counts.update(_count_by(lambda run: hash_rules[run[2]], hashed))
        counts.update(_count_by(lambda run: "summ_run_" + re.sub(r"\W", "_", f"{run[1]}_{run[2]}"), runs))
        counts["summ_table"] = 1
        counts["report_summarization"] = 1
    return {rule: n for rule, n in counts.items() if n}


def summ_runs(summ: dict) -> list[tuple[str, str, str, int]]:
    """(dataset, method, setting, seed) of every summarization run: a dataset's own methods, else the section's;
    then those of each of its more_backbones, their settings prefixed 'backbone=<label>' ('default' dropped)."""
    pairs = {dataset: [(method, setting) for method, settings in (spec.get("methods") or summ["methods"]).items()
                       for setting in settings]
             + [(method, f"backbone={label}" + ("" if setting == "default" else f",{setting}"))
                for label, more in (spec.get("more_backbones") or {}).items()
                for method, settings in more["methods"].items() for setting in settings]
             for dataset, spec in summ["datasets"].items()}
    return [(dataset, method, setting, seed)
            for dataset, runs in pairs.items() for method, setting in runs for seed in summ["seeds"]]


def write_placeholder_summarization(root: Path, section: dict) -> dict[str, str]:
    """An empty folder where each summarization dataset's environment variable points (enough for planning)."""
    env = {}
    for dataset, spec in section["datasets"].items():
        if spec["path"].startswith("$"):
            name = re.sub(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?.*$", r"\1", spec["path"])
            (root / dataset).mkdir(parents=True, exist_ok=True)
            env[name] = str(root / dataset)
    return env


def write_placeholder_elue(root: Path, tasks) -> Path:
    """Header-only TSVs in the ELUE layout: enough for planning, no instances."""
    from hashee.core.tasks import get_task

    for name in tasks:
        spec = get_task(name)
        (root / name).mkdir(parents=True, exist_ok=True)
        for split in ("train", "dev"):
            (root / name / f"{split}.tsv").write_text("\t".join(spec.labeled_header) + "\n")
        (root / name / "test.tsv").write_text("\t".join(spec.test_header) + "\n")
    return root


def write_placeholder_difficulty(root: Path, section: dict) -> dict[str, str]:
    """Header-only SNLI raw files and empty tagging files where the difficulty config's environment
    variables point (enough for planning); returns those variables."""
    env = {}
    for key, files in (("snli_dir", [f"snli_1.0_{s}.txt" for s in ("train", "dev", "test")]),
                       ("tagging_dir", [f"{s}.txt" for s in ("train", "dev", "test")])):
        name = re.sub(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?.*$", r"\1", section[key])
        folder = root / key
        folder.mkdir(parents=True, exist_ok=True)
        for file in files:
            (folder / file).write_text("gold_label\n" if key == "snli_dir" else "")
        env[name] = str(folder)
    return env


# ------------------------------------------------------------------------------------------ lint


def test_lint_default_config_is_clean():
    out = subprocess.run([*snakemake_cmd(), "--lint"], cwd=ROOT, env=snakemake_env(), capture_output=True, text=True,
                         timeout=600)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "Congratulations, your workflow is in a good condition" in text, text


def test_ruff_is_clean():
    ruff = BIN / "ruff"
    cmd = [str(ruff)] if ruff.exists() else [sys.executable, "-m", "ruff"]
    out = subprocess.run([*cmd, "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr


# ------------------------------------------------------------------------------------- planning


@pytest.mark.parametrize("config_name", ["config.yaml", "tiny.yaml", "paper.yaml"])
def test_dry_run_plans_the_jobs_the_config_implies(tmp_path, config_name):
    cfg = load_config(config_name)
    extra = {}
    if not cfg["data"]["demo"]["generate"]:
        extra["ELUE_DIR"] = str(write_placeholder_elue(tmp_path / "elue", cfg["tasks"]))
    if (cfg.get("difficulty") or {}).get("enabled") and not cfg["difficulty"]["demo"]["generate"]:
        extra.update(write_placeholder_difficulty(tmp_path / "difficulty", cfg["difficulty"]))
    if (cfg.get("summarization") or {}).get("enabled"):
        extra.update(write_placeholder_summarization(tmp_path / "summarization", cfg["summarization"]))
    work = tmp_path / "work"
    work.mkdir()
    out = run_snakemake(["all", "-n", "--configfile", str(ROOT / "config" / config_name)], work, snakemake_env(**extra))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert job_stats(out.stdout) == expected_jobs(cfg)
    assert not (work / "results").exists()


@pytest.mark.parametrize("config_name", ["config.yaml", "tiny.yaml", "laptop.yaml"])
def test_the_backbones_experiment_reuses_the_offline_configs_runs(config_name):
    """MiniLM, their own backbone, is their one backbone: its HashEE, static and PLM runs are the main runs, so
    the experiment adds no training job (the dry runs above count the jobs the workflow plans)."""
    cfg = load_config(config_name)
    assert cfg["backbones"]["enabled"] and cfg["backbones"]["models"] == {"minilm": cfg["backbone"]}
    main = {(task, method, setting) for task in cfg["tasks"] for method, settings in cfg["methods"].items()
            for setting in settings}
    assert backbone_runs(cfg) and {run[:3] for run in backbone_runs(cfg)} <= main


@pytest.mark.parametrize("jobs", ["per_task", "per_setting"])
def test_train_jobs_cut_per_task_or_per_run(tmp_path, jobs):
    """train.jobs: per_task and per_setting keep {task} a wildcard: one job per task (and setting)."""
    cfg = load_config("tiny.yaml")
    cfg["train"]["jobs"] = jobs
    (tmp_path / "cut.yaml").write_text(yaml.safe_dump(cfg))
    out = run_snakemake(["all", "-n", "-p", "--configfile", str(tmp_path / "cut.yaml")], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert job_stats(out.stdout) == expected_jobs(cfg)
    settings = "--setting layers=1 --setting layers=2" if jobs == "per_task" else "--setting layers=1"
    assert re.search(rf"hashee train --task SST-2 --data-dir \S+ --method static {settings} --seed 42 ", out.stdout)
    assert "--hash-file 'results/tiny/hashes/STS-B/{setting}/42/hash.pt'" in out.stdout


def test_paper_config_is_the_paper_setup():
    cfg = load_config("paper.yaml")
    assert cfg["backbone"] == "fnlp/elasticbert-base"
    assert cfg["seeds"] == [2021, 42, 7]
    assert cfg["data"]["elue_dir"].startswith("$") and "ELUE_DIR" in cfg["data"]["elue_dir"]
    assert cfg["methods"]["static"] == [f"layers={n}" for n in range(1, 13)] + ["backbone=bert,layers=12"]
    hashes = ["frequency", "rand-incons", "rand-cons", "mi", "clustered"]
    assert sorted(cfg["methods"]["hashee"]) == sorted(f"hash={h},layers={n}" for h in hashes for n in (6, 12))
    assert cfg["submission"] == {"method": "hashee", "setting": "hash=frequency,layers=6"}


def test_a_method_without_a_regression_rule_is_not_planned_on_sts_b(tmp_path):
    cfg = load_config("tiny.yaml")
    cfg["methods"]["deebert"] = ["layers=2"]  # supports_regression = False
    (tmp_path / "with_deebert.yaml").write_text(yaml.safe_dump(cfg))
    out = run_snakemake(["all", "-n", "--configfile", str(tmp_path / "with_deebert.yaml")], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert job_stats(out.stdout) == expected_jobs(cfg)
    assert planned_train_methods(out.stdout) == {"SST-2": {"hashee", "static", "deebert"},
                                                 "STS-B": {"hashee", "static"}}


def test_the_removed_regression_skip_key_is_named(tmp_path):
    out = run_snakemake(["all", "-n", "--configfile", str(ROOT / "config" / "tiny.yaml"),
                         "--config", "regression_skip=[static]"], tmp_path)
    assert out.returncode != 0
    lines = [line for line in _error_lines(out).splitlines() if line.startswith("config key")]
    assert lines == ["config key 'regression_skip' is no longer read -- whether a method runs on STS-B is its "
                     "class attribute supports_regression (docs/adding-a-baseline.md); delete the key"]


def test_the_removed_backbones_method_keys_are_named_with_their_new_spelling(tmp_path):
    (tmp_path / "old.yaml").write_text(yaml.safe_dump({"backbones": {"hashee": "hash=frequency,layers=2"}}))
    out = run_snakemake(["all", "-n", "--configfile", str(ROOT / "config" / "tiny.yaml"), str(tmp_path / "old.yaml")],
                        tmp_path)
    assert out.returncode != 0
    lines = [line for line in _error_lines(out).splitlines() if line.startswith("config key")]
    assert len(lines) == 1 and lines[0].startswith(
        "config key 'backbones.hashee' is no longer read -- spell it backbones.setting "), lines


def test_the_removed_warm_start_key_is_named(tmp_path):
    out = run_snakemake(["all", "-n", "--configfile", str(ROOT / "config" / "tiny.yaml"),
                         "--config", "warm_start=True"], tmp_path)
    assert out.returncode != 0
    lines = [line for line in _error_lines(out).splitlines() if line.startswith("config key")]
    assert len(lines) == 1 and lines[0].startswith("config key 'warm_start' is no longer read -- "), lines


# ------------------------------------------------------------------------- choosing what to plan


def test_a_user_methods_mapping_replaces_the_defaults(tmp_path):
    """From the repository root config/config.yaml lies under every --configfile: its nine methods must
    not come along with the user's two, and a method set to null in a later file is dropped."""
    work = with_default_config(tmp_path)
    methods = {"hashee": ["hash=frequency,layers=6"], "static": ["layers=1", "layers=6"]}
    (work / "mine.yaml").write_text(yaml.safe_dump({"methods": {**methods, "pabee": ["layers=6"]}}))
    (work / "no_pabee.yaml").write_text("methods: {pabee: null}\n")
    out = run_snakemake(["all", "-n", "--configfile", "mine.yaml", "no_pabee.yaml"], work)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    cfg = load_config("config.yaml")
    cfg["methods"] = methods
    cfg["more_submissions"] = []  # the default's name its own methods: a config that names methods gets none
    assert job_stats(out.stdout) == expected_jobs(cfg)
    planned = planned_train_methods(out.stdout)
    assert set(planned) == set(cfg["tasks"]) and all(m == set(methods) for m in planned.values()), planned


def test_the_stable_overlay_plans_the_default_run_with_two_epochs(tmp_path):
    """config/stable.yaml lies over config/config.yaml: the same jobs, 2 epochs each, under its own name."""
    work = with_default_config(tmp_path)
    shutil.copy(ROOT / "config" / "stable.yaml", work / "stable.yaml")
    out = run_snakemake(["all", "-n", "-p", "--configfile", "stable.yaml"], work)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert job_stats(out.stdout) == expected_jobs(load_config("config.yaml"))
    epochs = {(method, n) for method, n in re.findall(r"hashee train --task .*?--method (\S+) .*? --epochs (\S+) ", out.stdout)}
    assert {n for _, n in epochs} == {"2"} and {m for m, _ in epochs} == set(load_config("config.yaml")["methods"])
    assert "results/demo-stable/train/" in out.stdout and "results/demo/" not in out.stdout


@pytest.fixture(scope="module")
def paper_from_root(tmp_path_factory):
    """paper.yaml's dry run from a checkout's root (merged onto config/config.yaml), placeholder data for every
    data variable: one run for the tests that read it. Checks it plans the jobs the config implies."""
    tmp_path = tmp_path_factory.mktemp("paper")
    cfg = load_config("paper.yaml")
    work = with_default_config(tmp_path / "root")
    env = snakemake_env(ELUE_DIR=str(write_placeholder_elue(tmp_path / "elue", cfg["tasks"])),
               **write_placeholder_difficulty(tmp_path / "difficulty", cfg["difficulty"]),
               **write_placeholder_summarization(tmp_path / "summarization", cfg["summarization"]))
    out = run_snakemake(["all", "-n", "-p", "--configfile", str(ROOT / "config" / "paper.yaml")], work, env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert job_stats(out.stdout) == expected_jobs(cfg)
    return out


def test_paper_config_from_the_repository_root_plans_only_its_own_datasets(paper_from_root):
    """paper.yaml's summarization.datasets replaces the demo's: no demo-en beside Reddit, CNN/DM, CSL, TTNews."""
    out = paper_from_root
    assert "demo-en" not in out.stdout + out.stderr
    assert " --paper-points" in out.stdout  # the paper's backbone: its published points on the plots


def test_the_slurm_profile_puts_each_job_of_the_paper_run_on_its_partition(paper_from_root):
    """profiles/slurm's default is a GPU job (the train rules' names follow their settings); every rule of
    paper.yaml's DAG that asks for no GPU must be listed there on the CPU partition, and none that asks for one."""
    listed = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())["set-resources"]
    # Run by Snakemake itself, never submitted: the Snakefile's localrules, and the submission rules
    # (workflow/rules/submission.smk marks each `localrule: True`).
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", (ROOT / "Snakefile").read_text(), re.M)
    local = set(re.findall(r"\w+", block.group(1)))
    on_gpu, on_cpu = set(), set()
    for rule, body in re.findall(r"^rule (\w+):\n((?:    .*\n)+)", paper_from_root.stdout, re.M):
        if rule in local or re.fullmatch(r"(zip_)?submission(_\w+)?", rule):
            continue
        gpu = re.search(r"^    resources: .*\bgpu=(\d+)", body, re.M)
        (on_gpu if gpu and int(gpu.group(1)) > 0 else on_cpu).add(rule)
    assert on_gpu and on_cpu
    partition = {rule: (listed.get(rule) or {}).get("slurm_partition", "gpu (the default)") for rule in on_gpu | on_cpu}
    assert {rule: partition[rule] for rule in sorted(on_cpu) if partition[rule] != "cpu"} == {}
    assert {rule: partition[rule] for rule in sorted(on_gpu) if partition[rule] == "cpu"} == {}


def _train_settings(output: str) -> dict[str, set[tuple[str, str]]]:
    """backbone label -> {(method, setting)} of the train jobs a dry run lists whose setting names a backbone."""
    planned = {}
    for method, setting in re.findall(r"train/[^/\s]+/([^/\s]+)/(backbone=[^/\s]+)/\d+/rows\.csv", output):
        planned.setdefault(setting.split(",")[0].removeprefix("backbone="), set()).add((method, setting))
    return planned


# The paper's dynamic rows ran on BERT-base: paper.yaml plans those baselines on BERT (backbone=bert), beside
# their ElasticBERT runs, and BERT-base whole (the full model they are timed against).
PAPER_BERT_RUNS = {("deebert", "backbone=bert,layers=12"), ("fastbert", "backbone=bert,layers=12,distill_epochs=5"),
                   ("pabee", "backbone=bert,layers=12"), ("berxit", "backbone=bert,layers=12"),
                   ("cascadebert", "backbone=bert,layers=12,small_layers=2"), ("static", "backbone=bert,layers=12")}


def test_paper_config_plans_every_row_of_the_papers_tables(paper_from_root):
    """paper.yaml's dry run: BERxiT w/ BERT and the other dynamic baselines on BERT-base (rows of the paper's
    ELUE table), with their ElasticBERT runs as extra rows; the Chinese BART's full model on CSL and TTNews
    (the paper's BART rows) beside CPT."""
    out, cfg = paper_from_root, load_config("paper.yaml")
    bert = _train_settings(out.stdout)["bert"]
    assert PAPER_BERT_RUNS <= bert
    for method, setting in PAPER_BERT_RUNS - {("static", "backbone=bert,layers=12")}:
        assert (method, setting.removeprefix("backbone=bert,")) in {
            m_s for m_s in re.findall(r"train/[^/\s]+/([^/\s]+)/([^/\s]+)/\d+/rows\.csv", out.stdout)}, method
        commands = re.findall(rf"hashee train [^\n]*--method {method} [^\n]*--setting {setting} [^\n]*", out.stdout)
        assert commands and all("--backbone bert-base-uncased " in c for c in commands), method
    for dataset in ("csl", "ttnews"):
        bart = re.findall(rf"hashee train --dataset {dataset} [^\n]*--method full --setting=backbone=bart [^\n]*",
                          out.stdout)
        assert len(bart) == len(cfg["summarization"]["seeds"]), dataset
        assert all("--backbone fnlp/bart-large-chinese " in c for c in bart), dataset
        cpt = re.findall(rf"hashee train --dataset {dataset} [^\n]*--method full --setting= [^\n]*", out.stdout)
        assert cpt and all("--backbone fnlp/cpt-large " in c for c in cpt), dataset


def test_paper_config_plans_the_four_backbones_and_the_plm_rows(tmp_path):
    """paper.yaml: HashEE (frequency, 6 layers), static 6L and 3L on BERT, RoBERTa and ALBERT, DistilBERT whole;
    ElasticBERT (the config's backbone) reuses the main runs. 6 tasks x 3 seeds each."""
    cfg = load_config("paper.yaml")
    work = with_default_config(tmp_path / "root")  # config.yaml's minilm label must not come along
    env = snakemake_env(ELUE_DIR=str(write_placeholder_elue(tmp_path / "elue", cfg["tasks"])),
               **write_placeholder_difficulty(tmp_path / "difficulty", cfg["difficulty"]),
               **write_placeholder_summarization(tmp_path / "summarization", cfg["summarization"]))
    out = run_snakemake(["backbones_table", "-n", "-p", "--configfile", str(ROOT / "config" / "paper.yaml")], work, env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    planned = _train_settings(out.stdout)
    assert set(planned) == {"bert", "roberta", "albert", "distilbert"}
    for label in ("bert", "roberta", "albert"):
        experiment = {("hashee", f"backbone={label},hash=frequency,layers=6"),
                      ("static", f"backbone={label},layers=6"), ("static", f"backbone={label},layers=3")}
        assert planned[label] - PAPER_BERT_RUNS == experiment
    assert planned["distilbert"] == {("static", "backbone=distilbert")}
    stats = job_stats(out.stdout)
    hashes = {rule: n for rule, n in stats.items() if rule.startswith("fit_backbone_hash")}
    backbone_train = len(re.findall(r"--setting backbone=", out.stdout)) - sum(hashes.values())
    # (3 backbones x 3 models + DistilBERT + the dynamic baselines and the static 12L on BERT) x 6 tasks x 3 seeds,
    # less the baselines without a regression rule on STS-B (DeeBERT, FastBERT, CascadeBERT)
    assert backbone_train == (3 * 3 + 1 + len(PAPER_BERT_RUNS)) * 6 * 3 - 3 * 3
    # a hash per backbone, task and seed; a rule per backbone (its setting is no wildcard: snakemake#2366)
    assert hashes == {f"fit_backbone_hash_{label}": 6 * 3 for label in ("bert", "roberta", "albert")}
    for label, name in (("bert", "bert-base-uncased"), ("roberta", "roberta-base"), ("albert", "albert-base-v2"),
                        ("distilbert", "distilbert-base-uncased")):
        commands = re.findall(rf"hashee (?:train|fit-hash) [^\n]*--setting backbone={label}\b[^\n]*", out.stdout)
        assert commands and all(f"--backbone {name} " in c for c in commands), label
    main = re.findall(r"hashee train [^\n]*--setting (?:hash=frequency,layers=6|layers=[36]) [^\n]*", out.stdout)
    assert main and all("--backbone fnlp/elasticbert-base " in c for c in main)  # ElasticBERT: the main runs


def test_laptop_config_plans_on_the_official_files_with_one_budget_for_every_method(tmp_path):
    """config/laptop.yaml from the repository root, on the byte-exact excerpts of the official ELUE files
    (tests/fixtures/elue/) as $ELUE_DIR; every method trains for the same epochs on the same examples."""
    elue = ROOT / "tests" / "fixtures" / "elue"
    cfg = load_config("laptop.yaml")
    work = with_default_config(tmp_path / "root")
    out = run_snakemake(["all", "-n", "-p", "--configfile", str(ROOT / "config" / "laptop.yaml")], work,
                        snakemake_env(ELUE_DIR=str(elue)))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert job_stats(out.stdout) == expected_jobs(cfg)
    assert planned_train_methods(out.stdout) == {task: {"hashee", "static", "pabee"} for task in cfg["tasks"]}
    budgets = set(re.findall(r"--method (\S+) .*? --epochs (\d+) .*? --max-train-examples (\d+)", out.stdout))
    assert not cfg["train_by_method"]
    assert budgets == {(method, str(cfg["train"]["epochs"]), str(cfg["train"]["max_train_examples"]))
                       for method in ("hashee", "static", "pabee")}
    assert f"hashee train --task SST-2 --data-dir {elue} " in out.stdout  # train.jobs: per_task
    assert f"{elue}/MRPC/test_full.tsv" in out.stdout  # the labelled test file is an input where there is one


def test_shell_commands_call_the_cli_verbs(tmp_path):
    out = run_snakemake(["all", "-n", "-p", "--cores", "2", "--configfile", str(ROOT / "config" / "tiny.yaml")], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for verb in ("demo-data", "fit-hash", "train", "time", "inference-time", "gather", "reference", "bootstrap",
                 "tables",
                 "submit", "validate-submission"):
        assert f"hashee {verb} " in text, verb
    # one train job per method x seed trains each task and setting and evaluates it, in the same process;
    # timing is its own stage, one job per task, on every core
    assert re.search(r"hashee train --task SST-2 --task STS-B .*--method static --setting layers=1 --setting layers=2 "
                     r"--seed 42 ", text)
    assert "--evaluate-out 'results/tiny/train/{task}/static/{setting}/42/rows.csv'" in text
    assert "--time-out" not in text
    timing = re.search(r"OMP_NUM_THREADS=(\d+) .* hashee time (--model .*?) --data-dir .* --threads (\d+) .*"
                       r"--out results/tiny/timing/SST-2.csv", text)
    assert timing and timing.group(1) == timing.group(3) == "2", "the timing job should hold --cores 2"
    assert "results/tiny/train/SST-2/static/layers=1/42/model" in timing.group(2)
    assert (f"python {ROOT}/workflow/scripts/gpu_slots.py --slots 0 --lock-dir .snakemake/gpu-locks/$(uname -n) -- hashee train "
            in text)
    assert "--hash-file 'results/tiny/hashes/{task}/{setting}/42/hash.pt'" in text
    assert ("--workdir 'work/tiny/{task}/static/{setting}/42' --out 'results/tiny/train/{task}/static/{setting}/42/model'"
            in text)
    assert "--bootstrap results/tiny/bootstrap.npz" in text
    assert "--paper-points" not in text  # MiniLM: the paper's points would mean nothing
    # summarization trains through the same verbs: fit-hash and train with --dataset, evaluating in the train job
    assert re.search(r"hashee fit-hash --dataset demo-en .* --setting hash=frequency,buckets=6 --setting-out ", text)
    assert re.search(r"hashee train --dataset demo-en .* --method hashee .* --max-length 48 .* --gen-max-length \d+ .*"
                     r"--evaluate-out results/tiny/summarization/demo-en/hashee/", text)
    assert not re.search(r"hashee summ-(fit-hash|train|run) ", text)


# --------------------------------------------------------------------------------------- errors


def _error_lines(out) -> str:
    return out.stdout + out.stderr


def test_config_error_names_the_key_and_what_was_expected(tmp_path):
    out = run_snakemake(["-n", "--configfile", str(ROOT / "config" / "tiny.yaml"), "--config", "seeds=abc"],
                        tmp_path)
    assert out.returncode != 0
    lines = [line for line in _error_lines(out).splitlines() if line.startswith("config key")]
    assert lines == ["config key 'seeds': 'abc' is not of type 'array' -- expected a non-empty list of "
                     "non-negative integer seeds"]


def test_cross_key_error_names_the_key(tmp_path):
    out = run_snakemake(["-n", "--configfile", str(ROOT / "config" / "tiny.yaml"),
                         "--config", "reference={method: deebert}"], tmp_path)
    assert out.returncode != 0
    assert "config key 'reference.method': 'deebert' is not a key of 'methods'" in _error_lines(out)


def test_backbones_without_the_static_method_names_the_key(tmp_path):
    cfg = load_config("tiny.yaml")
    cfg["methods"] = {"hashee": cfg["methods"]["hashee"]}
    cfg["reference"]["file"] = str(tmp_path / "ref.csv")  # no static curve to measure
    (tmp_path / "ref.csv").write_text("task,layers,perf,mflops,provenance\n")
    (tmp_path / "no_static.yaml").write_text(yaml.safe_dump(cfg))
    out = run_snakemake(["all", "-n", "--configfile", str(tmp_path / "no_static.yaml")], tmp_path)
    assert out.returncode != 0
    assert ("config key 'backbones': the experiment runs methods.static, which this config does not plan -- "
            "expected a 'static' entry under 'methods', or backbones.enabled: false") in _error_lines(out)


def test_missing_data_names_the_path_and_the_config_key(tmp_path):
    empty = tmp_path / "elue"
    empty.mkdir()
    out = run_snakemake(["-n", "--configfile", str(ROOT / "config" / "paper.yaml")], tmp_path,
                        snakemake_env(ELUE_DIR=str(empty)))
    assert out.returncode != 0
    text = _error_lines(out)
    assert f"missing ELUE data file {empty}/SST-2/train.tsv" in text
    assert "config key 'data.elue_dir'" in text


@pytest.mark.parametrize("key, variable, expected", [
    ("data.elue_dir", "ELUE_DIR", "/path/to/ELUE (with <TASK>/train.tsv, dev.tsv, test.tsv)"),
    ("difficulty.snli_dir", "SNLI_DIR", "/path/to/the/data (docs/difficulty.md), or difficulty.enabled: false"),
    ("summarization.datasets.reddit.path", "REDDIT_TIFU_DIR",
     "/path/to/reddit (docs/summarization.md), or summarization.enabled: false"),
])
def test_unset_variable_names_the_key_and_the_variable(tmp_path, key, variable, expected):
    """One resolver for every `$VAR` key: the keys read before `key` get their variables, `key` does not."""
    cfg = load_config("paper.yaml")
    env = snakemake_env(ELUE_DIR=str(write_placeholder_elue(tmp_path / "elue", cfg["tasks"])),
               **write_placeholder_difficulty(tmp_path / "difficulty", cfg["difficulty"]),
               **write_placeholder_summarization(tmp_path / "summarization", cfg["summarization"]))
    env.pop(variable)
    out = run_snakemake(["-n", "--configfile", str(ROOT / "config" / "paper.yaml")], tmp_path, env)
    assert out.returncode != 0
    value = "${" + variable + "}"
    assert (f"config key '{key}' is '{value}' but environment variable {variable} is not set "
            f"-- expected export {variable}={expected}") in _error_lines(out)


def test_submitting_a_method_without_a_regression_rule_is_refused(tmp_path):
    cfg = load_config("tiny.yaml")
    cfg["methods"]["deebert"] = ["layers=2"]
    cfg["submission"] = {"method": "deebert", "setting": "layers=2"}
    (tmp_path / "submit_deebert.yaml").write_text(yaml.safe_dump(cfg))
    out = run_snakemake(["-n", "--configfile", str(tmp_path / "submit_deebert.yaml")], tmp_path)
    assert out.returncode != 0
    lines = [line for line in _error_lines(out).splitlines() if line.startswith("config key")]
    assert lines == ["config key 'submission.method': 'deebert' has no regression exit rule (supports_regression "
                     "is False), so it has no STS-B predictions -- expected a method that runs on every task in 'tasks'"]


@pytest.mark.parametrize("more, expected", [
    ([{"method": "pabee", "setting": "layers=2"}],
     "config key 'more_submissions[0].method': 'pabee' is not a key of 'methods' (hashee, static)"),
    ([{"method": "static", "setting": "layers=1"}, {"method": "static", "setting": "layers=2"}],
     "config key 'more_submissions': method 'static' is listed twice -- expected each method at most once "
     "(its submission is results/<config>/submissions/<method>/)"),
])
def test_more_submissions_are_checked_like_the_submission(tmp_path, more, expected):
    cfg = load_config("tiny.yaml")
    cfg["more_submissions"] = more
    (tmp_path / "more.yaml").write_text(yaml.safe_dump(cfg))
    out = run_snakemake(["-n", "--configfile", str(tmp_path / "more.yaml")], tmp_path)
    assert out.returncode != 0
    assert [line for line in _error_lines(out).splitlines() if line.startswith("config key")] == [expected]


def test_more_submissions_plan_one_validated_submission_and_zip_per_method(tmp_path):
    """Each entry: its own rule (hashee submit, then the validator) into submissions/<method>/, and its zip; a
    config that names its own methods but not more_submissions plans none (the default's name other methods)."""
    cfg = load_config("tiny.yaml")
    cfg["more_submissions"] = [{"method": "static", "setting": "layers=2"}]
    (tmp_path / "more.yaml").write_text(yaml.safe_dump(cfg))
    out = run_snakemake(["all", "-n", "-p", "--configfile", str(tmp_path / "more.yaml")], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    stats = job_stats(out.stdout)
    assert stats["submission_static"] == stats["zip_submission_static"] == stats["submission"] == 1
    command = re.search(r"hashee submit [^\n]*--out-dir results/tiny/submissions/static [^\n]*", out.stdout)
    assert command and "SST-2/static/layers=2/42/predictions" in command.group(0)
    assert "hashee validate-submission results/tiny/submissions/static " in command.group(0)
    assert "results/tiny/submissions/static.zip" in out.stdout
    plain = run_snakemake(["all", "-n", "--configfile", str(ROOT / "config" / "tiny.yaml")], tmp_path)
    assert plain.returncode == 0 and not any(r.startswith("submission_") for r in job_stats(plain.stdout))


def test_plugins_are_loaded_for_planning_and_passed_on_the_command_line(tmp_path):
    """The Snakefile reads a plugin method's class facts (so it must import it), and the jobs that look
    methods up in the registry get $HASHEE_PLUGINS in their command, not through Snakemake's environment."""
    plugin = ROOT / "docs" / "examples" / "fixed_exit.py"
    cfg = load_config("tiny.yaml")
    cfg["methods"]["fixed-exit"] = ["layers=2"]
    config_file = tmp_path / "with_plugin.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    out = run_snakemake(["all", "-n", "--configfile", str(config_file)], tmp_path)
    assert out.returncode != 0
    assert "config key 'methods.fixed-exit': no such method -- expected one of " in _error_lines(out)

    cfg["plugins"] = [str(plugin)]
    config_file.write_text(yaml.safe_dump(cfg))
    out = run_snakemake(["all", "-n", "-p", "--configfile", str(config_file)], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert job_stats(out.stdout) == expected_jobs(cfg)
    assert planned_train_methods(out.stdout)["STS-B"] == {"hashee", "static", "fixed-exit"}  # it has a regression rule
    commands = [line.strip().removeprefix("Shell command: ") for line in out.stdout.splitlines()]
    train = [c for c in commands if " hashee train --task " in c]  # summarization (--dataset) reads no plugins
    assert train and all(c.startswith(f"HASHEE_PLUGINS={plugin} OMP_NUM_THREADS=1 python ") for c in train)
    assert any(c.startswith(f"(HASHEE_PLUGINS={plugin} hashee submit ") for c in commands)
    assert any(c.startswith(f"HASHEE_PLUGINS={plugin} hashee tables ") for c in commands)
    assert not [c for c in commands if "HASHEE_PLUGINS" in c and "hashee fit-hash" in c]


def test_editing_a_plugin_reruns_its_method(tmp_path):
    """A plugin's module lies outside the workflow: its content is a params entry of its train job, so an
    edit reruns that job, where Snakemake would otherwise say "Nothing to be done" over stale results."""
    plugin = tmp_path / "fixed_exit_copy.py"
    plugin.write_text((ROOT / "docs" / "examples" / "fixed_exit.py").read_text())
    cfg = load_config("tiny.yaml")
    cfg.update(methods={"fixed-exit": ["layers=2"]}, plugins=[str(plugin)],
               difficulty={"enabled": False}, summarization={"enabled": False},
               backbones={**cfg["backbones"], "enabled": False},
               reference={**cfg["reference"], "method": "fixed-exit"},
               submission={"method": "fixed-exit", "setting": "layers=2"})
    config_file = tmp_path / "plugin_only.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    target = ["results/tiny/train/STS-B/fixed-exit/layers=2/42/rows.csv", "--configfile", str(config_file)]
    ran = run_snakemake([*target, "--cores", "2"], tmp_path)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    unchanged = run_snakemake([*target, "-n"], tmp_path)
    assert unchanged.returncode == 0 and "Nothing to be done" in unchanged.stdout + unchanged.stderr

    plugin.write_text(plugin.read_text().replace('"""A worked example', '"""An edited example', 1))
    edited = run_snakemake([*target, "-n"], tmp_path)
    assert edited.returncode == 0, edited.stdout[-3000:] + edited.stderr[-3000:]
    assert job_stats(edited.stdout) == {"train_fixed_exit": 1}, edited.stdout[-3000:]


def test_schema_names_match_the_library():
    from hashee.core.hashing import HASH_NAMES
    from hashee.core.tasks import TASKS
    from hashee.measure.score import POLICIES

    schema = yaml.safe_load(SCHEMA.read_text())
    props = schema["properties"]
    assert props["tasks"]["items"]["enum"] == list(TASKS)
    assert props["reference"]["properties"]["beyond"]["enum"] == list(POLICIES)
    pattern = props["methods"]["properties"]["hashee"]["items"]["pattern"]
    assert sorted(re.search(r"hash=\(([^)]*)\)", pattern).group(1).split("|")) == sorted(HASH_NAMES)


# ----------------------------------------------------------------------------------- end to end

# Metric ranges in runs.csv's unit (every metric x100): accuracy and (acc+F1)/2 in [0, 100], correlations in [-100, 100].
PERF_RANGES = {"acc": (0.0, 100.0), "acc_f1": (0.0, 100.0), "pearson_spearman": (-100.0, 100.0)}
DASH = "–"
# "50.0 [45.5, 55.0] (23.8×) ≈" or "50.0 [45.5, 55.0]": perf, its bootstrap interval, speed-up, inside mark
_CELL = re.compile(r"^(-?\d+\.\d)(?: ± \d+\.\d\d)? \[(-?\d+\.\d), (-?\d+\.\d)\](?: \((\d+\.\d)×\))?(?: ≈)?$")
_SCORE = re.compile(r"^(-?\d+\.\d\d)(?: ± \d+\.\d\d)? \[(-?\d+\.\d\d), (-?\d+\.\d\d)\](?: ≈)?$")


def data_rows(path: Path) -> int:
    """Instances in an ELUE TSV: its non-blank lines after the header."""
    return sum(1 for line in path.read_text(encoding="utf-8-sig").splitlines()[1:] if line.strip())


def configured_run(row, planned) -> tuple[str, str, str, int]:
    """The planned (task, method, setting, seed) a runs.csv row belongs to: its setting is the training
    setting, plus the sweep point if any."""
    for task, method, setting, seed in planned:
        if (row.task, row.method, row.seed) == (task, method, seed) and (
                row.setting == setting or row.setting.startswith(setting + ",")):
            return task, method, setting, seed
    raise AssertionError(f"runs.csv row not planned by the config: {row}")


def check_runs_content(runs, cfg: dict, elue: Path, train_dir: Path) -> None:
    """Every number of runs.csv means what its column says."""
    import pandas as pd

    for row in runs.itertuples():
        where = f"runs.csv {row.task} {row.method} {row.setting} {row.split}"
        low, high = PERF_RANGES[row.metric]
        assert low <= row.perf <= high, f"{where}: perf {row.perf} outside [{low}, {high}] ({row.metric})"
        assert row.n_instances == data_rows(elue / row.task / f"{row.split}.tsv"), where
        if row.metric == "acc":  # x100 of a count over n_instances: anything else is a unit or counting slip
            correct = row.perf * row.n_instances / 100
            assert abs(correct - round(correct)) < 1e-3, f"{where}: accuracy {row.perf} is not k/{row.n_instances}"
        assert row.mflops > 0 and row.speedup > 0, where
    timed = 1 in cfg["timing"]["batch_sizes"]  # gather joins the batch-size-1 timing to every row
    for task, method, setting, seed in planned_runs(cfg):
        times = pd.read_csv(train_dir.parent / "timing" / f"{task}.csv", dtype={"setting": str})
        times = times[(times["method"] == method) & (times["seed"] == seed)
                      & times["setting"].map(lambda s, setting=setting: s == setting or s.startswith(setting + ","))]
        assert sorted(set(times["batch_size"])) == sorted(cfg["timing"]["batch_sizes"]), (task, method, setting)
        assert (times["wall_ms"] > 0).all() and (times["latency_ms_p99"] > 0).all(), (task, method, setting)
        assert (times["threads"] == 2).all(), (task, method, setting)  # the timing job held both cores
        if not timed:
            continue
        mine = runs[(runs["task"] == task) & (runs["method"] == method) & (runs["seed"] == seed)
                    & runs["setting"].map(lambda s, setting=setting: s == setting or s.startswith(setting + ","))]
        batch_one = times[times["batch_size"] == 1].set_index("setting")["wall_ms"]
        for row in mine.itertuples():  # every timed point (the sweep's max_points of them) has its batch-1 time
            if row.setting in batch_one.index:
                assert row.wall_ms > 0 and row.wall_ms == pytest.approx(batch_one[row.setting]), (task, row.setting)
            else:
                assert cfg["timing"]["max_points"] and math.isnan(row.wall_ms), (task, row.setting)


def check_hashee_cheaper_than_static(runs, cfg: dict) -> None:
    """Each HashEE setting costs fewer mean FLOPs than the static model of the same depth, on every task and split."""
    from hashee.core.settings import backbone_label, parse_setting, with_backbone

    static = runs[runs["method"] == "static"]
    hashee = runs[runs["method"] == "hashee"]
    assert len(hashee), "no HashEE rows"
    for row in hashee.itertuples():
        layers = parse_setting(row.setting)["layers"]
        same_depth = with_backbone(f"layers={layers}", backbone_label(row.setting))  # on the same backbone
        full = static[(static["task"] == row.task) & (static["split"] == row.split)
                      & (static["setting"] == same_depth)]
        assert len(full) == 1, f"no static {same_depth} run beside HashEE {row.setting} on {row.task}"
        assert row.mflops < full["mflops"].iloc[0], (row.task, row.setting, row.split)


def check_reference(reference, runs, cfg: dict) -> None:
    """One point per static setting and task, the test points of the static runs, in increasing FLOPs."""
    static = runs[(runs["method"] == "static") & (runs["split"] == "test") & ~runs["setting"].str.startswith("backbone=")]
    for task in cfg["tasks"]:
        points = reference[reference["task"] == task].sort_values("layers")
        assert len(points) == len(cfg["methods"]["static"]), task
        assert points["mflops"].is_monotonic_increasing and points["mflops"].is_unique, task  # deeper costs more
        mine = static[static["task"] == task].assign(layers=lambda f: f["setting"].str.split("=").str[1].astype(int))
        merged = points.merge(mine, on="layers", suffixes=("", "_run"))
        assert len(merged) == len(points), task
        assert (merged["mflops"] == merged["mflops_run"]).all() and (merged["perf"] == merged["perf_run"]).all(), task


def parse_cell(text: str, where: str) -> tuple[float, float | None]:
    match = _CELL.match(text.strip())
    assert match, f"{where}: cell {text!r} is not 'perf [lo, hi] (speed-up×)'"
    perf, low, high = (float(match.group(i)) for i in (1, 2, 3))
    assert low <= perf <= high, f"{where}: {perf} outside its interval [{low}, {high}]"
    return perf, (float(match.group(4)) if match.group(4) else None)


def check_elue_table(table, runs, cfg: dict) -> None:
    """elue.csv: one 'ours' row per configured model (per point where the table keeps a sweep's points
    apart), a cell per task holding that model's test perf and speed-up, an ELUE score."""
    from hashee.core.tasks import get_task

    ours = table[table["row"] == "ours"]
    test = runs[runs["split"] == "test"]
    assert [c for c in ours.columns if c in cfg["tasks"]] == cfg["tasks"]
    for method, settings in cfg["methods"].items():
        for setting in settings:
            mine = ours[(ours["method"] == method) & ours["setting"].map(
                lambda s, setting=setting: s == setting or s.startswith((setting + ",", setting + " [")))]
            assert len(mine), f"elue.csv has no row for {method} {setting}"
            for row in mine.to_dict("records"):
                assert _SCORE.fullmatch(row["ELUE score"]), (method, row["setting"])  # complete: scored, with interval
                for task in cfg["tasks"]:
                    where = f"elue.csv {method} {row['setting']} {task}"
                    perf, speedup = parse_cell(row[task], where)
                    low, high = PERF_RANGES[get_task(task).metric]
                    assert low <= perf <= high and speedup > 0, where
                    points = test[(test["task"] == task) & (test["method"] == method)
                                  & (test["setting"] == row["setting"])]
                    if len(points) == 1:  # one point: the cell is that run's, rounded for display
                        assert row[task].startswith(f"{points['perf'].iloc[0]:.1f} ["), where
                        assert f"] ({points['speedup'].iloc[0]:.1f}×)" in row[task], where
    assert len(ours) == ours[["method", "setting"]].drop_duplicates().shape[0]


def check_hash_ablation_table(table, cfg: dict) -> None:
    """hash_ablation.csv: one 'ours' row per configured HashEE setting, a cell per ablation task that is configured
    (a dash for the others), and a speed-up."""
    from hashee.core.settings import parse_setting
    from hashee.studies.elue.table import ABLATION_TASKS

    ours = table[table["row"] == "ours"].astype({"layers": str})
    expected = sorted((d["hash"], d["layers"]) for d in map(parse_setting, cfg["methods"]["hashee"]))
    assert sorted(zip(ours["hash"], ours["layers"])) == expected
    for row in ours.to_dict("records"):
        for task in ABLATION_TASKS:
            where = f"hash_ablation.csv {row['hash']} {row['layers']} {task}"
            if task not in cfg["tasks"]:
                assert row[task] == DASH, where
                continue
            perf, _ = parse_cell(row[task], where)
            assert 0 <= perf <= 100, where
        assert re.fullmatch(r"\d+\.\d×", row["speed-up"]) and float(row["speed-up"][:-1]) > 0, row


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The whole DAG on config/tiny.yaml through the real snakemake command, in tmp, then its report as
    `make report` writes it: once per module, for the end-to-end checks and the report's browser test."""
    tmp_path = tmp_path_factory.mktemp("tiny")
    env = snakemake_env()
    if shutil.which("hashee", path=env["PATH"]) is None:
        pytest.fail("the `hashee` CLI is not installed in this environment: run `make test` "
                    "(it does pip install -e '.[test]')")
    cfg = load_config("tiny.yaml")
    # Adding a baseline = one module + one config line: docs/adding-a-baseline.md's worked example, registered
    # from outside the repository through `plugins`, runs through the same DAG.
    cfg["plugins"] = [str(ROOT / "docs" / "examples" / "fixed_exit.py")]
    cfg["methods"]["fixed-exit"] = ["layers=2"]
    # The backbones experiment on two more families, tiny random checkpoints in their hub layout
    # (hashee/studies/rehearsal/checkpoints.py): RoBERTa (HashEE, static, PLM row) and DistilBERT (whole, published).
    from hashee.studies.rehearsal.checkpoints import write_checkpoint

    for label, key in (("roberta", "models"), ("distilbert", "published")):
        cfg["backbones"][key][label] = str(write_checkpoint(label, tmp_path / "checkpoints" / label, num_layers=2).path)
    config_file = tmp_path / "tiny_with_toy.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    repo_results = sorted((ROOT / "results").glob("*")) if (ROOT / "results").exists() else []
    config_args = ["--configfile", str(config_file)]

    # Targets first: --configfile takes every following word as a config file.
    out = run_snakemake(["all", "--cores", "2", *config_args], tmp_path, env, timeout=3600)
    report = tmp_path / "results" / cfg["name"] / "report.html"
    built = run_snakemake(["all", *config_args, "--report", str(report)], tmp_path, env) if out.returncode == 0 else None
    return SimpleNamespace(root=tmp_path, cfg=cfg, env=env, config_args=config_args, out=out, repo_results=repo_results,
                           report=report, report_out=built)


@pytest.mark.slow
def test_tiny_config_end_to_end(tiny_run):
    """The whole DAG on config/tiny.yaml through the real snakemake command, in tmp."""
    tmp_path, cfg, env, config_args, out = tiny_run.root, tiny_run.cfg, tiny_run.env, tiny_run.config_args, tiny_run.out
    repo_results = tiny_run.repo_results
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-6000:]

    results = tmp_path / "results" / cfg["name"]
    import pandas as pd

    runs = pd.read_csv(results / "runs.csv", dtype={"setting": str})
    planned = set(planned_runs(cfg))
    assert {configured_run(row, planned) for row in runs.itertuples()} == planned
    assert "dev" in set(runs["split"])
    check_runs_content(runs, cfg, tmp_path / cfg["data"]["elue_dir"], results / "train")
    check_hashee_cheaper_than_static(runs, cfg)
    check_reference(pd.read_csv(results / "reference.csv"), runs, cfg)
    check_elue_table(pd.read_csv(results / "tables" / "elue.csv", dtype=str, keep_default_na=False), runs, cfg)
    check_hash_ablation_table(pd.read_csv(results / "tables" / "hash_ablation.csv", dtype=str,
                                          keep_default_na=False), cfg)
    toy = runs[(runs["method"] == "fixed-exit") & (runs["split"] == "test")]
    for task in cfg["tasks"]:
        points = toy[toy["task"] == task].sort_values("setting")
        assert list(points["setting"]) == ["layers=2,exit=1", "layers=2,exit=2"]  # its sweep, a row per point
        assert points["mflops"].is_monotonic_increasing  # exiting later costs more
    # ... and in the tables one model: its class declares `exit` a sweep key, so its points are one row (one curve).
    elue = pd.read_csv(results / "tables" / "elue.csv", dtype=str, keep_default_na=False)
    assert list(elue.loc[(elue["method"] == "fixed-exit") & (elue["row"] == "ours"), "setting"]) == ["layers=2 [exit=*]"]
    assert runs["perf"][runs["split"] == "test"].notna().all()  # the demo's labelled test scores
    backbones = pd.read_csv(results / "tables" / "backbones.csv")  # HashEE and static per backbone and task
    assert sorted(zip(backbones["backbone"], backbones["task"])) == sorted(
        (label, task) for label in ("minilm", "roberta") for task in cfg["tasks"])
    assert backbones[["hashee_perf", "static_perf", "delta_perf"]].notna().all().all()
    assert (backbones["hashee_speedup"] > backbones["static_speedup"]).all()  # tokens exit early: cheaper
    assert (results / "plots" / "backbones.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "DistilBERT" in set(elue.loc[elue["row"] == "paper", "setting"])  # the PLM row, the paper beside it
    for table in ("elue", "hash_ablation", "backbones"):
        for ext in ("md", "csv", "tex"):
            assert (results / "tables" / f"{table}.{ext}").stat().st_size > 0
    for task in cfg["tasks"]:
        assert (results / "plots" / f"pareto_{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", task
        assert (results / "plots" / f"inference_time_{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", task
        # the timing stage ran alone: its log names the threads it held (--cores 2)
        assert "with 2 thread(s)" in (tmp_path / "logs" / cfg["name"] / "timing" / f"{task}.log").read_text(), task
    inference_time = pd.read_csv(results / "tables" / "inference_time.csv", dtype={"setting": str})
    assert set(inference_time["method"]) == set(cfg["methods"])  # every method has timed points
    full = inference_time[(inference_time["method"] == "static") & (inference_time["setting"] == "layers=2")]
    assert (full["speedup_b1"] == 1.0).all() and (full["flops_speedup"] == 1.0).all()  # the full model vs itself
    assert (inference_time["speedup_b1"] > 0).all() and (inference_time["ratio_b4"] > 0).all()
    for study in ("human", "sentence", "token"):  # the difficulty study: rows per study (x100 scores), one table
        rows = pd.read_csv(results / "difficulty" / f"{study}.csv")
        scores = rows[["precision", "recall", "f1"]]
        assert len(rows) and scores.notna().all().all() and ((scores >= 0) & (scores <= 100)).all().all(), study
    for ext in ("md", "csv", "tex"):
        assert (results / "tables" / f"difficulty.{ext}").stat().st_size > 0
    summ = cfg["summarization"]  # summarization: a row per planned run, the table with the paper beside it
    encoder_gflops = {}
    for dataset, method, setting, seed in summ_runs(summ):
        run = results / "summarization" / dataset / method / setting / str(seed)
        rows = pd.read_csv(run / "rows.csv")
        assert len(rows) == 1 and rows[["rouge1", "enc_gflops", "dec_gflops", "time_s"]].notna().all().all()
        row = rows.iloc[0]
        assert all(0 <= row[k] <= 100 for k in ("rouge1", "rouge2", "rougeL")), (dataset, method)
        assert row["enc_gflops"] > 0 and row["dec_gflops"] > 0 and row["time_s"] > 0, (dataset, method)
        assert row["total_gflops"] == pytest.approx(row["enc_gflops"] + row["dec_gflops"]), (dataset, method)
        encoder_gflops.setdefault(dataset, {}).setdefault(method, []).append(row["enc_gflops"])
        assert (run / "predictions" / "test.tsv").stat().st_size > 0
    for dataset, costs in encoder_gflops.items():  # hashee exits tokens early: a cheaper encoder than the full one
        if "hashee" in costs and "full" in costs:
            assert max(costs["hashee"]) < min(costs["full"]), dataset
    for ext in ("md", "csv", "tex"):
        assert (results / "tables" / f"summarization.{ext}").stat().st_size > 0
    submission = results / "submission"
    entries = {p.name for p in submission.iterdir()} | {p.stem for p in submission.iterdir()}
    assert set(cfg["tasks"]) <= entries, sorted(entries)
    with zipfile.ZipFile(results / "submission.zip") as archive:
        names = {n.rstrip("/") for n in archive.namelist()}
    files = {str(p.relative_to(submission)) for p in submission.rglob("*") if p.is_file()}
    assert names == {f for f in files if not f.startswith(".")}  # only what ELUE reads: no .snakemake_timestamp
    assert (tmp_path / "logs" / cfg["name"] / "train").is_dir()
    train_logs = list((tmp_path / "logs" / cfg["name"] / "train").rglob("*.log"))
    assert train_logs
    # progress lines although the jobs run with --quiet: at least each epoch's end, with its dev score
    assert all(re.search(r"^progress .* epoch-end .* dev=[\d.]+ best_dev=", log.read_text(), re.M) for log in train_logs)
    assert tiny_run.report_out.returncode == 0, tiny_run.report_out.stderr[-3000:]
    assert tiny_run.report.stat().st_size > 0
    for page in REPORT_PAGES:
        assert "<table>" in (results / "report" / f"{page}.html").read_text(), page
    assert list((tmp_path / "logs" / cfg["name"] / "benchmarks").rglob("*.tsv"))
    assert not list(results.rglob("*.tmp")) and not list(results.rglob("*.partial*"))

    again = run_snakemake(["all", "--cores", "2", *config_args], tmp_path, env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr

    now = sorted((ROOT / "results").glob("*")) if (ROOT / "results").exists() else []
    assert now == repo_results, "the end-to-end test wrote into the repository's results/"


# The report's categories and files for config/tiny.yaml (both studies enabled).
REPORT_CATEGORIES = {"ELUE", "Hash ablation", "Inference time", "Backbones", "Summarization", "Difficulty",
                     "Provenance"}
REPORT_PAGES = ("elue", "hash_ablation", "inference_time", "backbones", "summarization", "difficulty", "provenance")


@pytest.mark.slow
def test_report_renders_in_headless_chromium(request, tmp_path):
    """The tiny run's report in headless Chromium: it loads, lists every category, shows every plot
    (decoded, non-empty) and every table page (an iframe whose page holds a table), and logs no console error."""
    from report_browser import check_report, missing_reason

    reason = missing_reason()
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    run = request.getfixturevalue("tiny_run")
    assert run.report_out is not None and run.report_out.returncode == 0, run.out.stderr[-3000:]
    expected = {f"results/tiny/report/{page}.html" for page in REPORT_PAGES}
    expected |= {f"results/tiny/plots/{kind}_{task}.png" for task in run.cfg["tasks"]
                 for kind in ("pareto", "inference_time")}
    expected.add("results/tiny/plots/backbones.png")
    check_report(run.report, REPORT_CATEGORIES, expected, tmp_path)
