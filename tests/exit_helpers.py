"""Helpers shared by the instance-exit baseline tests."""

import math

import torch

from hashee.core.methods import get_method
from hashee.core.modeling import EncoderConfig
from hashee.core.tasks import get_task

H, INTER, HEADS = 16, 32, 2  # the tiny encoder of the baseline tests

# Every registered instance-exit baseline, by registry name.
BASELINES = ("deebert", "fastbert", "pabee", "berxit", "cascadebert", "elasticbert-entropy", "elasticbert-patience")

# How far every value an exit rule compares must stay from its boundary. A batch and an instance
# alone run different matrix shapes, so their values differ by float32 rounding (~1e-7); a value
# closer than this to the threshold would let rounding, not the code, decide the test.
ROUNDING_MARGIN = 1e-4


def alone(batch, i):
    """Instance i of a right-padded batch, as a batch of one without padding."""
    n = int(batch["attention_mask"][i].sum())
    return {k: v[i:i + 1, :n] for k, v in batch.items()}


def exit_layer(trace):
    """The layer an instance exited at: how many encoder layers its trace ran."""
    return sum(call.name.startswith("layer_") for call in trace)


def widest_gap_midpoint(values, inside=None) -> str:
    """A threshold in the widest gap between per-instance scores, so no score is within rounding of it.

    `inside`: scores that must fall on both sides of it (only gaps strictly within their range count),
    e.g. the first exit's scores, so that some instances exit there and some go on."""
    values = sorted(float(v) for v in values)
    low_end, high_end = (min(inside), max(inside)) if inside is not None else (values[0], values[-1])
    gap, low = max((b - a, a) for a, b in zip(values, values[1:]) if a >= low_end and b <= high_end)
    assert gap > 1e-3
    return repr(low + gap / 2)


def random_batch(lengths, seed=1, vocab=60):
    """A right-padded batch of random token ids with the given real lengths."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(1, vocab, (length,), generator=generator)
        mask[row, :length] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def tiny_config(layers=6):
    """A tiny random-weight encoder config (vocabulary 60, no dropout)."""
    return EncoderConfig(vocab_size=60, hidden_size=H, num_layers=layers, num_heads=HEADS, intermediate_size=INTER,
                         max_position_embeddings=40, hidden_dropout=0.0, attention_dropout=0.0)


def sharpen(model, std):
    """Larger random head weights: confidences spread out, so instances exit at different layers."""
    for name, parameter in model.named_parameters():
        if any(part in name for part in ("classifier", "lte", "output_layer_2")):
            torch.nn.init.normal_(parameter, std=std)


def tiny_baseline(name, setting="", task="SST-2", layers=4, seed=0, std=2.0):
    """A baseline's method and its tiny random model (eval mode, sharpened heads)."""
    method = get_method(name, setting)
    torch.manual_seed(seed)
    model = method.build(tiny_config(layers), get_task(task)).eval()
    sharpen(model, std)
    return method, model


def _args(batch):
    return batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]


def threshold_scores(method, model, batch) -> torch.Tensor:
    """(B, K): the value a threshold rule compares with its threshold, for each instance at each of the
    K points where it may leave early (the last layer always exits, so it is not one)."""
    from baselines.fastbert import normalized_entropy
    from hashee.core.multiexit import entropy

    with torch.no_grad():
        if method.name == "cascadebert":  # exits when the small model's max softmax > confidence
            logits = model.models[0](*_args(batch))[0]
            return torch.softmax(logits.float(), dim=-1).max(dim=-1).values[:, None]
        outputs = model.all_exit_outputs(*_args(batch))[:-1]
    score = {"deebert": entropy, "elasticbert-entropy": entropy, "fastbert": normalized_entropy,
             "berxit": lambda out: torch.sigmoid(out[:, model.task.num_labels].float())}[method.name]
    return torch.stack([score(out) for out in outputs], dim=1)


def output_changes(model, batch) -> torch.Tensor:
    """(B, L-1) regression outputs' |change| from each layer to the next (the patience rule's input)."""
    with torch.no_grad():
        outputs = torch.stack([out.reshape(-1) for out in model.all_exit_outputs(*_args(batch))], dim=1)
    return (outputs[:, 1:] - outputs[:, :-1]).abs()


def boundary_distance(method, model, batch, inferences) -> float:
    """How close any value the exit rule decides on comes to flipping a decision, over the batch and
    the given inference settings."""
    if method.sweep_key != "patience":
        scores = threshold_scores(method, model, batch)
        # Entropies and sigmoids are never negative, so `score < 0` never holds: 0 is no boundary.
        thresholds = [float(inference[method.sweep_key]) for inference in inferences]
        thresholds = [t for t in thresholds if t > 0 or method.name == "cascadebert"]
        return min((float((scores - t).abs().min()) for t in thresholds), default=math.inf)
    if model.task.is_regression:
        return float((output_changes(model, batch) - method.regression_threshold).abs().min())
    with torch.no_grad():  # classification: the same argmax as the layer before; a near tie could flip it
        top2 = torch.stack([out.topk(2, dim=-1).values for out in model.all_exit_outputs(*_args(batch))])
    return float((top2[..., 0] - top2[..., 1]).min())


def mixed_inference(method, model, batch) -> dict:
    """An inference setting under which some instances leave at the first exit point and some go on,
    with no decided value within rounding of the threshold (patience rules: patience 1)."""
    if method.sweep_key == "patience":
        return {"patience": "1"}
    scores = threshold_scores(method, model, batch)
    return {method.sweep_key: widest_gap_midpoint(scores.flatten().tolist(), inside=scores[:, 0].tolist())}
