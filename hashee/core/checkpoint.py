"""A trained model's directory: weights, metadata, tokenizer, and method extras (HashEE's hash).

    model.safetensors   weights (the method's full model)
    meta.json           method, setting, task, backbone, encoder config, train params, dev history
    tokenizer files     so evaluation needs no access to the backbone
    hash.pt             HashEE only
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from hashee.core.errors import HasheeError
from hashee.core.methods import Method, get_method
from hashee.core.modeling import EncoderConfig
from hashee.core.tasks import TaskSpec, get_task

FORMAT_VERSION = 1


@dataclass
class Trained:
    method: Method
    model: torch.nn.Module
    tokenizer: object
    task: TaskSpec
    meta: dict


def write_checkpoint(directory, state: dict, tokenizer, meta: dict) -> None:
    """model.safetensors, the tokenizer files and meta.json (with the format version) in `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Tied / shared tensors (ALBERT's repeated layer) are stored once per name: clone to detach views.
    save_file({k: v.detach().cpu().clone().contiguous() for k, v in state.items()},
              str(directory / "model.safetensors"))
    tokenizer.save_pretrained(str(directory))
    (directory / "meta.json").write_text(json.dumps({"format": FORMAT_VERSION, **meta}, indent=2, sort_keys=True,
                                                    default=str))


def read_meta(directory, what: str = "trained model") -> dict:
    """meta.json of a checkpoint directory, its format checked."""
    meta_file = Path(directory) / "meta.json"
    if not meta_file.exists():
        raise HasheeError(f"{directory}: not a {what} directory (no meta.json)")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise HasheeError(f"{meta_file}: format {meta.get('format')} is not {FORMAT_VERSION}")
    return meta


def load_weights(model, directory, method_name: str, unsaved_prefix: str | None = None) -> None:
    """model.safetensors into `model`, every name matching (`unsaved_prefix`: parameters never saved)."""
    missing, unexpected = model.load_state_dict(load_file(str(Path(directory) / "model.safetensors")), strict=False)
    if unsaved_prefix:
        missing = [k for k in missing if not k.startswith(unsaved_prefix)]
    if missing or unexpected:
        raise HasheeError(f"{directory}: weights do not fit method {method_name!r} "
                          f"(missing {len(missing)}, unexpected {len(unexpected)}; e.g. "
                          f"{(missing or unexpected)[0]})")


def save_trained(directory, method: Method, model, tokenizer, task: TaskSpec, meta: dict) -> None:
    write_checkpoint(directory, model.state_dict(), tokenizer,
                     {"method": method.name, "setting": method.setting_text(), "task": task.name,
                      "encoder_config": model.bert.config.to_dict(), **meta})
    method.save_extras(model, Path(directory))


def load_trained(directory, expect_method: str | None = None, device="cpu") -> Trained:
    from transformers import AutoTokenizer

    directory = Path(directory)
    meta = read_meta(directory)
    if expect_method is not None and meta["method"] != expect_method:
        raise HasheeError(f"{directory}: checkpoint of method {meta['method']!r}, expected {expect_method!r}")
    task = get_task(meta["task"])
    method = get_method(meta["method"], meta["setting"])
    model = method.build(EncoderConfig(**meta["encoder_config"]), task)
    load_weights(model, directory, meta["method"])
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    method.load_extras(model, directory, tokenizer)
    model.to(device).eval()
    return Trained(method, model, tokenizer, task, meta)
