"""CascadeBERT (Li et al. 2021, lancopku/CascadeBERT): a cascade of complete models.

Model (`CascadeModel`): `models.0` = the backbone truncated to its first `small_layers` layers
(default 2) with its own copy of the weights, `models.1` = the backbone at `layers` (default all);
each a `SequenceClassifier` with its own pooler and classifier. `model.bert` is the LARGE model's
encoder (a property, so its weights are stored once, under `models.1.`): checkpoint metadata
records its config, and `build` re-derives the small one from the `small_layers` setting. The
small model's pooler starts from the backbone's exit pooler `small_layers` when the backbone has
per-exit poolers (ElasticBERT), otherwise from its final pooler (BERT-2L has no other).

Training, one stage, both models jointly: Σ_m CE(model m) + 0.5 × MarginRankingLoss(margin 0.5)
on the small model's confidence (max softmax): every "easy" instance of the batch is paired with
a "hard" one drawn uniformly with replacement (official `pair_loss`), target: easy more confident.
Deviation: the official difficulty labels come from a file of multi-seed correctness of small
models trained beforehand (data_difficulty/*.dif_5seeds-2level.json), which needs 5 extra
training runs per task and seed; we label an instance easy when the small model, at this step,
predicts it correctly (detached) — the only difficulty signal available inside one run. The loss
is 0 for a batch that is all easy or all hard.

Exit: at model m < last when max softmax(logits_m) > confidence (strict, as the official
`confidence > self.threshold`); the last model always predicts. Unlike the official code (every
model runs on every input, routing afterwards), a model runs only on the instances the previous
one passed on (rows dropped from the batch, padding re-trimmed), and a trace holds every model an
instance ran, cumulatively: `m1.emb`, `m1.layer_1`.., `m1.pooler`, `m1.classifier`, `m2.emb`, ...

Sweep: confidence 0.9, 0.8, 0.7, 0.6 (official values), most conservative first: the trainer
selects the checkpoint on the dev metric of the first setting, so model selection scores the
cascade as deployed (both models and the small model's calibration), at its most accurate swept
operating point — not only the large model, which would ignore the small one and the ranking
loss entirely. Classification only (no regression exit rule; the official code has none either).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from hashee.core.errors import HasheeError
from hashee.core.methods import Method, Prediction, Stage, register, task_loss
from hashee.core.modeling import FlopsHead, SequenceClassifier, encoder_flop_modules
from hashee.core.trace import ModuleCall


class CascadeModel(nn.Module):
    """`models`: complete SequenceClassifiers, smallest first."""

    def __init__(self, configs, num_labels: int):
        super().__init__()
        self.models = nn.ModuleList([SequenceClassifier(config, num_labels) for config in configs])

    @property
    def bert(self):  # the largest model's encoder (checkpoint/evaluation read `model.bert.config`)
        return self.models[-1].bert


def difficulty_rank_loss(logits: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Official `pair_loss` with difficulty = the model's own (detached) correctness."""
    confidence = torch.softmax(logits.float(), dim=-1).max(dim=-1).values
    hard = logits.detach().argmax(dim=-1) != labels
    easy_conf, hard_conf = confidence[~hard], confidence[hard]
    if easy_conf.numel() == 0 or hard_conf.numel() == 0:
        return confidence.new_zeros(())
    partner = torch.randint(hard_conf.numel(), (easy_conf.numel(),), device=logits.device)
    return F.margin_ranking_loss(easy_conf, hard_conf[partner], torch.ones_like(easy_conf), margin=margin)


