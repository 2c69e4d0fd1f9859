"""ElasticBERT's dynamic exits (Liu et al. 2022, fastnlp/ElasticBERT `finetune-dynamic/`).

Model: the multi-exit backbone with one pooler per exit — exit i = its own pooler (Linear H->H +
tanh on [CLS]) -> dropout -> Linear(H, labels) (`multiexit.ClsHead`). Exit poolers start from the
checkpoint's per-exit poolers (`Backbone.exit_poolers`, ElasticBERT's `encoder.pooler.{i-1}`);
a backbone without them (BERT, MiniLM, ...) starts every exit pooler from its final pooler, and
one with no pooler at all leaves them freshly initialised. Traces name `layer_i` and `exit_i`
(pooler + classifier, counted together).

Training (one stage, the official `self.training` branch): the unweighted sum of the exit losses
(CE, MSE for regression) with gradient equilibrium. After layer i (0-based, L layers) the hidden
state passes `gradient_rescale(h, 1/(L-i))` before exit i reads it, and
`gradient_rescale(h, L-i-1)` before layer i+1 does; both are identities forward. Net effect, which
tests/test_elasticbert.py checks: the gradient any exit j >= i sends into layer i's output is
scaled by 1/(L-i) — the number of exits that depend on layer i — while head parameters get their
plain gradients.

Exits:
- `elasticbert-entropy`: exit after layer i when entropy(softmax(logits_i)) < threshold (strict,
  as the official `highway_entropy < early_exit_entropy`). Swept: 0 (never exits early, since an
  entropy is never < 0: the full model; first, hence the dev model-selection point), 0.1, 0.2
  and the official 0.3, 0.4, 0.5. Classification only: with one regression output the softmax
  entropy is identically 0, so the official rule exits every STS-B instance at layer 1.
- `elasticbert-patience`: PABEE's counter (baselines/pabee.py `PatienceRule`, identical to
  ElasticBERT's modeling_elasticbert_patience.py, regression |Δ| < 0.94 as its ELUE script).
  Swept: 0 (all layers, first), then the official 2..7 clipped to 1 <= p <= L-2 (L: the `layers`
  setting).

`paper_defaults` holds the official ELUE script's hyper-parameters (finetune_elue_*.sh).
"""

from __future__ import annotations

import torch

from baselines.pabee import DEFAULT_REGRESSION_THRESHOLD, PatienceRule
from hashee.core.methods import Stage, register, task_loss
from hashee.core.multiexit import MultiExitMethod, entropy


class GradientRescale(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by `scale`."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def gradient_rescale(x: torch.Tensor, scale: float) -> torch.Tensor:
    return GradientRescale.apply(x, float(scale))


def equilibrium_outputs(model, input_ids, attention_mask, token_type_ids=None) -> list[torch.Tensor]:
    """Every exit's output for the whole batch, with gradient equilibrium on the backward pass."""
    key_mask = attention_mask.bool()
    hidden = model.bert.embeddings(input_ids, token_type_ids)
    num_layers = model.num_layers
    outputs = []
    for i, (layer, head) in enumerate(zip(model.bert.encoder.layer, model.exits)):  # i is 0-based
        hidden = layer(hidden, key_mask)
        hidden = gradient_rescale(hidden, 1.0 / (num_layers - i))
        outputs.append(head(hidden, key_mask))
        if i < num_layers - 1:  # the official code also rescales after the last layer, by 0: no-op
            hidden = gradient_rescale(hidden, num_layers - i - 1)
    return outputs


class ElasticBertMethod(MultiExitMethod):
    """Shared model, initialisation and training of the two ElasticBERT exits."""
    official_batch_one = True  # its official code runs batch 1 only; here it runs batched

    setting_defaults = {"layers": ""}
    # fastnlp/ElasticBERT finetune-dynamic/finetune_elue_{entropy,patience}.sh
    paper_defaults = {"lr": 2e-5, "batch_size": 32, "epochs": 5, "warmup": 0.06, "weight_decay": 0.1}

    def init_from_backbone(self, model, backbone) -> None:
        super().init_from_backbone(model, backbone)
        final = {name.removeprefix("pooler."): tensor for name, tensor in backbone.state_dict.items()
                 if name.startswith("pooler.dense.")}
        with torch.no_grad():
            for i, head in enumerate(model.exits, start=1):
                source = backbone.exit_poolers.get(i) or final
                if source:
                    head.pooler.weight.copy_(source["dense.weight"])
                    head.pooler.bias.copy_(source["dense.bias"])

    def stages(self, model, params):
        def loss(model, batch):
            outputs = equilibrium_outputs(model, batch["input_ids"], batch["attention_mask"],
                                          batch.get("token_type_ids"))
            return sum(task_loss(model.task, out, batch["labels"]) for out in outputs)

        return [Stage("finetune", lambda m: m.parameters(), loss, params.epochs, params.lr, params.warmup,
                      params.weight_decay)]


@register
class ElasticBertEntropy(ElasticBertMethod):
    name = "elasticbert-entropy"
    description = "ElasticBERT's dynamic exit: entropy of each exit's prediction"
    supports_regression = False
    sweep_keys = ("entropy",)
    plot_style = ("tab:olive", "<")
    table_order = 6
    sweep_values = ("0", "0.1", "0.2", "0.3", "0.4", "0.5")

    def exit_decision(self, task, outputs, layer, state, inference):
        return entropy(outputs) < float(inference[self.sweep_key])


@register
class ElasticBertPatience(PatienceRule, ElasticBertMethod):
    name = "elasticbert-patience"
    description = "ElasticBERT's dynamic exit: PABEE's patience over its exits"
    supports_regression = True
    plot_style = ("tab:cyan", ">")
    table_order = 6
    setting_defaults = {"layers": "", "regression_threshold": DEFAULT_REGRESSION_THRESHOLD}
    sweep_values = ("0", "2", "3", "4", "5", "6", "7")
