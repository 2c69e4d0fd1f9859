"""BERxiT (castorini/berxit): DeeBERT's heads + a learning-to-exit (LTE) module.

- Heads: DeeBERT's (own pooler initialised from the final pooler -> dropout -> Linear(H, labels)).
  LTE: one Linear(H, 1) + sigmoid, shared by all layers, on each head's pooled output; it
  estimates how likely the head is to be wrong. It lives at `model.lte` (so it is in the state dict
  once and saves/loads with the model); heads 1..L-1 hold an unregistered reference to it and
  return [logits, lte_logit]. The last exit always exits and needs no LTE.
- Training, one stage ("alternate-lte", the run's lr/epochs): even steps the final exit's loss, odd
  steps the sum of the other exits' losses; every step plus the MSE between the LTE output and a
  detached target: classification 1 - [head correct], regression tanh(|prediction - label|).
- Exit after layer i when sigmoid(LTE(pooled_i)) < threshold. Works for regression (the exit's
  prediction is the head's scalar).

Step parity and resume: the trainer calls `stage.loss(model, batch)` once per optimizer step and
does not pass the step number, so the loss keeps its own counter. It is a model buffer
(`model.lte_step`, incremented by every loss call): the trainer's resume checkpoint saves the model
state right after the step that incremented it, so a killed run resumes with the counter of its
last checkpointed step and the next step has the same parity as in an uninterrupted run (a Python
attribute on the Method would restart at 0 and flip the parity on resume). It also travels with the
best-dev weights and saved models, where it is inert.

Traces: after layer i < L, `exit_i` (shape (H,): [CLS] pooler + classifier) and `lte` (shape (H,):
the Linear(H,1)); after layer L only `exit_L`. So FLOPs include the LTE module.

Model selection: the first inference setting, threshold 0, never exits early (the sigmoid is never
< 0): dev is scored on the final exit, which the alternate schedule trains on every other step.
"""

from __future__ import annotations

import torch
from torch import nn

from hashee.core.methods import Stage, register, task_loss
from hashee.core.modeling import FlopsHead, pooled_input
from hashee.core.multiexit import (
    ClsHead,
    FlopsSequenceHead,
    MultiExitMethod,
    MultiExitModel,
    backbone_parameters,
    init_exit_poolers,
)
from hashee.core.trace import ModuleCall

