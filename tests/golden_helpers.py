"""Golden fixtures (tests/fixtures/golden/<reference>/, docs/golden.md): what the authors' released code
output on tiny random weights, and the maps from their parameter names onto our modules."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from hashee.core.backbones import load_exact, map_state_dict
from hashee.core.modeling import EncoderConfig

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"
# Our kernels (scaled_dot_product_attention, packed token gathers) round differently from the
# reference's matmul + softmax; the tiny float32 models agree far closer than this.
ATOL = 2e-5


def load(reference: str) -> tuple[dict, dict[str, torch.Tensor]]:
    folder = GOLDEN / reference
    return json.loads((folder / "golden.json").read_text()), load_file(str(folder / "weights.safetensors"))


def encoder_config(golden: dict, family: str = "bert", layers: int | None = None) -> EncoderConfig:
    raw = golden["config"]
    return EncoderConfig(vocab_size=raw["vocab_size"], hidden_size=raw["hidden_size"],
                         num_layers=layers or golden["layers"], num_heads=raw["num_attention_heads"],
                         intermediate_size=raw["intermediate_size"],
                         max_position_embeddings=raw["max_position_embeddings"],
                         type_vocab_size=raw["type_vocab_size"], layer_norm_eps=raw["layer_norm_eps"],
                         hidden_act=raw["hidden_act"], hidden_dropout=raw["hidden_dropout_prob"],
                         attention_dropout=raw["attention_probs_dropout_prob"], pad_token_id=raw["pad_token_id"],
                         family=family)


def load_encoder(encoder, state: dict[str, torch.Tensor], prefix: str) -> dict:
    """The reference's encoder weights (under `prefix`, e.g. "bert.") into our TokenExitEncoder through the
    library's checkpoint mapping (hashee.core.backbones); returns ElasticBERT's per-exit poolers."""
    family = encoder.config.family
    named = {f"{family}.{k[len(prefix):]}": v for k, v in state.items() if k.startswith(prefix)}
    mapped, exit_poolers = map_state_dict(named, encoder.config)
    load_exact(encoder, mapped, "golden fixture")
    return exit_poolers


def copy_linear(linear: torch.nn.Linear, state: dict[str, torch.Tensor], name: str) -> None:
    with torch.no_grad():
        linear.weight.copy_(state[f"{name}.weight"])
        linear.bias.copy_(state[f"{name}.bias"])


def instance_batch(row: dict) -> dict[str, torch.Tensor]:
    ids = torch.tensor([row["input_ids"]])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "token_type_ids": torch.tensor([row["token_type_ids"]]), "labels": torch.tensor([row["label"]])}


def stacked_batch(rows: list[dict]) -> dict[str, torch.Tensor]:
    """Instances of one length, stacked without padding."""
    assert len({len(r["input_ids"]) for r in rows}) == 1
    ids = torch.tensor([r["input_ids"] for r in rows])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "token_type_ids": torch.tensor([r["token_type_ids"] for r in rows]),
            "labels": torch.tensor([r["label"] for r in rows])}


def close(actual, expected, atol: float = ATOL) -> bool:
    return torch.allclose(torch.as_tensor(actual, dtype=torch.float32).reshape(-1),
                          torch.tensor(expected, dtype=torch.float32).reshape(-1), atol=atol, rtol=0)
