"""PABEE, "BERT Loses Patience" (Zhou et al. 2020; JetRunner/PABEE): patience-based early exit.

Model: the encoder's own pooler (Linear H->H + tanh on [CLS]) is shared by every layer; layer j
has its own classifier Linear(H, labels) (dropout before it while training). A trace names, per
layer run, `layer_j`, `pooler` (H,) and `exit_j` (H,): the shared pooler runs once per layer.

Training: all exits jointly on Σ_j j·L_j / Σ_j j (j = 1-based layer index), one stage.

Exit rule (the official `patient_counter`, per instance instead of per batch of 1): after layer
j, the counter increments when layer j's prediction "equals" layer j-1's and resets to 0 otherwise
(layer 1 has no predecessor: counter 0); the instance exits at the first layer where
counter == patience and predicts with that layer's output. So the earliest exit is layer
patience + 1, and with L layers only patience <= L-2 can exit before the last layer. Patience 0
is the official "use all layers" mode (PABEE's and ElasticBERT's `patience == 0` branch): no early
exit, the last classifier predicts — our first inference setting, hence the dev model-selection
point, as in the official training loop, which evaluates with patience 0.
- classification: equal = same argmax;
- regression: equal = |output_j - output_{j-1}| < regression_threshold. The official PABEE
  script defaults the threshold to 0 (|Δ| < 0 never holds: no exit ever); ElasticBERT's ELUE scripts
  (fastnlp/ElasticBERT finetune_elue_patience.sh) use 0.94 on STS-B (scores 0..5), the only value
  published for the ELUE tasks, so the setting `regression_threshold` defaults to 0.94.

Sweep: patience 0 (all layers) then 3..8, clipped to the meaningful values 1 <= p <= L-2 (p >= L-1
never exits early: identical to patience 0, so it is not repeated), L being the `layers` setting
(every config sets it). With layers=6 the sweep is 0, 3, 4; with 12 layers 0, 3..8. It is a function
of the settings alone, the same before and after `build`; without `layers` the model's depth is the
backbone's, unknown until a model exists, and the sweep is not clipped (the extra points repeat
patience 0).
"""

from __future__ import annotations

import torch
from torch import nn

from hashee.core.errors import HasheeError
from hashee.core.methods import Stage, register
from hashee.core.modeling import FlopsHead, pooled_input
from hashee.core.multiexit import MultiExitMethod, MultiExitModel
from hashee.core.trace import ModuleCall

DEFAULT_REGRESSION_THRESHOLD = "0.94"  # ElasticBERT's ELUE value for STS-B (see module docstring)


class PatienceRule:
    """PABEE's patience counter as MultiExitMethod hooks (shared with ElasticBERT's patience exit).

    Needs `self.sweep_values`, and settings `regression_threshold` and `layers`.
    """

    sweep_keys = ("patience",)

    @property
    def regression_threshold(self) -> float:
        value = self.settings.get("regression_threshold", DEFAULT_REGRESSION_THRESHOLD)
        try:
            return float(value)
        except ValueError:
            raise HasheeError(f"method {self.name}: regression_threshold={value!r} is not a number") from None

    def inference_settings(self) -> list[dict[str, str]]:
        layers = self.num_layers  # the model's depth when the `layers` setting gives it (module docstring)
        values = [v for v in self.sweep_values
                  if layers is None or int(v) == 0 or 1 <= int(v) <= layers - 2]
        return [{self.sweep_key: v} for v in values]

    def init_exit_state(self, task, batch_size: int, device) -> dict:
        dtype = torch.float32 if task.is_regression else torch.long
        return {"counter": torch.zeros(batch_size, dtype=torch.long, device=device),
                "previous": torch.zeros(batch_size, dtype=dtype, device=device)}

    def exit_decision(self, task, outputs, layer, state, inference):
        patience = int(inference[self.sweep_key])
        if task.is_regression:
            current = outputs.detach().reshape(-1).float()
            same = (current - state["previous"]).abs() < self.regression_threshold
        else:
            current = outputs.detach().argmax(dim=-1)
            same = current == state["previous"]
        if layer == 1:
            same = torch.zeros_like(same)
        state["counter"] = torch.where(same, state["counter"] + 1, torch.zeros_like(state["counter"]))
        state["previous"] = current
        if patience <= 0:  # official patience 0: all layers
            return torch.zeros_like(same)
        return state["counter"] == patience


class PabeeExit(nn.Module):
    """Layer j's head: the shared pooler (not registered here: it is `bert.pooler`) -> dropout ->
    this layer's Linear(H, labels)."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float, pooling: str = "cls"):
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)
        self._pooler: tuple[nn.Module, ...] = ()  # a tuple keeps it out of this module's parameters

    def bind(self, pooler: nn.Module) -> None:
        self._pooler = (pooler,)

    def forward(self, hidden, key_mask=None):  # (B, T, H) -> (B, labels)
        return self.classifier(self.dropout(self._pooler[0](pooled_input(hidden, key_mask, self.pooling))))


@register
class Pabee(PatienceRule, MultiExitMethod):
    official_batch_one = True  # its official code runs batch 1 only; here it runs batched
    name = "pabee"
    plot_style = ("tab:orange", "^")
    table_order = 3
    # The paper quotes this row from the ELUE leaderboard, measured on BERT-base (docs/paper-run.md); a run on
    # ElasticBERT is an extra row of ours, without a paper row.
    paper_rows = (("bert", "", "PABEE"),)
    description = "PABEE: patience-based early exit (stop once enough consecutive exits agree)"
    supports_regression = True
    setting_defaults = {"layers": "", "regression_threshold": DEFAULT_REGRESSION_THRESHOLD}
    sweep_values = ("0", "3", "4", "5", "6", "7", "8")
    # JetRunner/PABEE finetune_bert.sh / docs/baselines.md: lr 2e-5, batch 32, 5 epochs, no warm-up
    # (run_glue_with_pabee.py: weight decay 0). Offered to the workflow; the trainer is not changed.
    paper_defaults = {"lr": 2e-5, "batch_size": 32, "epochs": 5, "warmup": 0.0, "weight_decay": 0.0}

    def build(self, config, task):
        self.check_task(task)
        exits = [PabeeExit(config.hidden_size, task.num_labels, config.hidden_dropout, config.pooling)
                 for _ in range(config.num_layers)]
        model = MultiExitModel(config, exits)
        model.task = task
        for head in model.exits:
            head.bind(model.bert.pooler)
        return model

    @staticmethod
    def loss_weights(num_layers: int) -> list[float]:
        total = num_layers * (num_layers + 1) / 2
        return [j / total for j in range(1, num_layers + 1)]

    def stages(self, model, params):
        def loss(model, batch):
            losses = self.exit_losses(model, batch)
            return sum(w * term for w, term in zip(self.loss_weights(len(losses)), losses))

        return [Stage("finetune", lambda m: m.parameters(), loss, params.epochs, params.lr, params.warmup,
                      params.weight_decay)]

    def head_calls(self, layer, num_layers, length, hidden):
        return [ModuleCall("pooler", (hidden,)), ModuleCall(f"exit_{layer}", (hidden,))]

    def flop_modules(self, model):
        from hashee.core.modeling import encoder_flop_modules

        modules = encoder_flop_modules(model.bert)
        modules["pooler"] = FlopsHead(model.bert.pooler)
        for i, head in enumerate(model.exits, start=1):
            modules[f"exit_{i}"] = FlopsHead(head.classifier)
        return modules
