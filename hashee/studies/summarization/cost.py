"""FLOPs of seq2seq generation in ELUE's convention (`hashee.measure.flops`): encoder per source, decoder per
generated summary, total.

Encoder: per source, its embedding LayerNorm plus each layer with the tokens that layer processed
(`hashee.measure.flops.analytic_layer_flops`, which tests/test_flops.py checks equals fvcore's count).
Decoder: per generated token t (1-based; its self-attention sees t keys) one incremental step of
each layer it ran, with cross-attention to all S source states, plus the output projection; the
cross-attention keys/values of the S source states once per summary. The decoder's per-step shapes
(t, S) are too many to trace one by one with fvcore, so the step is counted analytically and
tests/test_summarization_model.py checks the formula against fvcore on `FlopsDecoderStep`.
Beam search: the FLOPs of the returned summary (one hypothesis), not of every beam.
DAT: each token runs layers 1..n (its exit), the exit classifier (LayerNorm, projection, softmax for
the confidence) at each layer it ran below the top; the layers above n compute the copied state's
keys/values only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hashee.measure.flops import analytic_layer_flops
from hashee.studies.summarization.modeling import Seq2SeqModel, _heads, layer_step


@dataclass(frozen=True)
class Dims:
    hidden: int
    heads: int
    enc_ffn: int
    dec_ffn: int
    vocab: int
    enc_layers: int
    dec_layers: int

    @classmethod
    def of(cls, model: Seq2SeqModel) -> Dims:
        enc, dec = model.bert.config, model.bart.config
        return cls(enc.hidden_size, dec.decoder_attention_heads, enc.intermediate_size, dec.decoder_ffn_dim,
                   dec.vocab_size, model.bert.num_layers, len(model.decoder_layers))


def encoder_flops(dims: Dims, length: int, active_counts: list[int]) -> int:
    """One source of `length` real tokens; active_counts[l] tokens ran encoder layer l+1."""
    return 2 * length * dims.hidden + sum(
        analytic_layer_flops(n, length, dims.hidden, dims.enc_ffn, dims.heads) for n in active_counts if n > 0)


def decoder_step_flops(dims: Dims, t: int, source_length: int) -> int:
    """One decoder layer on the t-th generated token: its Q/K/V, attention over t keys, cross-attention
    (query, attention over S source states, output), FFN, three LayerNorms."""
    d, h = dims.hidden, dims.heads
    projections = 6 * d * d  # self Q, K, V, out; cross Q, out
    attention = 2 * t * h + 2 * d * t + 2 * source_length * h + 2 * d * source_length
    return projections + attention + 2 * d * dims.dec_ffn + 3 * 2 * d


def decoder_flops(dims: Dims, source_length: int, generated: int, exits: list[int] | None = None) -> int:
    """One summary of `generated` tokens; `exits[t]`: DAT's exit layer of token t (None: all layers)."""
    d = dims.hidden
    total = dims.dec_layers * 2 * source_length * d * d  # cross-attention keys/values, once
    for t in range(1, generated + 1):
        ran = dims.dec_layers if exits is None else exits[t - 1]
        total += 2 * d  # embedding LayerNorm
        total += sum(decoder_step_flops(dims, t, source_length) for _ in range(ran))
        if exits is None or ran == dims.dec_layers:
            total += d * dims.vocab  # the top layer's output projection
        if exits is not None:
            checked = min(ran, dims.dec_layers - 1)  # exits below the top: LayerNorm, projection, softmax
            total += checked * (2 * d + d * dims.vocab + dims.vocab)
            total += (dims.dec_layers - ran) * 2 * d * d  # copied state's keys/values above the exit
    return total


def generation_costs(model: Seq2SeqModel, attention_mask: torch.Tensor, generated, pad_token_id: int):
    """Per instance (enc_flops, dec_flops, gen_tokens) of one generated batch (`Generated`)."""
    dims = Dims.of(model)
    lengths = attention_mask.sum(dim=1).tolist()
    tokens = generated.sequences[:, 1:]  # drop the decoder start token
    counts = (tokens != pad_token_id).sum(dim=1).tolist()
    rows = []
    for i, (length, active, n) in enumerate(zip(lengths, generated.encoder_counts.tolist(), counts)):
        exits = None
        if generated.decoder_exits is not None:
            exits = generated.decoder_exits[i, :n].tolist()
        rows.append((encoder_flops(dims, length, active), decoder_flops(dims, length, n, exits), n))
    return rows


class FlopsDecoderStep(nn.Module):
    """Input (t, S, d): one decoder layer's incremental step for the t-th token over S source states,
    including this token's self-attention keys/values (the source keys/values are per summary)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        t, source_length = x.shape[0], x.shape[1]
        token = x[:1, :1]  # (1, 1, d)
        attn = self.layer.self_attn
        past = x[: t - 1, 0].unsqueeze(0)  # (1, t-1, d) stands for the cached keys/values
        keys = torch.cat([_heads(attn, past), _heads(attn, attn.k_proj(token))], dim=2)
        values = torch.cat([_heads(attn, past), _heads(attn, attn.v_proj(token))], dim=2)
        cross = _heads(self.layer.encoder_attn, x[0, :source_length].unsqueeze(0))  # source keys/values
        return layer_step(self.layer, token, keys, values, cross, cross, None)
