"""BERxiT: LTE exit rule (classification and regression), alternating loss whose parity survives a
resume, FLOPs (LTE included) = analytic count, the shared LTE after loading. Batch = alone, save/load
and trainer steps: tests/test_baselines_shared.py."""

import math

import pytest
import torch
from exit_helpers import exit_layer

from hashee.core.checkpoint import load_trained, save_trained
from hashee.core.methods import get_method
from hashee.core.modeling import EncoderConfig
from hashee.core.tasks import get_task
from hashee.core.training import TrainParams, seed_everything, train
from hashee.measure.evaluation import dev_scorer
from hashee.measure.flops import FlopCounter, analytic_layer_flops

CONFIG = EncoderConfig(vocab_size=100, hidden_size=32, num_layers=3, num_heads=4, intermediate_size=64)
LENGTHS = [9, 5, 7, 3, 8, 6, 9, 4]


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def setup(minilm2, tiny_task):
    return minilm2, tiny_task("SST-2")


def tiny(seed=0, task="SST-2"):
    torch.manual_seed(seed)
    method = get_method("berxit", "")
    return method, method.build(CONFIG, get_task(task)).eval()


def make_batch(seed=0, labels=None):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, CONFIG.vocab_size, (len(LENGTHS), max(LENGTHS)), generator=generator)
    mask = (torch.arange(max(LENGTHS))[None, :] < torch.tensor(LENGTHS)[:, None]).long()
    batch = {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    if labels is not None:
        batch["labels"] = labels
    return batch


def nonzero(grad):
    return grad is not None and bool(grad.abs().sum() > 0)


def constant_lte(model, probability):
    with torch.no_grad():
        model.lte.weight.zero_()
        model.lte.bias.fill_(math.log(probability / (1 - probability)))


@pytest.mark.parametrize("task", ["SST-2", "STS-B"])
def test_lte_threshold_rule(task):
    method, model = tiny(task=task)
    assert method.inference_settings()[0] == {"threshold": "0"}
    assert "0.5" in [s["threshold"] for s in method.inference_settings()]
    constant_lte(model, 0.3)  # every instance's LTE says 0.3 at every layer
    batch = make_batch()
    with torch.no_grad():
        layer_1 = model.all_exit_outputs(**batch)[0][:, :get_task(task).num_labels]
        for threshold, layers in (("0", 3), ("0.29", 3), ("0.31", 1), ("1", 1)):
            prediction = method.predict(model, batch, {"threshold": threshold})
            assert [exit_layer(t) for t in prediction.traces] == [layers] * len(LENGTHS), threshold
    # Exiting instances predict with their head's logits (regression: its scalar), the LTE column dropped.
    assert prediction.outputs.shape == (len(LENGTHS), get_task(task).num_labels)
    torch.testing.assert_close(prediction.outputs, layer_1)


def test_alternating_loss_and_lte_targets():
    method, model = tiny(seed=4)
    model.train()
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    batch = make_batch(4, labels)
    loss = method.stages(model, TrainParams())[0].loss
    grads = []
    for step in range(3):
        model.zero_grad(set_to_none=True)
        assert int(model.lte_step) == step
        loss(model, batch).backward()
        grads.append((model.exits[0].classifier.weight.grad, model.exits[-1].classifier.weight.grad,
                      model.lte.weight.grad))
    for step, (head, final, lte) in enumerate(grads):
        assert nonzero(lte)  # the LTE learns every step
        if step % 2 == 0:  # even: final exit only
            assert nonzero(final) and not nonzero(head)
        else:  # odd: the other exits only
            assert nonzero(head) and not nonzero(final)
    outputs = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
    assert method.lte_target(model.task, outputs, torch.tensor([1, 1])).tolist() == [1.0, 0.0]
    target = method.lte_target(get_task("STS-B"), torch.tensor([[1.0], [4.0]]), torch.tensor([1.5, 2.0]))
    torch.testing.assert_close(target, torch.tanh(torch.tensor([0.5, 2.0])))


def test_flops_equal_analytic_count_with_lte():
    method, model = tiny()
    batch = make_batch()
    counter = FlopCounter(method.flop_modules(model))
    hidden, labels = CONFIG.hidden_size, 2
    head = hidden * hidden + hidden * labels  # pooler Linear(H,H) + classifier Linear(H,labels)
    lte = hidden  # Linear(H, 1)
    constant_lte(model, 0.5)
    for threshold, layers in (("0", 3), ("0.6", 1)):
        with torch.no_grad():
            traces = method.predict(model, batch, {"threshold": threshold}).traces
        for trace, length in zip(traces, LENGTHS):
            expected = ["emb"]
            for i in range(1, layers + 1):
                expected += [f"layer_{i}", f"exit_{i}"] + (["lte"] if i < 3 else [])
            assert [c.name for c in trace] == expected
            analytic = 2 * length * hidden + sum(
                analytic_layer_flops(length, length, hidden, CONFIG.intermediate_size, CONFIG.num_heads)
                + head + (lte if i < 3 else 0) for i in range(1, layers + 1))
            assert counter.trace_flops(trace) == analytic


def test_load_keeps_the_step_counter_and_the_shared_lte(setup, tmp_path):
    backbone, _ = setup
    method, model = tiny(2)
    model.lte_step.fill_(5)  # an odd step: a resumed or reloaded model must keep its parity
    save_trained(tmp_path, method, model, backbone.tokenizer, get_task("SST-2"), {"seed": 0})
    loaded = load_trained(tmp_path, expect_method="berxit")
    assert torch.equal(loaded.model.lte.weight, model.lte.weight) and int(loaded.model.lte_step) == 5
    assert all(head.lte is loaded.model.lte for head in loaded.model.exits[:-1])  # still shared


def _run(backbone, data, workdir, on_step=None):
    # A small random encoder over MiniLM's vocabulary: three runs of the real trainer stay cheap.
    config = EncoderConfig(vocab_size=backbone.config.vocab_size, hidden_size=32, num_layers=2, num_heads=4,
                           intermediate_size=64)
    method = get_method("berxit", "layers=2")
    seed_everything(5)
    model = method.build(config, get_task("SST-2"))
    params = TrainParams(epochs=1, lr=1e-3, batch_size=8, max_length=32, checkpoint_every=3, seed=5)
    pad = backbone.tokenizer.pad_token_id
    train(method, model, data["train"], data["dev"], params, workdir, pad,
          dev_score=dev_scorer(method, data["dev"], pad, 16, "cpu"), on_step=on_step, progress=False)
    return model


def test_killed_run_resumes_with_the_same_step_parity(setup, tmp_path):
    backbone, data = setup
    straight = _run(backbone, data, tmp_path / "straight")
    assert int(straight.lte_step) == 6  # 48 examples / batch 8, one epoch

    def kill(step):
        if step == 4:  # after the step-3 checkpoint: the resumed run's next step (4) is odd
            raise Killed

    with pytest.raises(Killed):
        _run(backbone, data, tmp_path / "resumed", on_step=kill)
    resumed = _run(backbone, data, tmp_path / "resumed")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
