"""The rehearsal's config rewrite (`rehearsal.enabled`; config/rehearsal.yaml over config/paper.yaml,
docs/paper-run.md): every hub model the config names and every data folder it reads are replaced, before
the workflow reads them, so that whatever paper.yaml plans is rehearsed offline. Each hub name under
HUB_KEYS becomes <hub_dir>/<name>, which rule tiny_checkpoint writes (a tiny random checkpoint of its
family, in its hub layout); the ELUE, difficulty and summarization data folders become folders under
<data_dir> that the data rules generate in the real layouts."""

from __future__ import annotations

import os

from hashee.core.errors import HasheeError
from hashee.studies.rehearsal.checkpoints import hub_shape

# Key paths of hub names in a config ('*': every entry of a mapping).
HUB_KEYS = [("backbone",), ("backbones", "models", "*"), ("backbones", "published", "*"),
            ("difficulty", "backbone"), ("difficulty", "tagging_backbone"),
            ("summarization", "datasets", "*", "backbone"),
            ("summarization", "datasets", "*", "more_backbones", "*", "backbone")]
OFFLINE_NAMES = {"minilm", "minilm-seq2seq"}  # shipped with the package: nothing to stand in for


def _rehearse_hub_names(cfg, path, hub_dir: str, standins: dict[str, str], where: str = "") -> None:
    """Rewrite the hub names at key path `path` below `cfg`, recording local folder -> hub name in `standins`."""
    if not path:
        return
    key, rest = path[0], path[1:]
    keys = list(cfg) if key == "*" and isinstance(cfg, dict) else [key]
    for k in keys:
        if not isinstance(cfg, dict) or k not in cfg:
            continue
        if rest:
            _rehearse_hub_names(cfg[k], rest, hub_dir, standins, f"{where}{k}.")
            continue
        name = cfg[k]
        if not isinstance(name, str) or name in OFFLINE_NAMES or os.path.isabs(name) or name.startswith("."):
            continue
        try:
            hub_shape(name)  # a family the rehearsal cannot write fails here, naming the key
        except HasheeError as err:
            raise HasheeError(f"config key '{where}{k}' (rehearsal.enabled): {err}") from None
        local = f"{hub_dir}/{name}"
        standins[local] = name
        cfg[k] = local


def rehearse(cfg: dict) -> dict[str, str]:
    """Rewrite `cfg` in place for the rehearsal (nothing without rehearsal.enabled); returns the stand-ins,
    local checkpoint folder -> the hub name it stands in for."""
    rehearsal = cfg.get("rehearsal") or {}
    if not rehearsal.get("enabled"):
        return {}
    standins: dict[str, str] = {}
    data = rehearsal["data_dir"].rstrip("/")
    demo = {"generate": True, "seed": rehearsal["seed"], "size": rehearsal["size"]}
    for path in HUB_KEYS:
        _rehearse_hub_names(cfg, path, rehearsal["hub_dir"].rstrip("/"), standins)
    cfg["data"].update(elue_dir=f"{data}/elue", demo=dict(demo))
    if (cfg.get("difficulty") or {}).get("enabled"):
        cfg["difficulty"].update(snli_dir=f"{data}/difficulty/snli", tagging_dir=f"{data}/difficulty/tagging",
                                 demo=dict(demo))
    summ = cfg.get("summarization") or {}
    if summ.get("enabled"):
        summ["demo"] = dict(demo)
        for name, dataset in summ["datasets"].items():
            dataset["path"] = f"{data}/summarization/{name}"
    return standins