@register
class CascadeBert(Method):
    name = "cascadebert"
    description = "CascadeBERT: a cascade of complete models, smallest first, confidence exit"
    supports_regression = False
    setting_defaults = {"layers": "", "small_layers": "2"}
    sweep_keys = ("confidence",)
    plot_style = ("tab:purple", "P")
    table_order = 5
    # The paper quotes this row from the ELUE leaderboard, measured on BERT-base (docs/paper-run.md); a run on
    # ElasticBERT is an extra row of ours, without a paper row.
    paper_rows = (("bert", "", "CascadeBERT"),)
    sweep_values = ("0.9", "0.8", "0.7", "0.6")
    margin = 0.5
    rank_weight = 0.5
    # lancopku/CascadeBERT glue_mrpc.sh: lr 2e-5, batch 16, 5 epochs (HF Trainer: no warm-up, no decay).
    paper_defaults = {"lr": 2e-5, "batch_size": 16, "epochs": 5, "warmup": 0.0, "weight_decay": 0.0}

    @property
    def small_layers(self) -> int:
        return self.int_setting("small_layers") or 0

    def build(self, config, task):
        self.check_task(task)
        small = self.small_layers
        if not 1 <= small < config.num_layers:
            raise HasheeError(f"method {self.name}: small_layers={small} must be between 1 and the large "
                              f"model's layers - 1 ({config.num_layers - 1})")
        model = CascadeModel([replace(config, num_layers=small), config], task.num_labels)
        model.task = task
        return model

    def init_from_backbone(self, model, backbone) -> None:
        from hashee.core.backbones import load_exact, truncate

        small, large = model.models[0], model.models[-1]
        load_exact(large.bert, backbone.state_dict, backbone.name)
        state = truncate(backbone.state_dict, small.bert.num_layers)
        exit_pooler = backbone.exit_poolers.get(small.bert.num_layers)
        if exit_pooler:
            state.update({f"pooler.{k}": v for k, v in exit_pooler.items()})
        load_exact(small.bert, state, backbone.name)

    # ------------------------------------------------------------------ training
    def stages(self, model, params):
        def loss(model, batch):
            logits = [sub(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))[0]
                      for sub in model.models]
            total = sum(task_loss(model.task, out, batch["labels"]) for out in logits)
            return total + self.rank_weight * difficulty_rank_loss(logits[0], batch["labels"], self.margin)

        return [Stage("finetune", lambda m: m.parameters(), loss, params.epochs, params.lr, params.warmup,
                      params.weight_decay)]

    # ------------------------------------------------------------------ inference
    def predict(self, model, batch, inference):
        return self._cascade(model, batch["attention_mask"].sum(dim=1), float(inference[self.sweep_key]),
                             self._runner(model, batch))

    def predict_outputs(self, model, batch, inference):
        return self._cascade(model, batch["attention_mask"].sum(dim=1), float(inference[self.sweep_key]),
                             self._runner(model, batch), traced=False)

    @staticmethod
    def _runner(model, batch):
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        token_type_ids = batch.get("token_type_ids")
        lengths = attention_mask.sum(dim=1)

        def run(index, rows):  # only the instances still in the cascade, padding re-trimmed
            longest = int(lengths[rows].max())  # padding is on the right (hashee.core.data.collate)
            return model.models[index](input_ids[rows, :longest], attention_mask[rows, :longest],
                                       None if token_type_ids is None else token_type_ids[rows, :longest])[0]

        return run

    def predict_sweep(self, model, batch, inferences):
        """Every threshold from one pass of each model over the whole batch (its logits do not depend
        on the threshold); `predict` is what timing runs."""
        everyone = [sub(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))[0]
                    for sub in model.models]
        lengths = batch["attention_mask"].sum(dim=1)
        return [self._cascade(model, lengths, float(inference[self.sweep_key]),
                              lambda index, rows: everyone[index][rows]) for inference in inferences]

    def _cascade(self, model, lengths, threshold, run, traced: bool = True):
        """`run(model index, rows)` -> that model's logits for those instances. Returns the Prediction,
        or with `traced=False` only its outputs (finished instances are written by index on the device)."""
        size, hidden_size = lengths.shape[0], model.bert.config.hidden_size
        rows = torch.arange(size, device=lengths.device)  # instances still in the cascade
        final = None
        models_run = torch.zeros(size, dtype=torch.long, device=lengths.device)
        last = len(model.models) - 1
        for index in range(len(model.models)):
            logits = run(index, rows)
            if final is None:
                final = logits.new_empty((size, *logits.shape[1:]))
            if index == last:
                done = torch.ones(rows.numel(), dtype=torch.bool, device=rows.device)
            else:
                done = torch.softmax(logits.float(), dim=-1).max(dim=-1).values > threshold
            finished = rows[done]
            final.index_copy_(0, finished, logits[done])
            models_run.index_fill_(0, finished, index + 1)
            rows = rows[~done]
            if rows.numel() == 0:
                break
        if not traced:
            return final
        traces = []
        for length, depth in zip(lengths.tolist(), models_run.tolist()):
            calls = []
            for number, sub in enumerate(model.models[:depth], start=1):
                calls.append(ModuleCall(f"m{number}.emb", (length,)))
                calls += [ModuleCall(f"m{number}.layer_{j}", (length, length, hidden_size))
                          for j in range(1, sub.bert.num_layers + 1)]
                calls += [ModuleCall(f"m{number}.pooler", (hidden_size,)),
                          ModuleCall(f"m{number}.classifier", (hidden_size,))]
            traces.append(tuple(calls))
        return Prediction(final, traces)

    def flop_modules(self, model):
        modules = {}
        for number, sub in enumerate(model.models, start=1):
            for name, module in encoder_flop_modules(sub.bert).items():
                modules[f"m{number}.{name}"] = module
            modules[f"m{number}.pooler"] = FlopsHead(sub.bert.pooler)
            modules[f"m{number}.classifier"] = FlopsHead(sub.classifier)
        return modules
