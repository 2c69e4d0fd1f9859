"""Seq2seq HashEE: our token-exit encoder + transformers' BART decoder, and DAT's adaptive decoder.

- Encoder: `hashee.core.modeling.TokenExitEncoder` (BERT-named; packed active tokens; exited tokens frozen;
  padding masked). BART's and CPT's encoders map onto it exactly (`hashee.core.backbones`).
- Decoder + LM head: a `BartForConditionalGeneration` whose own encoder has 0 layers; it is called with
  `encoder_outputs=` from our encoder, so `generate()` does beam search, length penalty, min/max
  length and no-repeat n-grams. The decoder cross-attends to the final encoder states, frozen ones
  included. CPT's G-Dec is a BART decoder, so CPT takes the same path.
- DAT (Elbayad et al., ICLR 2020; no public code, implemented from the paper): an exit classifier per
  decoder layer (a LayerNorm per exit + the shared, tied output projection; the last exit is the
  plain LM head), per-token halting when the exit's max probability reaches a threshold, the exited
  token's state copied to the layers above (their keys/values are computed from it so later tokens
  attend to it). Its incremental greedy decoding is `dat_generate`.

Backbones (`load_seq2seq_backbone`): `facebook/bart-*` (or any BART directory), `fnlp/cpt-*` (or a CPT
directory: encoder = the first S-Enc layers of its BertModel, G-Dec = BART decoder), and the offline
default `minilm-seq2seq`: MiniLM-L6's 6 layers as the encoder, a shallow decoder warm-started from
MiniLM's first layers (cross-attention copied from self-attention), LM head tied to the word
embeddings, MiniLM's BERT tokenizer (its uncased vocabulary has CJK characters).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from hashee.core.backbones import _read_weights, load_backbone, load_exact, load_tokenizer, resolve
from hashee.core.errors import HasheeError
from hashee.core.modeling import EncoderConfig, TokenExitEncoder
from hashee.studies.summarization.weights import (
    BART_POSITION_OFFSET,
    bart_encoder_config,
    bert_to_bart_encoder,
    map_bart_encoder,
    map_cpt_encoder,
)

OFFLINE_SEQ2SEQ = "minilm-seq2seq"
OFFLINE_DECODER_LAYERS = 2
FAMILIES = ("bart", "cpt")


@dataclass
class Seq2SeqBackbone:
    name: str
    family: str  # "bart" or "cpt" (the offline default is a BART)
    encoder_config: EncoderConfig
    decoder_config: dict  # BartConfig fields (encoder_layers 0: our encoder replaces BART's)
    state_dict: dict[str, torch.Tensor]  # Seq2SeqModel names (bert.* encoder, bart.* decoder + head)
    tokenizer: object
    extra: dict = field(default_factory=dict)


def _bart_config(raw: dict, dec_layers: int) -> dict:
    from transformers import BartConfig

    keep = {k: v for k, v in raw.items() if k in BartConfig().to_dict() or k.endswith("_token_id")}
    keep.update(encoder_layers=0, decoder_layers=dec_layers, model_type="bart", tie_word_embeddings=True)
    keep.pop("architectures", None)
    keep.pop("transformers_version", None)
    return keep


def _decoder_state(state: dict[str, torch.Tensor], prefix: str, dec_layers: int) -> dict[str, torch.Tensor]:
    """Decoder, shared embeddings and LM head of a checkpoint, in BartForConditionalGeneration names."""
    out = {}
    for name, tensor in state.items():
        if not name.startswith(prefix):
            continue
        inner = "model." + name[len(prefix):] if prefix else name
        inner = inner.replace("model.model.", "model.")
        match = re.match(r"^model\.decoder\.layers\.(\d+)\.", inner)
        if match and int(match.group(1)) >= dec_layers:
            continue
        if inner.startswith(("model.decoder.", "model.shared.")) or inner in ("lm_head.weight", "final_logits_bias"):
            out[inner] = tensor
    return out


def load_seq2seq_backbone(name: str, enc_layers: int | None = None, dec_layers: int | None = None,
                          with_tokenizer: bool = True) -> Seq2SeqBackbone:
    """A seq2seq backbone by name or directory, optionally truncated to its first enc/dec layers."""
    if name == OFFLINE_SEQ2SEQ:
        return _offline_backbone(enc_layers, dec_layers, with_tokenizer)
    path = resolve(name)
    raw = json.loads((path / "config.json").read_text())
    state = _read_weights(path)
    is_cpt = raw.get("model_type") == "cpt" or any(k.startswith("model.encoder.encoder.layer.") for k in state)
    if raw.get("model_type") not in ("bart", "cpt") and not is_cpt:
        raise HasheeError(f"{path / 'config.json'}: model_type {raw.get('model_type')!r} is not a seq2seq "
                          f"family; valid: {', '.join(FAMILIES)} (or '{OFFLINE_SEQ2SEQ}')")
    total_dec = raw["decoder_layers"]
    dec_layers = _check_layers(name, "decoder", dec_layers, total_dec)
    if is_cpt:
        # CPT's BertModel holds S-Enc + U-Dec (as many U-Dec layers as G-Dec layers); G-Dec reads S-Enc's output.
        senc = raw["encoder_layers"] - total_dec
        enc_layers = _check_layers(name, "S-Enc", enc_layers, senc)
        enc_config = EncoderConfig(
            vocab_size=raw["vocab_size"], hidden_size=raw["d_model"], num_layers=enc_layers,
            num_heads=raw["encoder_attention_heads"], intermediate_size=raw["encoder_ffn_dim"],
            max_position_embeddings=raw["max_position_embeddings"], type_vocab_size=1,
            layer_norm_eps=1e-12, hidden_act="gelu", hidden_dropout=raw.get("activation_dropout", 0.1),
            attention_dropout=raw.get("attention_dropout", 0.1), pad_token_id=raw.get("pad_token_id", 0),
            family="cpt")
        encoder_state = map_cpt_encoder(state, enc_config)
        decoder_state = _decoder_state(state, "", dec_layers)
        decoder_state["model.shared.weight"] = encoder_state["embeddings.word_embeddings.weight"]
        family = "cpt"
    else:
        enc_layers = _check_layers(name, "encoder", enc_layers, raw["encoder_layers"])
        enc_config = bart_encoder_config(raw, enc_layers)
        encoder_state = map_bart_encoder(state, enc_config)
        decoder_state = _decoder_state({k if k.startswith(("model.", "lm_head", "final_logits")) else "model." + k: v
                                        for k, v in state.items()}, "", dec_layers)
        family = "bart"
    tokenizer = load_tokenizer(path, name) if with_tokenizer else None
    return Seq2SeqBackbone(name, family, enc_config, _bart_config(raw, dec_layers),
                           {**{f"bert.{k}": v for k, v in encoder_state.items()},
                            **{f"bart.{k}": v for k, v in decoder_state.items()}}, tokenizer)


def _check_layers(name: str, part: str, wanted: int | None, total: int) -> int:
    if wanted is None:
        return total
    if not 1 <= wanted <= total:
        raise HasheeError(f"backbone {name} has {total} {part} layers; cannot truncate to {wanted}")
    return wanted


def offline_bart_state(dec_layers: int = OFFLINE_DECODER_LAYERS) -> tuple[dict, dict, object]:
    """The offline default as a plain BartForConditionalGeneration: (config dict, state dict, tokenizer).

    Encoder = MiniLM-L6 exactly (BERT -> BART names); decoder layer i = MiniLM layer i's attention
    (self- and cross-attention) and FFN; decoder positions/embedding LayerNorm = the encoder's.
    """
    minilm = load_backbone("minilm")
    cfg, state = minilm.config, minilm.state_dict
    tok = minilm.tokenizer
    raw = {
        "vocab_size": cfg.vocab_size, "d_model": cfg.hidden_size, "encoder_layers": cfg.num_layers,
        "decoder_layers": dec_layers, "encoder_attention_heads": cfg.num_heads,
        "decoder_attention_heads": cfg.num_heads, "encoder_ffn_dim": cfg.intermediate_size,
        "decoder_ffn_dim": cfg.intermediate_size, "max_position_embeddings": cfg.max_position_embeddings,
        "activation_function": cfg.hidden_act, "dropout": 0.1, "attention_dropout": 0.1,
        "activation_dropout": 0.0, "scale_embedding": False, "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.cls_token_id, "eos_token_id": tok.sep_token_id,
        "decoder_start_token_id": tok.cls_token_id, "forced_eos_token_id": tok.sep_token_id,
        "model_type": "bart",
    }
    bart = bert_to_bart_encoder(state, cfg.num_layers)
    bart["model.decoder.embed_positions.weight"] = bart["model.encoder.embed_positions.weight"]
    bart["model.decoder.layernorm_embedding.weight"] = bart["model.encoder.layernorm_embedding.weight"]
    bart["model.decoder.layernorm_embedding.bias"] = bart["model.encoder.layernorm_embedding.bias"]
    for i in range(dec_layers):
        for name, tensor in list(bart.items()):
            prefix = f"model.encoder.layers.{i}."
            if name.startswith(prefix):
                inner = name[len(prefix):]
                bart[f"model.decoder.layers.{i}.{inner}"] = tensor
                if inner.startswith("self_attn"):  # cross-attention warm-started from self-attention
                    bart[f"model.decoder.layers.{i}.{inner.replace('self_attn', 'encoder_attn')}"] = tensor
    bart["lm_head.weight"] = bart["model.shared.weight"]
    bart["final_logits_bias"] = torch.zeros(1, cfg.vocab_size)
    return raw, {k: v.clone() for k, v in bart.items()}, tok


def _offline_backbone(enc_layers, dec_layers, with_tokenizer) -> Seq2SeqBackbone:
    raw, bart, tok = offline_bart_state()
    enc_layers = _check_layers(OFFLINE_SEQ2SEQ, "encoder", enc_layers, raw["encoder_layers"])
    dec_layers = _check_layers(OFFLINE_SEQ2SEQ, "decoder", dec_layers, raw["decoder_layers"])
    enc_config = bart_encoder_config(raw, enc_layers)
    encoder_state = map_bart_encoder(bart, enc_config)
    return Seq2SeqBackbone(OFFLINE_SEQ2SEQ, "bart", enc_config, _bart_config(raw, dec_layers),
                           {**{f"bert.{k}": v for k, v in encoder_state.items()},
                            **{f"bart.{k}": v for k, v in _decoder_state(bart, "", dec_layers).items()}},
                           tok if with_tokenizer else None)


class Seq2SeqModel(nn.Module):
    """`bert`: token-exit encoder; `bart`: BART decoder + LM head; `exit_norms`: DAT's exits (or empty)."""

    def __init__(self, encoder_config: EncoderConfig, decoder_config: dict, dat_exits: bool = False):
        super().__init__()
        from transformers import BartConfig, BartForConditionalGeneration

        self.bert = TokenExitEncoder(encoder_config)
        self.bart = BartForConditionalGeneration(BartConfig(**decoder_config))
        # One embedding matrix for the encoder, the decoder and the LM head (BART and CPT share it).
        self.bert.embeddings.word_embeddings.weight = self.bart.model.shared.weight
        num_dec = len(self.bart.model.decoder.layers)
        d_model = decoder_config["d_model"]
        self.exit_norms = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(num_dec - 1)] if dat_exits else [])

    @property
    def decoder_layers(self):
        return self.bart.model.decoder.layers

    def encode(self, input_ids, attention_mask, exit_layers=None):
        return self.bert(input_ids, attention_mask, None, exit_layers)

    def loss(self, input_ids, attention_mask, labels, exit_layers=None):  # labels (B, T_tgt), -100 = ignore
        from transformers.modeling_outputs import BaseModelOutput

        labels = labels[:, : max(1, int((labels != -100).sum(dim=1).max()))].contiguous()
        enc = self.encode(input_ids, attention_mask, exit_layers)
        return self.bart(encoder_outputs=BaseModelOutput(last_hidden_state=enc.last_hidden_state),
                         attention_mask=attention_mask, labels=labels).loss

    def dat_loss(self, input_ids, attention_mask, labels):
        """DAT "aligned" training: the mean over exits of each exit's token cross-entropy."""
        from transformers.models.bart.modeling_bart import shift_tokens_right

        labels = labels[:, : max(1, int((labels != -100).sum(dim=1).max()))].contiguous()
        config = self.bart.config
        enc = self.encode(input_ids, attention_mask)
        decoder_input = shift_tokens_right(labels, config.pad_token_id, config.decoder_start_token_id)
        out = self.bart.model.decoder(input_ids=decoder_input, encoder_hidden_states=enc.last_hidden_state,
                                      encoder_attention_mask=attention_mask, output_hidden_states=True)
        states = out.hidden_states[1:]  # per decoder layer (B, T, d)
        losses = [F.cross_entropy(self.exit_logits(i, h).flatten(0, 1), labels.reshape(-1), ignore_index=-100)
                  for i, h in enumerate(states)]
        return torch.stack(losses).mean()

    def exit_logits(self, index: int, hidden):  # exit `index` (0-based decoder layer) of (..., d) -> (..., V)
        if index < len(self.exit_norms):
            hidden = self.exit_norms[index](hidden)
        return self.bart.lm_head(hidden) + self.bart.final_logits_bias


