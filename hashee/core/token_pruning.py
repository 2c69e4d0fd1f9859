"""Token pruning (PoWER-BERT, LTP): tokens leave the sequence between layers, by attention-based importance.

The shared part of both baselines (baselines/powerbert.py, baselines/ltp.py): the model is the plain
`SequenceClassifier` with a `pruner` submodule holding the method's pruning parameters (PoWER-BERT's
retention, LTP's thresholds); the forward pass is `hashee.core.modeling.pruned_forward`, which really
removes pruned tokens (later layers' queries, keys and values shrink) and whose traces record each layer
as a dense layer over the tokens it ran on, `(n, n, hidden)`; the module list is the plain encoder's, so
the ELUE submission, the validator and `score-submission` count it like any other.

Training, three stages of the shared trainer (both papers' recipe):
1. `finetune`: the plain model (no pruning), selected on dev;
2. `search`: soft pruning (each token's states scaled by a differentiable keep weight) plus the method's
   sparsity penalty weighted by the setting `lambda`; the pruning parameters train at `prune_lr`; no dev
   selection (the searched configuration is the stage's last);
3. `hard`: hard pruning with the searched (now frozen) parameters, the weights fine-tuned, selected on dev.
Until the search stage has run, inference prunes nothing (the pruner's `searched` flag), so the first
stage's dev selection sees the full model.

`search_epochs` / `hard_epochs` (default: the run's epochs) shorten stages 2 and 3.

[CLS] is always kept (it is what the classifier reads). Nothing is pruned after the last layer: its
output feeds only the pooled head.
"""

from __future__ import annotations

import torch
from torch import nn

from hashee.core.methods import Method, Prediction, Stage, task_loss
from hashee.core.modeling import pruned_forward, pruned_traces


class Pruner(nn.Module):
    """The pruning parameters of a model; `searched` turns pruning on at inference once stage 2 has run."""

    def __init__(self):
        super().__init__()
        self.register_buffer("searched", torch.zeros((), dtype=torch.bool))


class TokenPruningMethod(Method):
    """Base of the token-pruning baselines; subclasses give the pruner and the soft and hard rules."""

    supports_regression = True  # the pruning is in the encoder; the head is the plain classifier/regressor
    beyond_paper = True
    setting_defaults = {"layers": "", "lambda": "0.01", "prune_lr": "0.001", "search_epochs": "", "hard_epochs": ""}

    # --- what a subclass supplies ---
    def make_pruner(self, config) -> Pruner:
        raise NotImplementedError

    def soft_rule(self, model, attention_mask, penalties: list):
        """`decide` for `pruned_forward` in the search stage: float keep weights; appends each layer's
        penalty term (a scalar tensor) to `penalties`."""
        raise NotImplementedError

    def penalty(self, penalties: list) -> torch.Tensor:
        return torch.stack(penalties).sum()

    def hard_rule(self, model, attention_mask, inference: dict):
        """`decide` for `pruned_forward` at inference and in the hard stage: a (B, T) bool keep mask."""
        raise NotImplementedError

    # --- settings ---
    def float_setting(self, key: str) -> float:
        from hashee.core.errors import HasheeError

        try:
            return float(self.settings[key])
        except ValueError:
            raise HasheeError(f"method {self.name}: setting {key}={self.settings[key]!r} is not a number") from None

    def stage_epochs(self, key: str, default: float) -> float:
        """`search_epochs` / `hard_epochs` when the setting gives them (the demo shortens the last two
        stages), else the run's epochs."""
        return self.float_setting(key) if self.settings.get(key) else default

    # --- the Method interface ---
    def build(self, config, task):
        model = super().build(config, task)
        model.pruner = self.make_pruner(config)
        return model

    def _run(self, model, batch, decide):
        return pruned_forward(model, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), decide)

    def stages(self, model, params):
        weight = self.float_setting("lambda")

        def plain(model, batch):
            logits, _ = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            return task_loss(model.task, logits, batch["labels"])

        def soft(model, batch):
            model.pruner.searched.fill_(True)
            penalties = []
            logits, _ = self._run(model, batch, self.soft_rule(model, batch["attention_mask"], penalties))
            return task_loss(model.task, logits, batch["labels"]) + weight * self.penalty(penalties)

        def hard(model, batch):
            logits, _ = self._run(model, batch, self.hard_rule(model, batch["attention_mask"],
                                                               self.inference_settings()[0]))
            return task_loss(model.task, logits, batch["labels"])

        def weights(m):
            return [p for name, p in m.named_parameters() if not name.startswith("pruner.")]

        def pruning(m):
            return m.pruner.parameters()

        return [
            Stage("finetune", weights, plain, params.epochs, params.lr, params.warmup, params.weight_decay),
            Stage("search", lambda m: m.parameters(), soft, self.stage_epochs("search_epochs", params.epochs),
                  params.lr, params.warmup,
                  params.weight_decay, select_on_dev=False, fast_parameters=pruning,
                  fast_lr=self.float_setting("prune_lr")),
            Stage("hard", weights, hard, self.stage_epochs("hard_epochs", params.epochs), params.lr, params.warmup,
                  params.weight_decay),
        ]

    def rule_parameters(self, model):
        return model.pruner.parameters()

    def _decide(self, model, batch, inference):
        if not bool(model.pruner.searched):
            return lambda *args: None
        return self.hard_rule(model, batch["attention_mask"], inference)

    def predict(self, model, batch, inference):
        logits, out = self._run(model, batch, self._decide(model, batch, inference))
        return Prediction(logits, pruned_traces(batch["attention_mask"], out.layer_lengths,
                                                model.bert.config.hidden_size))

    def predict_outputs(self, model, batch, inference):
        return self._run(model, batch, self._decide(model, batch, inference))[0]


def keep_cls(keep: torch.Tensor) -> torch.Tensor:
    """(B, T) keep mask with position 0 ([CLS]) forced on."""
    keep = keep.clone()
    keep[:, 0] = True
    return keep
