"""FastBERT: normalised-entropy exit, label-free self-distillation (backbone and teacher untouched),
FLOPs of the self-attentive heads = analytic count. Batch = alone, save/load (settings included) and
trainer steps: tests/test_baselines_shared.py."""

import pytest
import torch
from exit_helpers import exit_layer

from baselines.fastbert import normalized_entropy
from hashee.core.errors import HasheeError
from hashee.core.methods import get_method
from hashee.core.modeling import EncoderConfig
from hashee.core.tasks import get_task
from hashee.core.training import TrainParams, seed_everything, train
from hashee.measure.evaluation import dev_scorer
from hashee.measure.flops import FlopCounter, analytic_layer_flops

CONFIG = EncoderConfig(vocab_size=100, hidden_size=32, num_layers=3, num_heads=4, intermediate_size=64)
LENGTHS = [9, 5, 7, 3, 8, 6, 9, 4]


@pytest.fixture(scope="module")
def setup(minilm2, tiny_task):
    return minilm2, tiny_task("SST-2")


def tiny(seed=0, task="SST-2"):
    torch.manual_seed(seed)
    method = get_method("fastbert", "")
    return method, method.build(CONFIG, get_task(task)).eval()


def make_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, CONFIG.vocab_size, (len(LENGTHS), max(LENGTHS)), generator=generator)
    mask = (torch.arange(max(LENGTHS))[None, :] < torch.tensor(LENGTHS)[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def test_normalised_entropy_is_in_unit_interval_and_speed_zero_never_exits():
    torch.manual_seed(0)
    for labels in (2, 3):
        values = normalized_entropy(torch.randn(64, labels) * 5)
        assert bool((values >= 0).all() and (values <= 1 + 1e-6).all())
        torch.testing.assert_close(normalized_entropy(torch.zeros(1, labels)), torch.ones(1))  # uniform: 1
        assert float(normalized_entropy(torch.tensor([[500.0] + [0.0] * (labels - 1)]))) == 0  # certain: 0
    method, model = tiny()
    speeds = [s["speed"] for s in method.inference_settings()]
    assert speeds[0] == "0" and "0.5" in speeds
    with torch.no_grad():
        for head in model.exits:
            head.output_layer_2.weight.mul_(1e5)  # saturated: normalised entropy 0
    batch = make_batch()
    with torch.no_grad():
        # Far below the 1e-6 speed, so saturation, not rounding, makes every instance exit at layer 1.
        assert float(normalized_entropy(model.all_exit_outputs(**batch)[0]).max()) < 1e-8
        never = method.predict(model, batch, {"speed": "0"})
        always = method.predict(model, batch, {"speed": "1e-6"})
    assert [exit_layer(t) for t in never.traces] == [3] * len(LENGTHS)
    assert [exit_layer(t) for t in always.traces] == [1] * len(LENGTHS)


def test_classification_only_and_distill_setting():
    with pytest.raises(HasheeError, match="fastbert does not run on STS-B"):
        get_method("fastbert", "").build(CONFIG, get_task("STS-B"))
    with pytest.raises(HasheeError, match="distill_epochs"):
        get_method("fastbert", "distill_epochs=zero")
    params = TrainParams(epochs=3, lr=2e-5)
    _, model = tiny()
    for setting, distill in (("", 5.0), ("distill_epochs=2", 2.0)):
        stages = get_method("fastbert", setting).stages(model, params)
        assert [(s.name, s.lr, s.epochs, s.select_on_dev) for s in stages] == [
            ("finetune", 2e-5, 3, True), ("distill", pytest.approx(2e-4), distill, False)]


def test_distillation_loss_is_kl_to_the_teacher_without_labels():
    method, model = tiny(3)
    batch = make_batch(3)  # no "labels" key: reading it would raise
    loss = method.distillation_loss(model, batch)
    with torch.no_grad():
        outputs = model.all_exit_outputs(**batch)
    log_t = torch.log_softmax(outputs[-1], dim=-1)
    expected = sum((log_t.exp() * (log_t - torch.log_softmax(s, dim=-1))).sum(-1).mean() for s in outputs[:-1])
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert model.exits[-1].output_layer_2.weight.grad is None  # the teacher is the fixed target
    assert model.exits[0].output_layer_2.weight.grad.abs().sum() > 0


def test_flops_equal_analytic_count():
    method, model = tiny()
    batch = make_batch()
    counter = FlopCounter(method.flop_modules(model))
    hidden, labels, width, heads = CONFIG.hidden_size, 2, 128, 2

    def head(t):  # Linear(H,128) on T tokens, Q/K/V/out 128x128 on T, 2-head SDPA, then [CLS] MLP
        attention = heads * (2 * t * t + 2 * (width // heads) * t * t)
        return t * hidden * width + 4 * t * width * width + attention + width * width + width * labels

    for speed, layers in (("0", 3), ("1.5", 1)):
        with torch.no_grad():
            traces = method.predict(model, batch, {"speed": speed}).traces
        for trace, length in zip(traces, LENGTHS):
            assert [(c.name, c.shape) for c in trace if c.name.startswith("exit_")] == [
                (f"exit_{i}", (length, hidden)) for i in range(1, layers + 1)]
            analytic = 2 * length * hidden + layers * (
                analytic_layer_flops(length, length, hidden, CONFIG.intermediate_size, CONFIG.num_heads)
                + head(length))
            assert counter.trace_flops(trace) == analytic


def test_self_distillation_trains_students_without_labels(setup, tmp_path):
    backbone, data = setup
    seed_everything(3)
    method = get_method("fastbert", "layers=2,distill_epochs=1")
    model = method.build(backbone.config, get_task("SST-2"))
    method.init_from_backbone(model, backbone)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    params = TrainParams(epochs=1, lr=1e-4, batch_size=8, max_length=32, checkpoint_every=0, seed=3)
    start, original_stages = {}, method.stages

    def label_free_stages(model, params):
        stages = original_stages(model, params)
        distill = stages[1].loss

        def loss(model, batch):  # the real trainer's batches, with the labels taken out
            if not start:
                start.update({k: v.detach().clone() for k, v in model.state_dict().items()})
            return distill(model, {k: v for k, v in batch.items() if k != "labels"})

        stages[1].loss = loss
        return stages

    method.stages = label_free_stages
    pad = backbone.tokenizer.pad_token_id
    train(method, model, data["train"], data["dev"], params, tmp_path, pad,
          dev_score=dev_scorer(method, data["dev"], pad, 16, "cpu"), progress=False)
    assert start, "self-distillation never ran"
    end = model.state_dict()
    frozen = [k for k in end if k.startswith("bert.") or k.startswith("exits.1.")]
    assert any(not torch.equal(initial[k], start[k]) for k in frozen if k.startswith("exits.1."))  # stage 1 trained
    for k in frozen:
        assert torch.equal(start[k], end[k]), k  # backbone and teacher untouched by distillation
    assert not torch.equal(start["exits.0.output_layer_2.weight"], end["exits.0.output_layer_2.weight"])