def load_into(model: Seq2SeqModel, backbone: Seq2SeqBackbone) -> None:
    """Copy a backbone's weights in; every encoder, decoder and head weight must be there."""
    load_exact(model.bert, {k[5:]: v for k, v in backbone.state_dict.items() if k.startswith("bert.")},
               backbone.name)
    decoder = {k[5:]: v for k, v in backbone.state_dict.items() if k.startswith("bart.")}
    expected = {k for k in model.bart.state_dict() if not k.startswith("model.encoder.")}
    # Tied to `shared`; a BartModel checkpoint (facebook/bart-large) has no final_logits_bias: zeros.
    missing = sorted(expected - set(decoder) - {"lm_head.weight", "model.decoder.embed_tokens.weight",
                                                "final_logits_bias"})
    if missing:
        raise HasheeError(f"backbone {backbone.name}: checkpoint lacks {len(missing)} decoder weights, e.g. {missing[0]}")
    model.bart.load_state_dict(decoder, strict=False)


# ------------------------------------------------------------------------------------------------
# Incremental decoding over the BART decoder layers (DAT; also the FLOPs modules of a decoder step).


def _heads(attn, x):  # (B, T, d) -> (B, nh, T, hd)
    return x.view(x.shape[0], x.shape[1], attn.num_heads, attn.head_dim).transpose(1, 2)


