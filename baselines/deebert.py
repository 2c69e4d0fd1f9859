"""DeeBERT (castorini/DeeBERT): entropy-based instance exit over DeeBERT "highway" heads.

- Heads: one per layer, each its own pooler (Linear H->H + tanh on [CLS], initialised from the
  backbone's final pooler) -> dropout -> Linear(H, labels) (`multiexit.ClsHead`). The last exit is
  the model's normal pooler + classifier: a ClsHead whose pooler starts from the same final pooler.
- Training, two stages with the run's lr and epochs: (1) backbone + final exit on CE; (2) backbone
  and final exit frozen, the other exits trained on the unweighted sum of their CE losses.
- Exit after layer i when entropy(softmax(logits_i)) < threshold (threshold 0 never exits early:
  entropy is never negative, and the rule is strict). Classification only: the ELUE table has no
  DeeBERT regression entry, so STS-B is refused by `check_task` with a clear message.

What we fix relative to the official code: exits are per instance in a batch (multiexit), not
batch-size-1 only, and FLOPs include the exit heads.

Model selection: the trainer scores dev under the first inference setting, threshold 0 (= the
final exit alone), which is exactly what stage 1 trains. Stage 2 cannot change that score (the
backbone and final exit are frozen), so it is not selected on dev (`select_on_dev=False`): it
keeps its last epoch, as the official code does.
"""

from __future__ import annotations

from hashee.core.errors import HasheeError
from hashee.core.methods import Stage, register, task_loss
from hashee.core.multiexit import (
    MultiExitMethod,
    backbone_parameters,
    entropy,
    final_exit_outputs,
    init_exit_poolers,
)

# The thresholds of the DeeBERT paper (docs/baselines.md); "0" first: it never exits early, so it is
# the final exit alone, the trainer's model-selection score and the curve's full-model point.
DEEBERT_THRESHOLDS = ("0", "0.001", "0.005", "0.01", "0.05", "0.1", "0.15", "0.2", "0.3", "0.4", "0.5",
                      "0.6", "0.7")


@register
class DeeBERT(MultiExitMethod):
    official_batch_one = True  # its official code runs batch 1 only; here it runs batched
    name = "deebert"
    description = "DeeBERT: entropy-based instance exit over per-layer highway heads"
    supports_regression = False
    sweep_keys = ("threshold",)
    plot_style = ("tab:green", "s")
    table_order = 1
    # The paper quotes this row from the ELUE leaderboard, measured on BERT-base (docs/paper-run.md); a run on
    # ElasticBERT is an extra row of ours, without a paper row.
    paper_rows = (("bert", "", "DeeBERT"),)
    sweep_values = DEEBERT_THRESHOLDS

    def check_task(self, task) -> None:
        if task.is_regression:
            raise HasheeError(f"method {self.name} does not run on {task.name}: its exit rule is the entropy of "
                              "class probabilities, which a regression output does not have (the ELUE table has "
                              f"no DeeBERT regression entry); leave {task.name} out of {self.name}'s tasks")

    def init_from_backbone(self, model, backbone) -> None:
        super().init_from_backbone(model, backbone)
        init_exit_poolers(model)

    def exit_decision(self, task, outputs, layer, state, inference):
        return entropy(outputs) < self.sweep_value(inference)

    def stages(self, model, params):
        def final_loss(model, batch):
            return task_loss(model.task, final_exit_outputs(model, batch), batch["labels"])

        def heads_loss(model, batch):
            return sum(self.exit_losses(model, batch)[:-1])

        stages = [Stage("finetune", lambda m: [*backbone_parameters(m), *m.exits[-1].parameters()], final_loss,
                        params.epochs, params.lr, params.warmup, params.weight_decay)]
        if model.num_layers > 1:
            stages.append(Stage("exits", lambda m: [p for head in m.exits[:-1] for p in head.parameters()],
                                heads_loss, params.epochs, params.lr, params.warmup, params.weight_decay,
                                select_on_dev=False))
        return stages
