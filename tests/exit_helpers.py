"""Helpers shared by the instance-exit baseline tests."""

import torch

from hashee.modeling import EncoderConfig

H, INTER, HEADS = 16, 32, 2  # the tiny encoder of the baseline tests


def alone(batch, i):
    """Instance i of a right-padded batch, as a batch of one without padding."""
    n = int(batch["attention_mask"][i].sum())
    return {k: v[i:i + 1, :n] for k, v in batch.items()}


def exit_layer(trace):
    """The layer an instance exited at: how many encoder layers its trace ran."""
    return sum(call.name.startswith("layer_") for call in trace)


def widest_gap_midpoint(values) -> str:
    """A threshold in the widest gap between per-instance scores, so some instances fall on each side."""
    values = sorted(values)
    gap, low = max((b - a, a) for a, b in zip(values, values[1:]))
    assert gap > 1e-3
    return repr(low + gap / 2)


def random_batch(lengths, seed=1, vocab=60):
    """A right-padded batch of random token ids with the given real lengths."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(1, vocab, (length,), generator=generator)
        mask[row, :length] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def tiny_config(layers=6):
    """A tiny random-weight encoder config (vocabulary 60, no dropout)."""
    return EncoderConfig(vocab_size=60, hidden_size=H, num_layers=layers, num_heads=HEADS, intermediate_size=INTER,
                         max_position_embeddings=40, hidden_dropout=0.0, attention_dropout=0.0)
