"""FastBERT (autoliuweijie/FastBERT): self-distilled self-attentive students, uncertainty exit.

- Heads ("students"; the last one is the teacher), as the official `Classifier`: Linear(H->128) +
  tanh on every token -> 2-head self-attention over the sequence (width 128: Q, K, V and output
  projections, scaled dot-product attention with padding masked) -> the [CLS] position ->
  Linear(128->128) + tanh -> Linear(128->labels). A head reads the whole sequence, so its trace
  call has shape (T, H).
- Training: (1) backbone + teacher on CE, the run's lr/epochs; (2) self-distillation: backbone and
  teacher frozen, students trained with lr x10 for `distill_epochs` epochs (setting, default 5 =
  the paper's 3 + 5) on sum_i KL between student i and the teacher. No labels are read. The
  learning-rate schedule is computed from the distillation epochs (the trainer derives it from the
  stage's own `epochs`), not from the fine-tuning ones as in the official script.
- Exit after layer i when the normalised entropy H(p_i) / log(#labels) < speed (in [0, 1]; speed 0
  never exits early). Classification only (the ELUE table has no FastBERT regression entry).

KL direction: the official code computes `nn.KLDivLoss(reduction="batchmean")(log p_student,
p_teacher)`, i.e. sum_c p_t log(p_t / p_s) per instance averaged over the batch (the teacher as
the target distribution; the paper writes it D_KL(p_s, p_t)). We compute exactly that.

Model selection: the first inference setting, speed 0, is the teacher alone: what stage 1 trains.
Stage 2 cannot change it (teacher and backbone frozen) and is not selected on dev: it keeps its
last epoch (it needs no labels at all, dev included).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hashee.core.errors import HasheeError
from hashee.core.methods import Stage, register, task_loss
from hashee.core.multiexit import MultiExitMethod, backbone_parameters, entropy, final_exit_outputs
from hashee.core.trace import ModuleCall

# Speeds from "never early" to the fastest; 0 first (teacher alone: model selection, full-model
# point); the paper's default 0.5 is in the sweep.
FASTBERT_SPEEDS = ("0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9")


class FastBertHead(nn.Module):
    """FastBERT's self-attentive classifier over the whole sequence: (B, T, H) -> (B, labels)."""

    width = 128
    heads = 2

    def __init__(self, config, num_labels: int):
        super().__init__()
        self.output_layer_0 = nn.Linear(config.hidden_size, self.width)
        self.query = nn.Linear(self.width, self.width)
        self.key = nn.Linear(self.width, self.width)
        self.value = nn.Linear(self.width, self.width)
        self.final_linear = nn.Linear(self.width, self.width)
        self.dropout_p = config.attention_dropout
        self.output_layer_1 = nn.Linear(self.width, self.width)
        self.output_layer_2 = nn.Linear(self.width, num_labels)

    def _split(self, x):  # (B, T, W) -> (B, heads, T, W / heads)
        return x.view(x.shape[0], x.shape[1], self.heads, self.width // self.heads).transpose(1, 2)

    def forward(self, hidden, key_mask=None):
        x = torch.tanh(self.output_layer_0(hidden))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        ctx = F.scaled_dot_product_attention(self._split(self.query(x)), self._split(self.key(x)),
                                             self._split(self.value(x)), attn_mask=mask,
                                             dropout_p=self.dropout_p if self.training else 0.0)
        ctx = self.final_linear(ctx.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.width))
        return self.output_layer_2(torch.tanh(self.output_layer_1(ctx[:, 0])))


def normalized_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(softmax(logits)) / log(#labels), in [0, 1]."""
    return entropy(logits) / math.log(logits.shape[-1])


@register
class FastBERT(MultiExitMethod):
    official_batch_one = True  # its official code runs batch 1 only; here it runs batched
    name = "fastbert"
    description = "FastBERT: self-distilled self-attentive students, uncertainty exit"
    supports_regression = False
    setting_defaults = {"layers": "", "distill_epochs": "5"}
    sweep_keys = ("speed",)
    plot_style = ("tab:brown", "D")
    table_order = 2
    # The paper quotes this row from the ELUE leaderboard, measured on BERT-base (docs/paper-run.md); a run on
    # ElasticBERT is an extra row of ours, without a paper row.
    paper_rows = (("bert", "", "FastBERT"),)
    sweep_values = FASTBERT_SPEEDS

    def __init__(self, settings):
        super().__init__(settings)
        value = self.settings["distill_epochs"]
        try:
            epochs = float(value)
        except ValueError:
            epochs = float("nan")
        if not 0 < epochs < float("inf"):  # fails here, before any training
            raise HasheeError(f"method {self.name}: setting distill_epochs={value!r} is not a positive number")
        self.distill_epochs = epochs

    def check_task(self, task) -> None:
        if task.is_regression:
            raise HasheeError(f"method {self.name} does not run on {task.name}: its exit rule is the normalised "
                              "entropy of class probabilities, which a regression output does not have (the ELUE "
                              f"table has no FastBERT regression entry); leave {task.name} out of {self.name}'s tasks")

    def make_exit(self, config, num_labels, layer):
        return FastBertHead(config, num_labels)

    def head_calls(self, layer, num_layers, length, hidden):
        return [ModuleCall(f"exit_{layer}", (length, hidden))]

    def exit_decision(self, task, outputs, layer, state, inference):
        return normalized_entropy(outputs) < self.sweep_value(inference)

    def distillation_loss(self, model, batch) -> torch.Tensor:
        """sum over students of KL(teacher || student), batch-mean; reads no labels."""
        outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        teacher = F.softmax(outputs[-1].detach().float(), dim=-1)
        return sum(F.kl_div(F.log_softmax(student.float(), dim=-1), teacher, reduction="batchmean")
                   for student in outputs[:-1])

    def stages(self, model, params):
        def teacher_loss(model, batch):
            return task_loss(model.task, final_exit_outputs(model, batch), batch["labels"])

        stages = [Stage("finetune", lambda m: [*backbone_parameters(m), *m.exits[-1].parameters()], teacher_loss,
                        params.epochs, params.lr, params.warmup, params.weight_decay)]
        if model.num_layers > 1:
            stages.append(Stage("distill", lambda m: [p for head in m.exits[:-1] for p in head.parameters()],
                                self.distillation_loss, self.distill_epochs, params.lr * 10, params.warmup,
                                params.weight_decay, select_on_dev=False))
        return stages
