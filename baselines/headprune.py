"""HeadPrune (Michel et al., 2019, "Are Sixteen Heads Really Better than One?";
pmichel31415/are-16-heads-really-better-than-1): attention heads pruned by importance, then fine-tuning.

Stages (one `hashee train` run, the shared trainer):
1. `finetune`: the full model (the backbone's `layers` layers) fine-tuned, as the static model is.
2. `prune`: when it begins, heads are pruned in steps until the model's FLOPs fall by `speedup`
   (full / pruned >= speedup). Each step computes every remaining head's importance
   I_h = sum over training batches of |dL/d xi_h| (xi_h: a mask multiplying head h's output, 1 for
   every head kept; L: the task loss; training data only, never dev or test), divided by the number
   of tokens and normalised per layer to unit L2 norm (as the reference does by default), then
   removes the least important heads across all layers, `step` x the initial head count at most,
   one at a time, stopping as soon as the target is met. Removed heads are really removed (smaller
   Q/K/V and output projections: hashee.core.modeling.Attention.prune_heads; the kept head counts
   are in the saved config's `layer_heads`). Then the pruned model is fine-tuned with the run's
   epochs and lr, selected on dev.
The target is measured with ELUE's FLOPs convention (the one hashee.measure.flops counts with
fvcore), here in closed form over the training set's lengths, so no forward pass is needed per step.
A layer may lose every head (its attention sublayer then adds only its output bias), as in the
reference. Departures: the reference prunes a fixed share of heads per step and reports accuracy
at each; ours stops at a FLOPs target (the ELUE row's speed-up), and fine-tunes after pruning.
"""

from __future__ import annotations

import math

import torch

from baselines.compression import teacher_stage
from hashee.core.errors import HasheeError
from hashee.core.methods import Method, Stage, register, task_loss
from hashee.core.modeling import EncoderConfig, SequenceClassifier


def layer_flops(config: EncoderConfig, heads: int, length: int) -> int:
    """ELUE-convention FLOPs of one encoder layer with `heads` heads on `length` tokens (all active)."""
    H, T = config.hidden_size, length
    d = H // config.num_heads
    inner = heads * d
    projections = 3 * T * H * inner + T * inner * H  # Q, K, V and the output projection
    core = heads * (2 * T * T + 2 * d * T * T)  # scaling, scores, softmax, context (per head)
    ffn = 2 * T * H * config.intermediate_size
    layer_norms = 2 * (2 * T * H)
    return projections + core + ffn + layer_norms


def model_flops(config: EncoderConfig, layer_heads: list[int], lengths: list[int], num_labels: int) -> float:
    """Mean FLOPs per instance over `lengths`: embeddings' LayerNorm (and projection), every layer, the
    pooler and classifier (what hashee.measure.flops counts for a static model)."""
    E, H = config.embedding_size or config.hidden_size, config.hidden_size
    total = 0
    for T in lengths:
        total += 2 * T * E + (T * E * H if E != H else 0)
        total += sum(layer_flops(config, h, T) for h in layer_heads)
        total += H * H + H * num_labels
    return total / max(1, len(lengths))


class HeadMasks:
    """Forward hooks multiplying each layer's per-head attention outputs by a mask (L rows, one entry per
    head the layer has): differentiable, so dL/dmask is each head's importance signal."""

    def __init__(self, model: SequenceClassifier):
        self.layers = list(model.bert.encoder.layer)
        like = next(model.parameters())
        self.masks = [torch.ones(layer.attention.self.num_heads, device=like.device, dtype=like.dtype,
                                 requires_grad=True) for layer in self.layers]
        self.handles = [layer.attention.self.register_forward_hook(self._hook(i)) for i, layer in enumerate(self.layers)]

    def _hook(self, index):
        def hook(module, inputs, output):
            heads = module.num_heads
            if heads == 0:
                return output
            shape = output.shape
            return (output.view(*shape[:-1], heads, module.head_dim) * self.masks[index].view(heads, 1)).view(shape)
        return hook

    def remove(self):
        for handle in self.handles:
            handle.remove()


