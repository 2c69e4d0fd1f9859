"""TinyBERT (Jiao et al., 2020; huawei-noah/Pretrained-Language-Model, TinyBERT/task_distill.py):
task-specific distillation of a fine-tuned teacher into a smaller student.

Stages (one `hashee train` run, the shared trainer):
1. `finetune`: the teacher (the backbone's `layers` layers) fine-tuned on the task, as the static full
   model is (baselines/compression.py).
2. `intermediate`: the student learns the teacher's hidden states (the embedding output and every
   layer's) and attention scores, under the uniform layer mapping g(m) = m * N / M (student layer m of M
   <- teacher layer g(m) of N; hidden state 0, the embeddings, <- the teacher's embeddings). Loss: the
   sum over mapped pairs of the MSE of attention scores (pre-softmax, masked keys set to 0, as the
   reference does) and of hidden states, the student's through a learned projection `fit_dense`
   (the reference projects every student state, whatever the widths; ours starts at the identity when
   the widths are equal). Not selected on dev: the student's classifier is not trained yet.
3. `prediction`: the student learns the teacher's outputs: soft cross-entropy at `temperature`
   (classification) or MSE (regression), no hard-label loss, as the reference. Selected on dev.
Each stage runs the run's epochs and lr. Data augmentation (the reference's GloVe/BERT word
replacement) is off.

Student: `student_layers` layers. With `student=` empty it is the backbone's first `student_layers`
layers with its embeddings (the demo: MiniLM's first 3 of 6, the same start as the static 3-layer
model, so distillation is what differs); `student=<backbone>` loads that checkpoint instead (the paper's
row: `student=general-6l-768`, General TinyBERT 6L-768, huawei-noah/TinyBERT_General_6L_768_v2, under a
BERT-base teacher; a backbone name without "/" or a key of STUDENTS). Its
widths must equal the teacher's (the saved config is the teacher's; the student's is derived from it).
Departures from the reference: losses are means over real tokens only (our encoder never updates
padding), and the student's projection is not loaded from the general-distillation checkpoint.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.compression import CompressionMethod, TeacherStudent, serve_student, teacher_stage
from hashee.core.errors import HasheeError
from hashee.core.methods import Stage, register
from hashee.core.modeling import SequenceClassifier, TokenExitEncoder

# `student=` names (a setting may not hold "/"): the General TinyBERT checkpoints whose widths fit a BERT-base teacher.
STUDENTS = {"general-6l-768": "huawei-noah/TinyBERT_General_6L_768_v2"}


def layer_mapping(student_layers: int, teacher_layers: int) -> list[int]:
    """g(m) = m * N / M for m = 0..M: the teacher hidden state each student hidden state learns
    (0: the embedding output); attention of student layer m (1-based) learns teacher layer g(m)."""
    if teacher_layers % student_layers:
        raise HasheeError(f"tinybert: the teacher's {teacher_layers} layers are not a multiple of the student's "
                          f"{student_layers} (the uniform mapping g(m) = m*N/M needs one)")
    return [m * teacher_layers // student_layers for m in range(student_layers + 1)]


def encoder_internals(encoder: TokenExitEncoder, batch: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(hidden states: embeddings + each layer's, (B, T, H); attention scores per layer, (B, heads, T, T),
    before softmax, 0 at padded keys) of a full pass (every real token through every layer)."""
    key_mask = batch["attention_mask"].bool()
    hidden = encoder.embeddings(batch["input_ids"], batch["token_type_ids"])
    states, scores = [hidden], []
    for layer in encoder.encoder.layer:
        attention = layer.attention.self
        q = attention.split_heads(attention.query(hidden))
        k = attention.split_heads(attention.key(hidden))
        score = q @ k.transpose(-1, -2) / math.sqrt(attention.head_dim)
        scores.append(score.masked_fill(~key_mask[:, None, None, :], 0.0))
        hidden = layer(hidden, key_mask)
        states.append(hidden)
    return states, scores


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the positions where `mask` (broadcast to the tensors) is true."""
    mask = mask.to(student.dtype).expand_as(student)
    return ((student - teacher) ** 2 * mask).sum() / mask.sum().clamp(min=1)


def intermediate_loss(student_states, student_scores, teacher_states, teacher_scores, mapping, attention_mask,
                      projection: nn.Module | None = None) -> torch.Tensor:
    """Sum over mapped layers of MSE(attention scores) + MSE(projected hidden states), real tokens only."""
    real = attention_mask.bool()
    token_mask = real[:, :, None]
    pair_mask = (real[:, None, :, None] & real[:, None, None, :])
    loss = 0.0
    for m, t in enumerate(mapping):
        state = projection(student_states[m]) if projection is not None else student_states[m]
        loss = loss + masked_mse(state, teacher_states[t], token_mask)
        if m > 0:
            loss = loss + masked_mse(student_scores[m - 1], teacher_scores[t - 1], pair_mask)
    return loss


def prediction_loss(student_logits, teacher_logits, temperature: float, is_regression: bool) -> torch.Tensor:
    """Soft cross-entropy at `temperature` (the reference's, without a T^2 factor), MSE for regression."""
    if is_regression:
        return F.mse_loss(student_logits.view(-1), teacher_logits.view(-1))
    targets = F.softmax(teacher_logits / temperature, dim=-1)
    return (-targets * F.log_softmax(student_logits / temperature, dim=-1)).sum(dim=-1).mean()


@register
class TinyBERT(CompressionMethod):
    name = "tinybert"
    description = "TinyBERT: task-specific distillation (hidden states, attention, then predictions) into a smaller student"
    supports_regression = True  # MSE on the teacher's outputs
    setting_defaults = {"layers": "", "student_layers": "", "temperature": "1", "student": ""}
    plot_style = ("tab:pink", "h")
    table_order = 0.2  # the paper's static rows: after the PLMs, before HeadPrune
    paper_rows = ((None, "", "TinyBERT"),)

    def temperature(self) -> float:
        try:
            value = float(self.settings["temperature"])
        except ValueError:
            raise HasheeError(f"method {self.name}: temperature={self.settings['temperature']!r} is not a number") from None
        if value <= 0:
            raise HasheeError(f"method {self.name}: temperature must be > 0 (got {value})")
        return value

    def build(self, config, task):
        model = super().build(config, task)
        layer_mapping(model.student.bert.num_layers, model.bert.num_layers)  # checked before any training
        width_s, width_t = model.student.bert.config.hidden_size, config.hidden_size
        model.fit_dense = nn.Linear(width_s, width_t)
        if width_s == width_t:
            with torch.no_grad():
                model.fit_dense.weight.copy_(torch.eye(width_t))
                model.fit_dense.bias.zero_()
        return model

    def init_from_backbone(self, model: TeacherStudent, backbone) -> None:
        from hashee.core.backbones import load_backbone, load_exact, truncate

        load_exact(model.bert, backbone.state_dict, backbone.name)
        layers = model.student.bert.num_layers
        if not self.settings["student"]:
            load_exact(model.student.bert, truncate(backbone.state_dict, layers), backbone.name)
            return
        name = STUDENTS.get(self.settings["student"], self.settings["student"])
        student = load_backbone(name, layers, with_tokenizer=False)
        mine = model.student.bert.config
        for key in ("hidden_size", "num_heads", "intermediate_size", "vocab_size"):
            if getattr(student.config, key) != getattr(mine, key):
                raise HasheeError(f"method {self.name}: student {self.settings['student']} has {key}="
                                  f"{getattr(student.config, key)}, the teacher {getattr(mine, key)}; "
                                  "a student of other widths is not supported")
        load_exact(model.student.bert, student.state_dict, student.name)

    def stages(self, model: TeacherStudent, params):
        mapping = layer_mapping(model.student.bert.num_layers, model.bert.num_layers)
        temperature = self.temperature()

        def teacher_outputs(model, batch):
            with torch.no_grad():
                return SequenceClassifier.forward(model, batch["input_ids"], batch["attention_mask"],
                                                  batch["token_type_ids"])[0]

        def intermediate(model, batch):
            with torch.no_grad():
                t_states, t_scores = encoder_internals(model.bert, batch)
            s_states, s_scores = encoder_internals(model.student.bert, batch)
            return intermediate_loss(s_states, s_scores, t_states, t_scores, mapping, batch["attention_mask"],
                                     model.fit_dense)

        def prediction(model, batch):
            student = model.student(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])[0]
            return prediction_loss(student, teacher_outputs(model, batch), temperature, model.task.is_regression)

        return [
            teacher_stage(params),
            Stage("intermediate", lambda m: [*m.student.bert.parameters(), *m.fit_dense.parameters()], intermediate,
                  params.epochs, params.lr, params.warmup, params.weight_decay, select_on_dev=False,
                  begin=serve_student),
            Stage("prediction", lambda m: m.student.parameters(), prediction, params.epochs, params.lr, params.warmup,
                  params.weight_decay),
        ]
