"""Seq2seq checkpoints' encoders (BART, CPT) onto the BERT-named token-exit encoder
(hashee.core.modeling), one mapping function per family, and back (the offline seq2seq backbone).
A BART encoder layer is post-LN like BERT's, so it maps exactly. Only the summarization study reads
seq2seq checkpoints, so the mapping lives beside its model (hashee.studies.summarization.modeling);
ELUE's backbones are mapped in hashee.core.backbones."""

from __future__ import annotations

import re

import torch

from hashee.core.errors import HasheeError
from hashee.core.modeling import EncoderConfig

_BART_ENCODER_LAYER = {
    "self_attn.q_proj": "attention.self.query", "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value", "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.output.LayerNorm", "fc1": "intermediate.dense",
    "fc2": "output.dense", "final_layer_norm": "output.LayerNorm",
}
BART_POSITION_OFFSET = 2  # BartLearnedPositionalEmbedding looks up position + 2


def bart_encoder_config(raw: dict, num_layers: int | None = None) -> EncoderConfig:
    """A BartConfig dict -> the TokenExitEncoder config of its encoder (LayerNorm eps: torch's 1e-5)."""
    if raw.get("scale_embedding"):
        raise HasheeError("BART checkpoint with scale_embedding=true: the token-exit encoder does not scale "
                          "its word embeddings (bart-base/large do not)")
    return EncoderConfig(
        vocab_size=raw["vocab_size"], hidden_size=raw["d_model"],
        num_layers=num_layers or raw["encoder_layers"], num_heads=raw["encoder_attention_heads"],
        intermediate_size=raw["encoder_ffn_dim"], max_position_embeddings=raw["max_position_embeddings"],
        type_vocab_size=1, layer_norm_eps=1e-5, hidden_act=raw.get("activation_function", "gelu"),
        hidden_dropout=raw.get("dropout", 0.1), attention_dropout=raw.get("attention_dropout", 0.0),
        pad_token_id=raw.get("pad_token_id", 1), family="bart")


def map_bart_encoder(state: dict[str, torch.Tensor], config: EncoderConfig) -> dict[str, torch.Tensor]:
    """BartForConditionalGeneration / BartModel names -> TokenExitEncoder names (first n layers).

    word embeddings = `shared`; positions = `embed_positions.weight[2:]`; token type = one zero row;
    embeddings LayerNorm = `layernorm_embedding`.
    """
    state = {k.removeprefix("model."): v for k, v in state.items()}
    words = state.get("shared.weight", state.get("encoder.embed_tokens.weight"))
    if words is None or "encoder.embed_positions.weight" not in state:
        raise HasheeError("BART checkpoint lacks shared.weight or encoder.embed_positions.weight")
    positions = state["encoder.embed_positions.weight"][BART_POSITION_OFFSET:]
    mapped = {
        "embeddings.word_embeddings.weight": words,
        "embeddings.position_embeddings.weight": positions[:config.max_position_embeddings],
        "embeddings.token_type_embeddings.weight": words.new_zeros(1, words.shape[1]),
        "embeddings.LayerNorm.weight": state["encoder.layernorm_embedding.weight"],
        "embeddings.LayerNorm.bias": state["encoder.layernorm_embedding.bias"],
    }
    for name, tensor in state.items():
        match = re.match(r"^encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$", name)
        if not match or int(match.group(1)) >= config.num_layers:
            continue
        if match.group(2) not in _BART_ENCODER_LAYER:
            raise HasheeError(f"BART checkpoint: unexpected encoder weight {name}")
        mapped[f"encoder.layer.{match.group(1)}.{_BART_ENCODER_LAYER[match.group(2)]}.{match.group(3)}"] = tensor
    return mapped


def map_cpt_encoder(state: dict[str, torch.Tensor], config: EncoderConfig) -> dict[str, torch.Tensor]:
    """CPT (fnlp/CPT modeling_cpt.py): `model.encoder` is a BertModel of S-Enc + U-Dec layers, run with
    token_type_ids = 1. Keep its first `config.num_layers` (S-Enc) layers; fold segment row 1 into our
    single token-type row, so our encoder (token types 0) computes what CPT's does."""
    mapped = {}
    for name, tensor in state.items():
        if not name.startswith("model.encoder."):
            continue
        name = name.removeprefix("model.encoder.")
        match = re.match(r"^encoder\.layer\.(\d+)\.", name)
        if (match and int(match.group(1)) >= config.num_layers) or name.endswith("position_ids"):
            continue
        mapped[name] = tensor
    segments = mapped.get("embeddings.token_type_embeddings.weight")
    if segments is None or segments.shape[0] < 2:
        raise HasheeError("CPT checkpoint lacks the two-row model.encoder.embeddings.token_type_embeddings")
    mapped["embeddings.token_type_embeddings.weight"] = segments[1:2]
    return mapped


def bert_to_bart_encoder(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """TokenExitEncoder (BERT) names -> BartModel encoder names: the inverse of map_bart_encoder,
    with BERT's token-type-0 row folded into the positions (BART has no segments). Builds the
    offline seq2seq backbone, whose encoder is then read back through map_bart_encoder."""
    inverse = {v: k for k, v in _BART_ENCODER_LAYER.items()}
    emb = "embeddings."
    positions = state[emb + "position_embeddings.weight"] + state[emb + "token_type_embeddings.weight"][0]
    offset_rows = positions.new_zeros(BART_POSITION_OFFSET, positions.shape[1])
    out = {
        "model.shared.weight": state[emb + "word_embeddings.weight"],
        "model.encoder.embed_positions.weight": torch.cat([offset_rows, positions]),
        "model.encoder.layernorm_embedding.weight": state[emb + "LayerNorm.weight"],
        "model.encoder.layernorm_embedding.bias": state[emb + "LayerNorm.bias"],
    }
    for name, tensor in state.items():
        match = re.match(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$", name)
        if match and int(match.group(1)) < num_layers:
            out[f"model.encoder.layers.{match.group(1)}.{inverse[match.group(2)]}.{match.group(3)}"] = tensor
    return out