def attend(attn, x, keys, values, key_mask):
    """x (B, 1, d) query; keys/values (B, nh, T, hd); key_mask (B, T) bool or None -> (B, 1, d)."""
    q = _heads(attn, attn.q_proj(x))  # (B, nh, 1, hd)
    mask = key_mask[:, None, None, :] if key_mask is not None else None
    ctx = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)  # (B, nh, 1, hd)
    return attn.out_proj(ctx.transpose(1, 2).reshape(x.shape[0], 1, -1))


def layer_step(layer, x, self_k, self_v, cross_k, cross_v, source_mask):
    """One decoder layer on one new token. x (B, 1, d) is the layer input; self_k/self_v (B, nh, t, hd)
    already hold this token's keys/values (from x). Post-LN, as BartDecoderLayer."""
    h = layer.self_attn_layer_norm(x + attend(layer.self_attn, x, self_k, self_v, None))
    h = layer.encoder_attn_layer_norm(h + attend(layer.encoder_attn, h, cross_k, cross_v, source_mask))
    return layer.final_layer_norm(h + layer.fc2(layer.activation_fn(layer.fc1(h))))


def embed_step(decoder, tokens, position: int):  # tokens (B,) -> (B, 1, d)
    x = decoder.embed_tokens(tokens[:, None]) + decoder.embed_positions.weight[position + BART_POSITION_OFFSET]
    return decoder.layernorm_embedding(x)