# LTE output estimates P(head wrong) (classification; regression: tanh of the absolute error), so a
# threshold t exits where the estimated error risk is below t. 0 never exits early (model selection
# and the full-model point); 0.05..0.9 spans cautious to aggressive. The official code used
# per-layer values between 0.005 and 0.6 (BERT-base/large); 0.7-0.9 extends the curve to the fast
# end, where most instances leave after layer 1. Regression: t=0.5 exits at |error| < 0.55 on
# STS-B's 0..5 scale, t=0.9 at |error| < 1.47.
BERXIT_THRESHOLDS = ("0", "0.05", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9")


class LteHead(ClsHead):
    """DeeBERT head that also applies the shared LTE to its pooled output: (B, labels + 1)."""

    def __init__(self, config, num_labels: int, lte: nn.Linear | None):
        super().__init__(config, num_labels)
        # A plain tuple, not a submodule: the LTE is registered once, as `model.lte`.
        self._lte = (lte,)

    @property
    def lte(self) -> nn.Linear | None:
        return self._lte[0]

    def forward(self, hidden, key_mask=None):
        pooled = self.dropout(torch.tanh(self.pooler(pooled_input(hidden, key_mask, self.pooling))))  # the official LTE input
        logits = self.classifier(pooled)
        if self.lte is None:
            return logits
        return torch.cat([logits, self.lte(pooled)], dim=-1)


class ClsPart(nn.Module):
    """FLOPs view of an LteHead without its LTE (the LTE is traced as its own `lte` call)."""

    def __init__(self, head: LteHead):
        super().__init__()
        self.head = head

    def forward(self, hidden, key_mask=None):
        return ClsHead.forward(self.head, hidden, key_mask)


@register
class BERxiT(MultiExitMethod):
    official_batch_one = True  # its official code runs batch 1 only; here it runs batched
    name = "berxit"
    description = "BERxiT: DeeBERT's heads plus a learning-to-exit module"
    supports_regression = True
    sweep_keys = ("threshold",)
    plot_style = ("tab:blue", "v")
    table_order = 4
    paper_rows = (("bert", "", "BERxiT w/ BERT"), ("elasticbert", "", "BERxiT w/ ElasticBERT"))
    sweep_values = BERXIT_THRESHOLDS

    # ------------------------------------------------------------------ model
    def build(self, config, task):
        self.check_task(task)
        lte = nn.Linear(config.hidden_size, 1)
        exits = [LteHead(config, task.num_labels, lte if i < config.num_layers else None)
                 for i in range(1, config.num_layers + 1)]
        model = MultiExitModel(config, exits)
        model.task = task
        model.lte = lte
        model.register_buffer("lte_step", torch.zeros((), dtype=torch.long))  # see the module docstring
        return model

    @staticmethod
    def link_lte(model) -> None:
        """Point heads 1..L-1 at `model.lte` (cheap; robust to copies that replace the Linear)."""
        for head in model.exits[:-1]:
            if head.lte is not model.lte:
                head._lte = (model.lte,)

    def init_from_backbone(self, model, backbone) -> None:
        super().init_from_backbone(model, backbone)
        init_exit_poolers(model)

    # ------------------------------------------------------------------ exit rule
    def exit_decision(self, task, outputs, layer, state, inference):
        n = task.num_labels
        if outputs.shape[-1] == n:  # the last exit: no LTE, the loop exits it anyway
            return torch.zeros(outputs.shape[0], dtype=torch.bool, device=outputs.device)
        return torch.sigmoid(outputs[:, n].float()) < self.sweep_value(inference)

    def final_output(self, task, outputs, state):
        return outputs[:, :task.num_labels]

    def prepare_inference(self, model):
        self.link_lte(model)

    def head_calls(self, layer, num_layers, length, hidden):
        calls = [ModuleCall(f"exit_{layer}", (hidden,))]
        if layer < num_layers:  # the last exit has no LTE
            calls.append(ModuleCall("lte", (hidden,)))
        return calls

    def flop_modules(self, model):
        modules = super().flop_modules(model)
        for i, head in enumerate(model.exits, start=1):
            modules[f"exit_{i}"] = FlopsSequenceHead(ClsPart(head))
        modules["lte"] = FlopsHead(model.lte)
        return modules

    # ------------------------------------------------------------------ training
    @staticmethod
    def lte_target(task, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """What the LTE learns to predict for one head: its error (detached)."""
        if task.is_regression:
            return torch.tanh((outputs.reshape(-1).float() - labels.float()).abs()).detach()
        return 1.0 - (outputs.argmax(dim=-1) == labels).float()

    def stages(self, model, params):
        def loss(model, batch):
            task, labels = model.task, batch["labels"]
            n = task.num_labels
            self.link_lte(model)
            outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"],
                                             batch.get("token_type_ids"))
            odd = bool(model.lte_step % 2)
            model.lte_step += 1
            heads = outputs[:-1]
            if not heads:  # a 1-layer model has only the final exit
                return task_loss(task, outputs[-1], labels)
            if odd:
                main = sum(task_loss(task, out[:, :n], labels) for out in heads)
            else:
                main = task_loss(task, outputs[-1], labels)
            predicted = torch.sigmoid(torch.cat([out[:, n].float() for out in heads]))
            target = torch.cat([self.lte_target(task, out[:, :n], labels) for out in heads])
            return main + nn.functional.mse_loss(predicted, target)

        return [Stage("alternate-lte", lambda m: [*backbone_parameters(m), *m.exits.parameters(), *m.lte.parameters()],
                      loss, params.epochs, params.lr, params.warmup, params.weight_decay)]
