# The effect of backbones (docs/backbones.md): on every backbone of the config's `backbones` section,
# the compared method (the registered class with a backbones_setting: HashEE) and the reference method's
# model of the same depth (the is_reference class: static); the ELUE table's PLM rows (each
# backbone truncated to `plm_layers`; the `published` models run whole). A run on another backbone than
# the config's own has `backbone=<label>` first in its setting, so the train rule's paths
# (results/<config>/train/{task}/{method}/{setting}/{seed}/) keep the backbone visible; the config's
# own backbone reuses the main experiment's runs. This file holds the config and functions, included
# right after config.smk, planning.smk and inputs.smk (the train rule's backbone parameter and planned_runs() use them); the rules
# are in backbones.smk.

from hashee.core.methods import backbones_method, reference_method
from hashee.core.settings import backbone_label, with_backbone

BACKBONES = config.get("backbones") or {}


def _registry_role(find):
    try:
        return find()
    except HasheeError as err:
        raise WorkflowError(f"config key 'backbones': {err}") from None


# The two methods the experiment compares, from the registry's class facts (the config names neither).
BACKBONES_METHOD = _registry_role(backbones_method) if BACKBONES.get("enabled") else None
BACKBONES_REFERENCE = _registry_role(reference_method) if BACKBONES.get("enabled") else None
# The compared method's setting: the config's backbones.setting, else its class's backbones_setting.
BACKBONES_SETTING = (BACKBONES.get("setting") or METHOD_CLASSES[BACKBONES_METHOD].backbones_setting
                     if BACKBONES_METHOD else "")
BACKBONES_ENABLED = bool(BACKBONES.get("enabled"))
# label -> backbone (hub name, local path, or minilm); `published` models are static-only.
BACKBONE_MODELS = {**(BACKBONES.get("models") or {}), **(BACKBONES.get("published") or {})}
BACKBONE_OWN = next((label for label, name in (BACKBONES.get("models") or {}).items() if name == config["backbone"]), None)


def _check_backbones():
    if not BACKBONES_ENABLED:
        return
    if not BACKBONES.get("models"):
        raise WorkflowError("config key 'backbones.models': empty -- expected label: backbone entries, "
                            "e.g. {bert: bert-base-uncased}")
    both = sorted(set(BACKBONES["models"]) & set(BACKBONES.get("published") or {}))
    if both:
        raise WorkflowError(f"config key 'backbones.published': label {both[0]!r} is also in backbones.models "
                            "-- expected distinct labels")
    for method in (BACKBONES_METHOD, BACKBONES_REFERENCE):
        if method not in METHODS:
            raise WorkflowError(f"config key 'backbones': the experiment runs methods.{method}, which this config "
                                f"does not plan -- expected a '{method}' entry under 'methods', or backbones.enabled: false")
    try:
        METHOD_CLASSES[BACKBONES_METHOD](parse_setting(BACKBONES_SETTING))
    except HasheeError as err:
        raise WorkflowError(f"config key 'backbones.setting': {err}") from None
    layers = parse_setting(BACKBONES_SETTING).get("layers")
    if METHOD_CLASSES[BACKBONES_METHOD].needs_fitted_hash and layers is not None and config["hash"]["buckets"] > int(layers):
        raise WorkflowError(f"config key 'backbones.setting': {config['hash']['buckets']} hash buckets exceed its "
                            f"{layers} layers -- expected hash.buckets <= layers")


_check_backbones()


def backbone_runs():
    """The experiment's runs: per model label the compared method, the reference model and the PLM row (a
    reference model); per published label its whole reference model. Runs on the config's own backbone
    carry no backbone key."""
    if not BACKBONES_ENABLED:
        return []
    models = []
    for label in BACKBONES["models"]:
        key = None if label == BACKBONE_OWN else label
        models += [(BACKBONES_METHOD, with_backbone(BACKBONES_SETTING, key)),
                   (BACKBONES_REFERENCE, with_backbone(BACKBONES["reference_setting"], key)),
                   (BACKBONES_REFERENCE, with_backbone(f"layers={BACKBONES['plm_layers']}", key))]
    # a whole published model: no layers key, the reference (static) method keeps every layer
    models += [(BACKBONES_REFERENCE, f"backbone={label}") for label in BACKBONES.get("published") or {}]
    return [
        {"task": task, "method": method, "setting": setting, "seed": seed}
        for task in TASKS
        for method, setting in dict.fromkeys(models)
        for seed in SEEDS
    ]


def backbone_hash_settings():
    """label -> the compared method's setting on each backbone but the config's own (whose hash fit_hash fits),
    where that method fits a hash (needs_fitted_hash): a fit_backbone_hash_<label> rule each (backbones.smk)."""
    if not BACKBONES_ENABLED or not METHOD_CLASSES[BACKBONES_METHOD].needs_fitted_hash:
        return {}
    return {label: with_backbone(BACKBONES_SETTING, label) for label in BACKBONES["models"] if label != BACKBONE_OWN}


def backbone_for_label(label):
    """The backbone a `backbone=<label>` setting key names (None: the config's own)."""
    if label is None:
        return config["backbone"]
    if label not in BACKBONE_MODELS:
        raise WorkflowError(f"setting key backbone={label} names a backbone which is not a label of "
                            f"'backbones.models' or 'backbones.published' ({', '.join(BACKBONE_MODELS) or 'none'})")
    return BACKBONE_MODELS[label]


def backbone_of(wildcards):
    """--backbone of a job: the configured backbone its setting's `backbone=<label>` names, else the config's."""
    return backbone_for_label(backbone_label(wildcards.setting))


def backbones_outputs():
    if not BACKBONES_ENABLED:
        return []
    return [*(f"{RESULTS}/tables/backbones.{ext}" for ext in ("md", "csv", "tex")), f"{RESULTS}/plots/backbones.png"]
