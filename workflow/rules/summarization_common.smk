# Summarization: the config section named, and the input functions of summarization.smk's rules
# (functions apart from rules, as config.smk, planning.smk and inputs.smk are for the ELUE stages).

from hashee.core.settings import backbone_label, with_backbone
from hashee.studies.summarization.data import DEMO_FILES, synthetic_files
from hashee.studies.summarization.methods import SUMM_METHODS

SUMM = config.get("summarization") or {"enabled": False}
SUMM_ENABLED = bool(SUMM.get("enabled", False))
SUMM_DEMO = SUMM.get("demo") or {"generate": False}
SUMM_RESULTS = f"{RESULTS}/summarization"
SUMM_RUN = "{dataset}/{smethod}/{ssetting}/{seed}"
# Summarization methods whose run reads a fitted hash (a summ_fit_hash job): their class fact, from the
# study's own method registry (its names overlap with the ELUE methods').
SUMM_HASH_METHODS = {name for name, cls in SUMM_METHODS.classes().items() if cls.needs_fitted_hash}
# The files write_demo makes: demo-en in CNN/DM's CSV layout, demo-zh in CSL's (the library's list).
SUMM_DEMO_FILES = {name: list(files) for name, files in DEMO_FILES.items()}


def resolve_summ_path(dataset):
    """summarization.datasets.<dataset>.path; a value starting with '$' is read from that variable."""
    return resolve_env_path(
        f"summarization.datasets.{dataset}.path",
        SUMM["datasets"][dataset]["path"],
        f"{dataset} (docs/summarization.md), or summarization.enabled: false",
    )


def summ_generated(dataset):
    """Whether the workflow writes the dataset's files: the demo's (rule summ_demo_data) or, in the rehearsal, a
    real dataset's layout with synthetic text (rule summ_synthetic_data)."""
    return SUMM_DEMO["generate"] and (dataset in SUMM_DEMO_FILES or summ_synthetic(dataset))


def summ_synthetic(dataset):
    return bool((config.get("rehearsal") or {}).get("enabled")) and dataset not in SUMM_DEMO_FILES


def summ_generated_files(dataset):
    """The files the workflow writes for a generated dataset (below its path)."""
    return SUMM_DEMO_FILES[dataset] if dataset in SUMM_DEMO_FILES else list(synthetic_files(dataset))


if SUMM_ENABLED:
    SUMM_DATASETS = list(SUMM["datasets"])
    SUMM_SEEDS = SUMM["seeds"]
    SUMM_PATHS = {d: resolve_summ_path(d) for d in SUMM_DATASETS}
    for _dataset, _path in SUMM_PATHS.items():  # real data is checked before planning
        if not summ_generated(_dataset) and not os.path.isdir(_path):
            raise WorkflowError(
                f"missing summarization data folder {_path} -- config key 'summarization.datasets.{_dataset}.path' "
                f"must name the folder of {_dataset} (layouts: docs/summarization.md), or set "
                f"summarization.demo.generate: true for the offline demo-en / demo-zh"
            )
    _generated = {os.path.dirname(SUMM_PATHS[d]) for d in SUMM_DATASETS if d in SUMM_DEMO_FILES and summ_generated(d)}
    if len(_generated) > 1:
        raise WorkflowError(
            "config keys 'summarization.datasets.<demo>.path': demo-en and demo-zh must live in one folder "
            f"(write_demo writes both), got {sorted(_generated)}"
        )
    SUMM_DEMO_DIR = _generated.pop() if _generated else None
else:
    SUMM_DATASETS, SUMM_SEEDS, SUMM_PATHS, SUMM_DEMO_DIR = [], [], {}, None


def summ_methods(dataset):
    """method -> settings of a dataset: its own `methods` if given, else summarization.methods."""
    return SUMM["datasets"][dataset].get("methods") or SUMM["methods"]


def summ_more_backbones(dataset):
    """label -> {backbone, methods}: the other backbones a dataset also runs on (its `more_backbones`)."""
    return SUMM["datasets"][dataset].get("more_backbones") or {}


def summ_settings(dataset):
    """(method, setting) of a dataset's runs: its methods on its backbone, then on each of `more_backbones`,
    whose settings start with backbone=<label> ('default', no setting, becomes backbone=<label> alone)."""
    pairs = [(m, s) for m, settings in summ_methods(dataset).items() for s in settings]
    for label, entry in summ_more_backbones(dataset).items():
        pairs += [(m, with_backbone("" if s == "default" else s, label)) for m, settings in entry["methods"].items()
                  for s in settings]
    return pairs


