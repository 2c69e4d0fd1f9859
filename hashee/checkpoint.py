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

from .errors import HasheeError
from .methods import Method, get_method
from .modeling import EncoderConfig
from .tasks import TaskSpec, get_task

FORMAT_VERSION = 1


@dataclass
class Trained:
    method: Method
    model: torch.nn.Module
    tokenizer: object
    task: TaskSpec
    meta: dict


def save_trained(directory, method: Method, model, tokenizer, task: TaskSpec, meta: dict) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Tied / shared tensors (ALBERT's repeated layer) are stored once per name: clone to detach views.
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"))
    tokenizer.save_pretrained(str(directory))
    method.save_extras(model, directory)
    full_meta = {"format": FORMAT_VERSION, "method": method.name, "setting": method.setting_text(),
                 "task": task.name, "encoder_config": model.bert.config.to_dict(), **meta}
    (directory / "meta.json").write_text(json.dumps(full_meta, indent=2, sort_keys=True))


def load_trained(directory, expect_method: str | None = None, device="cpu") -> Trained:
    from transformers import AutoTokenizer

    directory = Path(directory)
    meta_file = directory / "meta.json"
    if not meta_file.exists():
        raise HasheeError(f"{directory}: not a trained model directory (no meta.json)")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise HasheeError(f"{meta_file}: format {meta.get('format')} is not {FORMAT_VERSION}")
    if expect_method is not None and meta["method"] != expect_method:
        raise HasheeError(f"{directory}: checkpoint of method {meta['method']!r}, expected {expect_method!r}")
    task = get_task(meta["task"])
    method = get_method(meta["method"], meta["setting"])
    model = method.build(EncoderConfig(**meta["encoder_config"]), task)
    state = load_file(str(directory / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise HasheeError(f"{directory}: weights do not fit method {meta['method']!r} "
                          f"(missing {len(missing)}, unexpected {len(unexpected)}; e.g. "
                          f"{(missing or unexpected)[0]})")
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    method.load_extras(model, directory, tokenizer)
    model.to(device).eval()
    return Trained(method, model, tokenizer, task, meta)
