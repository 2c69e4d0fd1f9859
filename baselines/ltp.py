"""LTP, Learned Token Pruning (Kim et al. 2022, kssteven418/LTP): tokens below a learned per-layer threshold leave.

Importance of a token after layer l: the attention it receives in layer l, averaged over heads and
query positions (`hashee.core.modeling.averaged_received`; the official `scoring_mode: mean`).
Layer l has a threshold theta_l = base_l + learned_l, base_l = final_threshold * l / L (the official
`absolute_threshold` pruner's linear rise, final_threshold 0.01), learned_l starting at 0.

Training (stages of hashee.core.token_pruning): `search` is LTP's soft-threshold stage: each token's
states are scaled by the soft mask sigmoid((importance - theta_l) / temperature) ([CLS]: 1), and the loss
adds lambda * the mean over layers of the mask's L1 norm per token (the paper's regulariser, normalised by
sequence length); the thresholds train at `prune_lr`. `hard` is its hard-threshold stage: thresholds
frozen, tokens with importance < theta_l dropped, the weights fine-tuned.

Inference: a token whose importance is below `scale` * theta_l leaves the sequence; `scale` is the sweep
(1.0: the learned thresholds; 1.5, 2.0: raised, pruning more from the same trained model).

Departures from the official code: pruned tokens are really removed (the official code masks them in
attention and keeps computing them); pruning acts after layer l's feed-forward network, as there; the
first stage (plain fine-tuning) is part of the run, where the official code starts from a checkpoint
fine-tuned elsewhere; the threshold sweep at evaluation is ours (the paper sweeps lambda, which
config/paper.yaml does as settings).
"""

from __future__ import annotations

import torch
from torch import nn

from hashee.core.methods import register
from hashee.core.modeling import averaged_received
from hashee.core.token_pruning import Pruner, TokenPruningMethod, keep_cls


class ThresholdPruner(Pruner):
    def __init__(self, layers: int, final_threshold: float):
        super().__init__()
        count = max(layers - 1, 0)
        self.register_buffer("base", final_threshold * torch.arange(1, count + 1, dtype=torch.float32) / layers)
        self.learned = nn.Parameter(torch.zeros(count))

    def thresholds(self) -> torch.Tensor:
        return self.base + self.learned


@register
class Ltp(TokenPruningMethod):
    name = "ltp"
    description = "LTP: learned per-layer thresholds on attention importance, soft masks in training, hard pruning"
    setting_defaults = {**TokenPruningMethod.setting_defaults, "lambda": "0.1", "prune_lr": "0.001", "temperature": "0.001",
                        "final_threshold": "0.01"}
    sweep_keys = ("scale",)
    sweep_values = ("1.0", "1.5", "2.0")
    plot_style = ("tab:cyan", "v")
    table_order = 6.3

    def make_pruner(self, config):
        return ThresholdPruner(config.num_layers, self.float_setting("final_threshold"))

    def soft_rule(self, model, attention_mask, penalties):
        thresholds = model.pruner.thresholds()
        heads = model.bert.config.num_heads
        temperature = self.float_setting("temperature")
        count = max(len(thresholds), 1)

        def decide(layer, received, key_mask):
            importance = averaged_received(received, key_mask, heads)
            mask = torch.sigmoid((importance - thresholds[layer - 1]) / temperature)
            mask = torch.where(torch.arange(key_mask.shape[1], device=key_mask.device) == 0, 1.0, mask)
            real = key_mask.to(mask.dtype)
            penalties.append(((mask * real).sum(dim=1) / real.sum(dim=1)).mean() / count)
            return mask

        return decide

    def hard_rule(self, model, attention_mask, inference):
        thresholds = (model.pruner.thresholds().detach() * self.sweep_value(inference)).tolist()
        heads = model.bert.config.num_heads

        def decide(layer, received, key_mask):
            importance = averaged_received(received, key_mask, heads)
            return keep_cls(importance >= thresholds[layer - 1]) & key_mask

        return decide