def summ_runs():
    return [
        {"dataset": d, "smethod": m, "ssetting": s, "seed": seed}
        for d in SUMM_DATASETS
        for m, s in summ_settings(d)
        for seed in SUMM_SEEDS
    ]


def summ_backbone_of(dataset, setting):
    """The backbone a run loads: the `more_backbones` entry its setting's backbone=<label> names, else the dataset's."""
    label = None if setting in ("", "default") else backbone_label(setting)
    if label is None:
        return SUMM["datasets"][dataset]["backbone"]
    more = summ_more_backbones(dataset)
    if label not in more:
        raise WorkflowError(f"setting key backbone={label} names no label of 'summarization.datasets."
                            f"{dataset}.more_backbones' ({', '.join(more) or 'none'})")
    return more[label]["backbone"]


def summ_backbone(setting):
    """--backbone of the jobs of the summarization rule of `setting` (one per setting, snakemake#2366)."""
    return lambda wildcards: summ_backbone_of(wildcards.dataset, setting)


def summ_backbone_input(setting):
    """The rehearsal's tiny checkpoint of that backbone, as an input (none for a hub or local model)."""
    return lambda wildcards: standin_input(summ_backbone_of(wildcards.dataset, setting))


def summarization_outputs():
    """Final outputs (none when summarization.enabled is false)."""
    if not SUMM_ENABLED:
        return []
    return [f"{RESULTS}/tables/summarization.{ext}" for ext in ("md", "csv", "tex")]


def summ_data(wildcards):
    dataset = wildcards.dataset
    if summ_generated(dataset):
        return [f"{SUMM_PATHS[dataset]}/{f}" for f in summ_generated_files(dataset)]
    return []


def summ_dataset(key):
    """A per-dataset key for a job."""
    return lambda wildcards: SUMM["datasets"][wildcards.dataset][key]


# summarization.smk has a rule per (method, setting), the setting spelled out in its paths, not a wildcard. A remote
# job (SLURM's) is told its wildcard values as `--target-jobs <name>:key=value,...`, which Snakemake splits at every
# comma, settings' included (snakemake#2366). Only {dataset} and {seed} remain wildcards; the paths are unchanged.


def summ_rule_id(*parts):
    """A rule-name suffix from a method and setting: hash=frequency,buckets=6 -> hash_frequency_buckets_6."""
    return re.sub(r"\W", "_", "_".join(parts))


def summ_hash_settings():
    """hashee setting -> the datasets that fit it: one summ_fit_hash rule each."""
    settings = {}
    for d in SUMM_DATASETS:
        for m, s in summ_settings(d):
            if m in SUMM_HASH_METHODS:
                settings.setdefault(s, []).append(d)
    return settings


def summ_run_settings():
    """(method, setting) -> the datasets that run it: one summ_run rule each."""
    runs = {}
    for d in SUMM_DATASETS:
        for m, s in summ_settings(d):
            runs.setdefault((m, s), []).append(d)
    return runs


def summ_hash_file(dataset, setting, seed):
    """A fitted summarization hash; dataset and seed may be {placeholders}."""
    return f"{SUMM_RESULTS}/hashes/{dataset}/{setting}/{seed}/hash.pt"


def summ_run_input(method, setting):
    def inputs(wildcards):
        found = {"data": summ_data(wildcards), "backbone": standin_input(summ_backbone_of(wildcards.dataset, setting))}
        if method in SUMM_HASH_METHODS:
            found["hash"] = summ_hash_file(wildcards.dataset, setting, wildcards.seed)
        return found

    return inputs


def summ_decoding(wildcards):
    d = SUMM["datasets"][wildcards.dataset]["decoding"]
    return (
        f"--num-beams {d['num_beams']} --length-penalty {d['length_penalty']} --gen-max-length {d['max_length']}"
        f" --gen-min-length {d['min_length']} --no-repeat-ngram-size {d['no_repeat_ngram_size']}"
        f" --early-stopping {str(d['early_stopping']).lower()}"
    )


def summ_train(key):
    return lambda wildcards: SUMM["train"][key]