def head_gradients(model: SequenceClassifier, batches) -> tuple[list[torch.Tensor], int]:
    """Per layer, each remaining head's sum over batches of |dL/d mask| (L: the batch's mean task loss),
    and the number of real tokens seen."""
    was_training = model.training
    model.eval()  # no dropout: the importance of a given model is deterministic
    masks = HeadMasks(model)
    try:
        totals = [torch.zeros_like(m) for m in masks.masks]
        tokens = 0
        for batch in batches():
            logits, _ = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            loss = task_loss(model.task, logits, batch["labels"])
            live = [i for i, m in enumerate(masks.masks) if m.numel()]
            grads = torch.autograd.grad(loss, [masks.masks[i] for i in live], allow_unused=True)
            for i, grad in zip(live, grads):
                if grad is not None:
                    totals[i] += grad.abs().detach()
            tokens += int(batch["attention_mask"].sum())
    finally:
        masks.remove()
        model.train(was_training)
    return totals, tokens


def head_importance(model: SequenceClassifier, batches) -> list[torch.Tensor]:
    """Per layer, each remaining head's importance: `head_gradients` / tokens, L2-normalised per layer
    (a layer whose scores are all 0 keeps them)."""
    totals, tokens = head_gradients(model, batches)
    scores = []
    for total in totals:
        total = total / max(1, tokens)
        norm = total.pow(2).sum().sqrt()
        scores.append(total / norm if norm > 0 else total)
    return scores


def prune_to_speedup(model: SequenceClassifier, batches, target: float, step: float) -> list[dict]:
    """Prune heads of `model` (in place) until full / pruned FLOPs >= `target` over the training lengths;
    returns one log row per step. Stops early when no head is left."""
    config = model.bert.config
    lengths = [int(n) for batch in batches() for n in batch["attention_mask"].sum(dim=1).tolist()]
    layers = list(model.bert.encoder.layer)
    full = model_flops(config, [config.num_heads] * len(layers), lengths, model.num_labels)
    per_step = max(1, math.ceil(step * config.num_heads * len(layers)))

    def heads_now():
        return [layer.attention.self.num_heads for layer in layers]

    def speedup(counts):
        return full / model_flops(config, counts, lengths, model.num_labels)

    log = []
    while speedup(heads_now()) < target and sum(heads_now()) > 0:
        scores = head_importance(model, batches)
        ranked = sorted(((float(s), layer, head) for layer, row in enumerate(scores) for head, s in enumerate(row)))
        counts, chosen = heads_now(), {}
        for _, layer, head in ranked[:per_step]:
            chosen.setdefault(layer, []).append(head)
            counts[layer] -= 1
            if speedup(counts) >= target:
                break
        for layer, heads in chosen.items():
            layers[layer].attention.prune_heads(heads)
        model.bert.sync_layer_heads()
        log.append({"pruned": sum(len(h) for h in chosen.values()), "heads": heads_now(),
                    "speedup": speedup(heads_now())})
    return log


@register
class HeadPrune(Method):
    name = "headprune"
    description = "HeadPrune: attention heads pruned by gradient importance to a FLOPs speed-up, then fine-tuned"
    supports_regression = True  # the importance is the gradient of the task loss, MSE included
    # speedup: the paper row's (1.3 on SST-2, 1.5 on the others); step: the share of all heads pruned at
    # most per importance estimate (the reference's 10 % steps).
    setting_defaults = {"layers": "", "speedup": "1.5", "step": "0.1"}
    plot_style = ("tab:gray", "X")
    table_order = 0.4
    paper_rows = ((None, "", "HeadPrune"),)

    def float_setting(self, key: str) -> float:
        try:
            return float(self.settings[key])
        except ValueError:
            raise HasheeError(f"method {self.name}: setting {key}={self.settings[key]!r} is not a number") from None

    def check_settings(self) -> tuple[float, float]:
        target, step = self.float_setting("speedup"), self.float_setting("step")
        if target < 1 or not 0 < step <= 1:
            raise HasheeError(f"method {self.name}: need speedup >= 1 and 0 < step <= 1 (got {target}, {step})")
        return target, step

    def build(self, config, task):
        self.check_settings()
        return super().build(config, task)

    def stages(self, model, params):
        target, step = self.check_settings()

        def prune(model, batches):
            self.pruning_log = prune_to_speedup(model, batches, target, step)

        def loss(model, batch):
            logits, _ = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            return task_loss(model.task, logits, batch["labels"])

        return [teacher_stage(params),
                Stage("prune", lambda m: m.parameters(), loss, params.epochs, params.lr, params.warmup,
                      params.weight_decay, begin=prune)]

    def predict_outputs(self, model, batch, inference):
        return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])[0]
