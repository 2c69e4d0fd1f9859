"""BERT-of-Theseus (Xu et al., 2020; JetRunner/BERT-of-Theseus): progressive module replacing.

The predecessor (the backbone's `layers` = N layers, fine-tuned) is cut into M = `student_layers`
modules of N/M consecutive layers; successor layer i (M in all) replaces predecessor module i.

Stages (one `hashee train` run, the shared trainer):
1. `finetune`: the predecessor fine-tuned on the task, as the static full model is (baselines/compression.py).
2. `replace`: successor layer i starts as a copy of the fine-tuned predecessor's layer i (the reference's
   `deepcopy(layer[ix]) for ix in range(scc_n_layer)`). In every training forward each module is
   replaced by its successor independently with probability p = min(1, k * t + b) (the linear
   replacement scheduler; t: optimizer steps of this stage so far, b: `replacing_rate`, k: `k`). Only
   the successor layers train; the embeddings and the head are the predecessor's, shared and frozen,
   as in the reference. Dev (model selection) runs the successor alone, as the reference's eval mode.
3. `successor`: the successor alone (p = 1) fine-tuned, same parameters, selected on dev.
Stages 2 and 3 run the run's epochs each. The reference runs 2 and 3 as one optimizer schedule (p
reaches 1 within it); ours restarts the learning-rate schedule when the successor stage begins.
"""

from __future__ import annotations

import torch

from baselines.compression import CompressionMethod, TeacherStudent, serve_student, teacher_stage
from hashee.core.errors import HasheeError
from hashee.core.methods import Stage, register, task_loss
from hashee.core.modeling import pooled_input


def replacing_rate(step: int, base: float, k: float) -> float:
    """The linear scheduler's p after `step` optimizer steps: min(1, k * step + base)."""
    return min(1.0, k * step + base)


def layers_run(replaced: list[bool], ratio: int) -> list[tuple[str, int]]:
    """Which layers one forward runs, in order: ("successor", i) for a replaced module i, else its
    predecessor layers ("predecessor", j) for j in i*ratio .. (i+1)*ratio - 1."""
    plan = []
    for i, replace in enumerate(replaced):
        if replace:
            plan.append(("successor", i))
        else:
            plan.extend(("predecessor", j) for j in range(i * ratio, (i + 1) * ratio))
    return plan


class TheseusModel(TeacherStudent):
    """A TeacherStudent whose student shares the predecessor's embeddings, pooler and classifier (the
    reference's successor is only its layers), with the replacement step count saved beside it."""

    def __init__(self, config, num_labels: int, student_layers: int):
        super().__init__(config, num_labels, student_layers)
        self.student.bert.embeddings = self.bert.embeddings
        self.student.bert.pooler = self.bert.pooler
        self.student.classifier = self.classifier
        self.register_buffer("replace_step", torch.tensor(0, dtype=torch.long))

    def mixed_forward(self, batch: dict, replaced: list[bool]) -> torch.Tensor:
        """Logits of one forward in which module i runs its successor layer where `replaced[i]`."""
        key_mask = batch["attention_mask"].bool()
        hidden = self.bert.embeddings(batch["input_ids"], batch["token_type_ids"])
        ratio = self.bert.num_layers // self.student.bert.num_layers
        layers = {"predecessor": self.bert.encoder.layer, "successor": self.student.bert.encoder.layer}
        for which, index in layers_run(replaced, ratio):
            hidden = layers[which][index](hidden, key_mask)
        pooled = pooled_input(hidden, key_mask, self.bert.config.pooling)
        return self.classifier(self.dropout(self.bert.pooler(pooled)))


@register
class Theseus(CompressionMethod):
    name = "theseus"
    description = "BERT-of-Theseus: progressive module replacing (N -> M layers), then the successor fine-tuned alone"
    supports_regression = True  # the plain classifier/regressor head
    # b = 0.3 and k = 0.0006 are the reference's GLUE settings (README: --replacing_rate 0.3
    # --scheduler_linear_k 0.0006); a short run needs a larger k for p to reach 1 within the stage.
    setting_defaults = {"layers": "", "student_layers": "", "replacing_rate": "0.3", "k": "0.0006"}
    plot_style = ("darkgoldenrod", "p")
    table_order = 0.6
    paper_rows = ((None, "", "BERT-of-Theseus"),)

    def float_setting(self, key: str) -> float:
        try:
            return float(self.settings[key])
        except ValueError:
            raise HasheeError(f"method {self.name}: setting {key}={self.settings[key]!r} is not a number") from None

    def build(self, config, task):
        self.check_task(task)
        student = self.student_layers(config)
        if config.num_layers % student:
            raise HasheeError(f"method {self.name}: the predecessor's {config.num_layers} layers are not a multiple "
                              f"of student_layers={student} (each successor layer replaces a whole module)")
        base, k = self.float_setting("replacing_rate"), self.float_setting("k")
        if not 0 < base <= 1 or k < 0:
            raise HasheeError(f"method {self.name}: need 0 < replacing_rate <= 1 and k >= 0 (got {base}, {k})")
        model = TheseusModel(config, task.num_labels, student)
        model.task = task
        return model

    def stages(self, model: TheseusModel, params):
        base, k = self.float_setting("replacing_rate"), self.float_setting("k")

        def begin_replacing(model, batches):
            for i, layer in enumerate(model.student.bert.encoder.layer):
                layer.load_state_dict(model.bert.encoder.layer[i].state_dict())
            model.replace_step.zero_()
            serve_student(model, batches)

        def replacing_loss(model, batch):
            p = replacing_rate(int(model.replace_step), base, k)
            # One Bernoulli(p) draw per module per step (the global RNG: the trainer seeds and resumes it).
            replaced = (torch.rand(model.student.bert.num_layers) < p).tolist()
            model.replace_step += 1
            loss = task_loss(model.task, model.mixed_forward(batch, replaced), batch["labels"])
            if not any(replaced):  # no successor ran: a zero-gradient step (the reference's optimizer skips it)
                loss = loss + 0.0 * sum(p.sum() for p in model.student.bert.encoder.layer.parameters())
            return loss

        def successor_loss(model, batch):
            logits, _ = model.student(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            return task_loss(model.task, logits, batch["labels"])

        def successor_layers(m):
            return m.student.bert.encoder.layer.parameters()

        return [
            teacher_stage(params),
            Stage("replace", successor_layers, replacing_loss, params.epochs, params.lr, params.warmup,
                  params.weight_decay, begin=begin_replacing),
            Stage("successor", successor_layers, successor_loss, params.epochs, params.lr, params.warmup,
                  params.weight_decay),
        ]
