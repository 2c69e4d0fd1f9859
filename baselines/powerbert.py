"""PoWER-BERT (Goyal et al. 2020, IBM/PoWER-BERT): progressive word-vector elimination by attention significance.

Significance of a word vector after layer j: the attention it receives in layer j, summed over heads and
query positions (`hashee.core.modeling.attention_received`). Layer j keeps the k_j most significant
vectors (plus [CLS], always); the others leave the sequence.

Retention configuration, learned (stage `search`, hashee.core.token_pruning): a soft-extract layer after
every layer but the last holds retention parameters r_j in [0, 1], one per significance rank (the
(1+i)-th most significant non-[CLS] vector is scaled by r_j[i]; [CLS] by 1), trained with the task loss
plus lambda * sum_j j * mass_j, mass_j = the mean over the batch of sum_{i < n-1} r_j[i] / (n - 1) for
an instance of n tokens (the paper's mass, per instance and as a fraction, since our inputs are not
padded to one length). Values are projected onto [0, 1] before every step. Hard extraction
(stage `hard` and inference): an instance of n tokens keeps k_j = 1 + ceil(keep * sum_{i < n-1} r_j[i])
vectors after layer j, made monotone (k_j <= k_{j-1}); `keep` is the sweep (1.0: the learned
configuration; 0.75, 0.5: the same configuration shrunk, one trained model, no retraining).

Departures from the official code: the extraction sits after layer j's feed-forward network (the official
one sits between its self-attention and FFN), so layer j's FFN still runs on the vectors it then drops —
every layer is then an ordinary dense layer over the tokens it ran on (what the ELUE module list can
express); the mass is per instance and normalised; the sweep over `keep` at evaluation is ours (the paper
trains one model per lambda; config/paper.yaml does too, as settings).
"""

from __future__ import annotations

import torch
from torch import nn

from hashee.core.methods import register
from hashee.core.token_pruning import Pruner, TokenPruningMethod, keep_cls


class RetentionPruner(Pruner):
    def __init__(self, layers: int, positions: int):
        super().__init__()
        # Row j-1: layer j's retention per significance rank of the non-[CLS] tokens; 1 keeps everything.
        self.retention = nn.Parameter(torch.ones(max(layers - 1, 0), positions))

    def values(self) -> torch.Tensor:
        """r, projected onto [0, 1] first (the official code clips after each update; here before each
        forward pass, the same projection one step later, which the shared trainer needs no hook for)."""
        with torch.no_grad():
            self.retention.clamp_(0.0, 1.0)
        return self.retention


def ranks(significance: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) rank of each non-[CLS] real token by significance, 0 = most significant; [CLS] and padding
    are ranked after every real token (they are never chosen by rank)."""
    score = significance.masked_fill(~key_mask, float("-inf")).clone()
    score[:, 0] = float("-inf")
    order = torch.sort(score, dim=1, descending=True, stable=True).indices
    return torch.argsort(order, dim=1)


def retention_budgets(retention: torch.Tensor, lengths: torch.Tensor, keep: float) -> torch.Tensor:
    """(B, L-1) vectors each instance keeps after each layer: 1 + ceil(keep * sum_{i < n-1} r_j[i]),
    monotone over layers and at most n (host arithmetic on the learned values, the same for an instance
    whatever batch it is in)."""
    cumulative = torch.cumsum(retention.detach().clamp(0.0, 1.0).double(), dim=1)  # (L-1, P)
    others = (lengths.long() - 1).clamp(min=0, max=retention.shape[1])  # non-[CLS] tokens counted
    mass = torch.where(others > 0, cumulative[:, (others - 1).clamp(min=0)], torch.zeros_like(cumulative[:, :1]))
    budgets = 1 + torch.ceil(keep * mass - 1e-9).long()  # (L-1, B); -1e-9: an exact integer stays itself
    budgets = torch.minimum(budgets, lengths.long().unsqueeze(0))
    return torch.cummin(budgets, dim=0).values.t()


@register
class PowerBert(TokenPruningMethod):
    name = "powerbert"
    description = "PoWER-BERT: word vectors eliminated by attention significance, retention per layer learned"
    setting_defaults = {**TokenPruningMethod.setting_defaults, "lambda": "0.01", "prune_lr": "0.001"}
    sweep_keys = ("keep",)
    sweep_values = ("1.0", "0.75", "0.5")
    plot_style = ("tab:olive", "X")
    table_order = 6.2  # after the paper's baselines (ElasticBERT 6), before a plugin's default 6.5 and HashEE 7

    def make_pruner(self, config):
        return RetentionPruner(config.num_layers, config.max_position_embeddings)

    def soft_rule(self, model, attention_mask, penalties):
        retention = model.pruner.values()

        def decide(layer, received, key_mask):
            rank = ranks(received, key_mask).clamp(max=retention.shape[1] - 1)
            weights = retention[layer - 1][rank]
            weights = torch.where(torch.arange(key_mask.shape[1], device=key_mask.device) == 0, 1.0, weights)
            others = (key_mask.sum(dim=1) - 1).clamp(min=1)
            positions = torch.arange(retention.shape[1], device=key_mask.device)
            mass = (retention[layer - 1].unsqueeze(0) * (positions.unsqueeze(0) < others.unsqueeze(1))).sum(dim=1)
            penalties.append(layer * (mass / others).mean())
            return weights

        return decide

    def hard_rule(self, model, attention_mask, inference):
        keep = self.sweep_value(inference)
        budgets = retention_budgets(model.pruner.retention, attention_mask.sum(dim=1), keep)

        def decide(layer, received, key_mask):
            rank = ranks(received, key_mask)
            # rank counts non-[CLS] tokens: k_j - 1 of them are kept beside [CLS]
            return keep_cls(rank < (budgets[:, layer - 1] - 1).to(rank.device).unsqueeze(1)) & key_mask

        return decide
