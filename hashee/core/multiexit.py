"""Shared machinery of instance-level early-exit baselines (DeeBERT, FastBERT, PABEE, BERxiT,
ElasticBERT exits): an internal classifier ("exit") after every layer, and batched inference in
which each instance leaves as soon as its exit rule fires.

Batched inference with per-instance exits: after layer l, the instances whose rule fired are
finished and dropped from the batch (rows removed, padding re-trimmed), so an instance that exits
stops costing compute and nobody waits for the slowest instance — unlike the official code, which
assumes batch size 1. An instance's prediction and exit are the same in any batch as alone.

A method subclasses `MultiExitMethod` and supplies: `make_exit(config, num_labels, layer)`, the
head modules; `exit_decision(...)`, its rule; `stages(...)`, its training. Traces name every
module the instance ran: `emb`, `layer_i` and that layer's head calls (`exit_i`, plus e.g. a
shared `pooler`), which hashee.measure.flops counts with the heads included. The rule hooks get
the model's task explicitly (the method holds no task: one method object serves any model).

Also here: the helpers of two-stage methods whose heads read [CLS] through their own pooler
(DeeBERT, FastBERT, BERxiT): `backbone_parameters`, `init_exit_poolers`, `final_exit_outputs`.
"""

from __future__ import annotations

import torch
from torch import nn

from hashee.core.methods import Method, Prediction, task_loss
from hashee.core.modeling import (
    EncoderConfig,
    TokenExitEncoder,
    encoder_flop_modules,
    plan_layers,
    pooled_input,
)
from hashee.core.tasks import TaskSpec
from hashee.core.trace import ModuleCall


class MultiExitModel(nn.Module):
    """Encoder (BERT names under `bert.`) + one exit head per layer (`exits.{i-1}` for layer i)."""

    def __init__(self, config: EncoderConfig, exits: list[nn.Module]):
        super().__init__()
        self.bert = TokenExitEncoder(config)
        self.exits = nn.ModuleList(exits)

    @property
    def num_layers(self) -> int:
        return self.bert.num_layers

    def all_exit_outputs(self, input_ids, attention_mask, token_type_ids=None) -> list[torch.Tensor]:
        """Training view: every exit's output for every instance (the whole batch runs all layers)."""
        key_mask = attention_mask.bool()
        hidden = self.bert.embeddings(input_ids, token_type_ids)
        plan = plan_layers(key_mask.unsqueeze(0))[0]  # every layer updates the same (real) tokens
        outputs = []
        for layer, head in zip(self.bert.encoder.layer, self.exits):
            hidden = layer(hidden, key_mask, plan=plan)
            outputs.append(head(hidden, key_mask))
        return outputs


class ClsHead(nn.Module):
    """DeeBERT-style exit: own pooler (Linear H->H + tanh on [CLS], or on the token mean: `config.pooling`)
    -> dropout -> Linear(H, labels)."""

    def __init__(self, config: EncoderConfig, num_labels: int):
        super().__init__()
        self.pooling = config.pooling
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)

    def forward(self, hidden, key_mask=None):  # (B, T, H) -> (B, labels)
        return self.classifier(self.dropout(torch.tanh(self.pooler(pooled_input(hidden, key_mask, self.pooling)))))