@torch.no_grad()
def dat_generate(model: Seq2SeqModel, encoder_states, source_mask, threshold: float, max_length: int,
                 min_length: int = 0, no_repeat_ngram_size: int = 0):
    """DAT greedy decoding with per-token confidence halting.

    encoder_states (B, S, d), source_mask (B, S). Returns (sequences (B, T) starting with the decoder
    start token, exit_layers (B, T-1) 1-based decoder layer each generated token exited at, 0 after
    the sequence ended). With threshold > 1 no token exits early: this is plain greedy decoding.
    """
    from transformers import LogitsProcessorList, MinLengthLogitsProcessor, NoRepeatNGramLogitsProcessor
    from transformers.generation.logits_process import ForcedEOSTokenLogitsProcessor

    config = model.bart.config
    decoder = model.bart.model.decoder
    layers = model.decoder_layers
    num_layers = len(layers)
    batch = encoder_states.shape[0]
    device = encoder_states.device
    eos, pad = config.eos_token_id, config.pad_token_id
    processors = LogitsProcessorList()
    if min_length > 0:
        processors.append(MinLengthLogitsProcessor(min_length, eos, device=device))
    if no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGramLogitsProcessor(no_repeat_ngram_size))
    if getattr(config, "forced_eos_token_id", None) is not None:
        processors.append(ForcedEOSTokenLogitsProcessor(max_length, config.forced_eos_token_id, device=device))
    source_mask = source_mask.bool()
    cross = [(_heads(lay.encoder_attn, lay.encoder_attn.k_proj(encoder_states)),
              _heads(lay.encoder_attn, lay.encoder_attn.v_proj(encoder_states))) for lay in layers]
    caches: list[list] = [[None, None] for _ in layers]
    sequences = torch.full((batch, 1), config.decoder_start_token_id, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    exits = []
    for position in range(max_length - 1):
        x = embed_step(decoder, sequences[:, -1], position)  # (B, 1, d)
        exited = torch.zeros(batch, dtype=torch.bool, device=device)
        exit_layer = torch.full((batch,), num_layers, dtype=torch.long, device=device)
        logits = None
        for index, layer in enumerate(layers):
            # Keys/values of this layer from its input: for exited rows, the copied state.
            k, v = _heads(layer.self_attn, layer.self_attn.k_proj(x)), _heads(layer.self_attn, layer.self_attn.v_proj(x))
            cache = caches[index]
            cache[0] = k if cache[0] is None else torch.cat([cache[0], k], dim=2)
            cache[1] = v if cache[1] is None else torch.cat([cache[1], v], dim=2)
            if bool(exited.all()):
                continue  # every row halted: upper layers only need the copied state's keys/values
            h = layer_step(layer, x, cache[0], cache[1], *cross[index], source_mask)
            x = torch.where(exited[:, None, None], x, h)
            layer_logits = model.exit_logits(index, h[:, 0])  # (B, V)
            if logits is None:
                logits = layer_logits
            logits = torch.where(exited[:, None], logits, layer_logits)
            if index + 1 < num_layers:
                confident = layer_logits.softmax(-1).max(-1).values >= threshold
                newly = confident & ~exited
                exit_layer = torch.where(newly, torch.full_like(exit_layer, index + 1), exit_layer)
                exited |= confident
        scores = processors(sequences, logits.float())
        token = scores.argmax(-1)
        token = torch.where(finished, torch.full_like(token, pad), token)
        exits.append(torch.where(finished, torch.zeros_like(exit_layer), exit_layer))
        sequences = torch.cat([sequences, token[:, None]], dim=1)
        finished |= token == eos
        if bool(finished.all()):
            break
    return sequences, torch.stack(exits, dim=1)
