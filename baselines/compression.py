"""What the static compression baselines share (TinyBERT, BERT-of-Theseus; HeadPrune uses `teacher_stage`):
a model that holds the fine-tuned full model (the teacher / predecessor) and the smaller model that is
kept (the student / successor), and the first training stage, which fine-tunes the full model exactly as
the static full model is fine-tuned (same epochs, lr, dev selection), so that each method is
self-contained: one `hashee train` run fine-tunes its teacher and then compresses it.

The saved model holds both (its config is the teacher's, from which the student's is derived), so that
evaluation and timing rebuild it from meta.json alone; prediction, FLOPs and timing use the student only.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from hashee.core.errors import HasheeError
from hashee.core.methods import Method, Prediction, Stage, task_loss
from hashee.core.modeling import (
    EncoderConfig,
    FlopsHead,
    SequenceClassifier,
    encoder_flop_modules,
    encoder_traces,
)


class TeacherStudent(SequenceClassifier):
    """The full model (this module's own `bert` and `classifier`: the teacher) plus `student`, a
    SequenceClassifier of `student_layers` layers. `serve_teacher` (a saved flag) says which of the two
    `predict` runs: the teacher while it is fine-tuned and selected on dev, the student afterwards."""

    def __init__(self, config: EncoderConfig, num_labels: int, student_layers: int):
        super().__init__(config, num_labels)
        self.student = SequenceClassifier(dataclasses.replace(config, num_layers=student_layers), num_labels)
        self.register_buffer("serve_teacher", torch.tensor(False))

    def served(self) -> SequenceClassifier:
        """The model `predict` runs: the teacher itself, or the student."""
        if bool(self.serve_teacher):
            return _TeacherView(self)
        return self.student

    def teacher_forward(self, input_ids, attention_mask, token_type_ids=None):
        """The teacher's logits."""
        return SequenceClassifier.forward(self, input_ids, attention_mask, token_type_ids)[0]

    def teacher_parameters(self):
        """The teacher's parameters: every parameter not under `student.` (a module the student shares
        with the teacher, Theseus' embeddings and head, counts as the teacher's)."""
        return [p for name, p in self.named_parameters() if not name.startswith("student.")]


class _TeacherView:
    """The teacher half of a TeacherStudent, called like a SequenceClassifier."""

    def __init__(self, model: TeacherStudent):
        self.model = model
        self.bert = model.bert
        self.classifier = model.classifier

    def __call__(self, input_ids, attention_mask, token_type_ids=None):
        return SequenceClassifier.forward(self.model, input_ids, attention_mask, token_type_ids)


def teacher_stage(params, parameters=None) -> Stage:
    """Stage 1: fine-tune the full model on the task loss, with the run's epochs and lr, selected on dev:
    the same fine-tuning the static full model gets. `parameters`: which parameters (default: all but a
    TeacherStudent's student)."""

    def begin(model, batches):
        if isinstance(model, TeacherStudent):
            model.serve_teacher.fill_(True)

    def loss(model, batch):
        logits, _ = SequenceClassifier.forward(model, batch["input_ids"], batch["attention_mask"],
                                               batch["token_type_ids"])
        return task_loss(model.task, logits, batch["labels"])

    chosen = parameters or (lambda m: m.teacher_parameters() if isinstance(m, TeacherStudent) else m.parameters())
    return Stage("finetune", chosen, loss, params.epochs, params.lr, params.warmup, params.weight_decay, begin=begin)


def serve_student(model, batches) -> None:
    """A stage's `begin` from which on `predict` (and dev selection) runs the student."""
    model.serve_teacher.fill_(False)


class CompressionMethod(Method):
    """A teacher of `layers` layers (the backbone truncated to them, empty: all) compressed into a student
    of `student_layers` layers (empty: half the teacher's); predictions, traces and FLOPs are the student's."""

    setting_defaults = {"layers": "", "student_layers": ""}

    def student_layers(self, config: EncoderConfig) -> int:
        value = self.int_setting("student_layers")
        if value is None:  # the papers' setups: half the teacher's layers (12 -> 6; the demo's 6 -> 3)
            value = max(1, config.num_layers // 2)
        if not 1 <= value <= config.num_layers:
            raise HasheeError(f"method {self.name}: student_layers={value} must be between 1 and the teacher's "
                              f"{config.num_layers} layers")
        return value

    def build(self, config: EncoderConfig, task) -> nn.Module:
        self.check_task(task)
        model = TeacherStudent(config, task.num_labels, self.student_layers(config))
        model.task = task
        return model

    def predict(self, model, batch, inference) -> Prediction:
        served = model.served()
        logits, out = served(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        return Prediction(logits, encoder_traces(batch["attention_mask"], out.active_counts,
                                                 served.bert.config.hidden_size))

    def predict_outputs(self, model, batch, inference):
        return model.served()(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])[0]

    def flop_modules(self, model) -> dict[str, nn.Module]:
        served = model.served()
        modules = encoder_flop_modules(served.bert)
        modules["pooler"] = FlopsHead(served.bert.pooler)
        modules["classifier"] = FlopsHead(served.classifier)
        return modules