class MultiExitMethod(Method):
    """Instance-level early exit over a multi-exit model. Subclasses define heads, rule, stages."""

    setting_defaults = {"layers": ""}
    # The one inference-setting key the default `Method.inference_settings` sweeps, and its values
    # (strings, as they appear in results).
    sweep_keys: tuple[str, ...] = ("threshold",)
    sweep_values: tuple[str, ...] = ("0",)

    # ------------------------------------------------------------------ model
    def make_exit(self, config: EncoderConfig, num_labels: int, layer: int) -> nn.Module:
        return ClsHead(config, num_labels)

    def build(self, config, task):
        self.check_task(task)
        model = MultiExitModel(config, [self.make_exit(config, task.num_labels, i)
                                        for i in range(1, config.num_layers + 1)])
        model.task = task
        return model

    def init_from_backbone(self, model, backbone) -> None:
        from hashee.core.backbones import load_exact

        load_exact(model.bert, backbone.state_dict, backbone.name)

    # ------------------------------------------------------------------ exit rule
    def init_exit_state(self, task: TaskSpec, batch_size: int, device) -> dict:
        """Per-instance state carried across layers (e.g. PABEE's patience counter)."""
        return {}

    def exit_decision(self, task: TaskSpec, outputs: torch.Tensor, layer: int, state: dict,
                      inference: dict) -> torch.Tensor:
        """(B,) bool: which instances exit after `layer` given their exit output there."""
        raise NotImplementedError

    def final_output(self, task: TaskSpec, outputs: torch.Tensor, state: dict) -> torch.Tensor:
        """The prediction of an exiting instance (PABEE-style rules may use the state)."""
        return outputs

    def head_calls(self, layer: int, num_layers: int, length: int, hidden: int) -> list[ModuleCall]:
        """Module calls of the exit after `layer` (of `num_layers`), for traces (names must exist in
        flop_modules)."""
        return [ModuleCall(f"exit_{layer}", (hidden,))]

    # ------------------------------------------------------------------ inference
    def prepare_inference(self, model) -> None:
        """Run before inference (BERxiT points its heads at the shared LTE). Not `prepare`: that is
        the training-time hook every method has (`Method.prepare`)."""

    def predict(self, model, batch, inference):
        final, exit_layer = self._exit_loop(model, batch, inference)
        return Prediction(final, self._traces(batch["attention_mask"], exit_layer.tolist(), model))

    def predict_outputs(self, model, batch, inference):
        return self._exit_loop(model, batch, inference)[0]

    def _exit_loop(self, model, batch, inference):
        """The batched early-exit loop: (outputs (B, ...), exit layer per instance (B,)). Finished
        instances are written into `final` by index on the device (no per-instance host loop); the
        one host read per layer is whether anyone exited, which decides whether the batch shrinks."""
        self.prepare_inference(model)
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        size, device = input_ids.shape[0], input_ids.device
        key_mask = attention_mask.bool()
        hidden = model.bert.embeddings(input_ids, batch.get("token_type_ids"))
        rows = torch.arange(size, device=device)  # original row of each remaining instance
        state = self.init_exit_state(model.task, size, device)
        final = None
        exit_layer = torch.full((size,), model.num_layers, dtype=torch.long, device=device)
        plan = plan_layers(key_mask.unsqueeze(0))[0]  # padding's packed index set, until the batch shrinks
        # As in TokenExitEncoder: without autograd the states are the loop's alone (the heads read them
        # before the next layer), so each layer updates them in place instead of copying them.
        in_place = not torch.is_grad_enabled()
        for layer_index, (layer, head) in enumerate(zip(model.bert.encoder.layer, model.exits), start=1):
            hidden = layer(hidden, key_mask, plan=plan, in_place=in_place)
            outputs = head(hidden, key_mask)
            done = self.exit_decision(model.task, outputs, layer_index, state, inference)
            if layer_index == model.num_layers:
                done = torch.ones_like(done)
            if not bool(done.any()):
                continue
            chosen = self.final_output(model.task, outputs, state)
            if final is None:
                final = chosen.new_empty((size, *chosen.shape[1:]))
            finished = rows[done]
            final.index_copy_(0, finished, chosen[done])
            exit_layer.index_fill_(0, finished, layer_index)
            keep = (~done).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            state = self.select_state(state, keep)
            rows, hidden, key_mask = rows[keep], hidden[keep], key_mask[keep]
            # Re-trim padding to the longest remaining instance: padded keys cost time too.
            longest = int(key_mask.sum(dim=1).max())
            hidden, key_mask = hidden[:, :longest], key_mask[:, :longest]
            plan = plan_layers(key_mask.unsqueeze(0))[0]
        return final, exit_layer

    def predict_sweep(self, model, batch, inferences):
        """Every sweep point from one pass through all layers: an exit head's output for an instance
        does not depend on the exit rule, so replaying each rule over the recorded outputs gives the
        predictions and traces `predict` gives per point (tests check it). `predict`, which really
        skips the layers, is what the timing runs."""
        self.prepare_inference(model)
        outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        size, device = batch["input_ids"].shape[0], batch["input_ids"].device
        predictions = []
        for inference in inferences:
            rows = torch.arange(size, device=device)
            state = self.init_exit_state(model.task, size, device)
            final: list[torch.Tensor | None] = [None] * size
            exit_layer = [model.num_layers] * size
            for layer_index, layer_outputs in enumerate(outputs, start=1):
                keep, state = self._settle(model.task, layer_outputs[rows], layer_index, model.num_layers, state,
                                           inference, rows, final, exit_layer)
                if keep is not None:
                    if keep.numel() == 0:
                        break
                    rows = rows[keep]
            predictions.append(Prediction(torch.stack(final), self._traces(batch["attention_mask"], exit_layer, model)))
        return predictions

    def _settle(self, task, outputs, layer_index, num_layers, state, inference, rows, final, exit_layer):
        """Apply the exit rule after `layer_index` to the remaining instances (`rows`): record the
        finished ones in `final`/`exit_layer`; return (positions kept, or None if all stay; state)."""
        done = self.exit_decision(task, outputs, layer_index, state, inference)
        if layer_index == num_layers:
            done = torch.ones_like(done)
        if not bool(done.any()):
            return None, state
        chosen = self.final_output(task, outputs, state)
        for position in done.nonzero().squeeze(1).tolist():
            original = int(rows[position])
            final[original] = chosen[position]
            exit_layer[original] = layer_index
        keep = (~done).nonzero().squeeze(1)
        return keep, self.select_state(state, keep)

    def _traces(self, attention_mask, exit_layer, model):
        hidden_size = model.bert.config.hidden_size
        traces = []
        for length, last in zip(attention_mask.sum(dim=1).tolist(), exit_layer):
            calls = [ModuleCall("emb", (length,))]
            for layer_index in range(1, last + 1):
                calls.append(ModuleCall(f"layer_{layer_index}", (length, length, hidden_size)))
                calls.extend(self.head_calls(layer_index, model.num_layers, length, hidden_size))
            traces.append(tuple(calls))
        return traces

    @staticmethod
    def select_state(state: dict, keep: torch.Tensor) -> dict:
        return {k: v[keep] if isinstance(v, torch.Tensor) else v for k, v in state.items()}

    # ------------------------------------------------------------------ FLOPs
    def flop_modules(self, model):
        modules = encoder_flop_modules(model.bert)
        for i, head in enumerate(model.exits, start=1):
            modules[f"exit_{i}"] = FlopsSequenceHead(head)
        return modules

    # ------------------------------------------------------------------ training helpers
    def exit_losses(self, model, batch) -> list[torch.Tensor]:
        outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        return [task_loss(model.task, out, batch["labels"]) for out in outputs]


def backbone_parameters(model) -> list[nn.Parameter]:
    """Embeddings + layers. The encoder's own pooler is unused by models whose every exit has its own
    pooler, so it is left out of every stage."""
    return [p for name, p in model.bert.named_parameters() if not name.startswith("pooler.")]


def init_exit_poolers(model) -> None:
    """Every exit's pooler starts from the backbone's final pooler (DeeBERT's init_highway_pooler)."""
    source = model.bert.pooler.dense
    with torch.no_grad():
        for head in model.exits:
            head.pooler.weight.copy_(source.weight)
            head.pooler.bias.copy_(source.bias)


def final_exit_outputs(model, batch) -> torch.Tensor:
    """Output of the last exit only (stage 1 of two-stage methods): no intermediate heads run."""
    out = model.bert(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    return model.exits[-1](out.last_hidden_state, batch["attention_mask"].bool())


class FlopsSequenceHead(nn.Module):
    """Input (H,) for heads that read [CLS] only, or (T, H) for heads that read the whole sequence
    (FastBERT's self-attentive student): the head runs on a (1, T, H) batch of that shape."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, x):
        hidden = x.reshape(1, -1, x.shape[-1])
        return self.head(hidden, torch.ones(1, hidden.shape[1], dtype=torch.bool, device=x.device))


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) per row, in nats."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)
