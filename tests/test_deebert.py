"""DeeBERT: entropy exit rule, two-stage training (stage 2 leaves the backbone bit-identical),
FLOPs = analytic count. Batch = alone, save/load and trainer steps: tests/test_baselines_shared.py."""

import pytest
import torch
from exit_helpers import exit_layer

from hashee.core.errors import HasheeError
from hashee.core.methods import get_method
from hashee.core.modeling import EncoderConfig
from hashee.core.multiexit import entropy
from hashee.core.tasks import get_task
from hashee.core.training import TrainParams, seed_everything, train
from hashee.measure.evaluation import dev_scorer
from hashee.measure.flops import FlopCounter, analytic_layer_flops

CONFIG = EncoderConfig(vocab_size=100, hidden_size=32, num_layers=3, num_heads=4, intermediate_size=64)
LENGTHS = [9, 5, 7, 3, 8, 6, 9, 4]


@pytest.fixture(scope="module")
def setup(minilm2, tiny_task):
    return minilm2, tiny_task("SST-2")


def tiny(seed=0):
    torch.manual_seed(seed)
    method = get_method("deebert", "")
    return method, method.build(CONFIG, get_task("SST-2")).eval()


def make_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, CONFIG.vocab_size, (len(LENGTHS), max(LENGTHS)), generator=generator)
    mask = (torch.arange(max(LENGTHS))[None, :] < torch.tensor(LENGTHS)[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def test_sweep_and_threshold_zero_never_exits_early():
    method, model = tiny()
    assert method.inference_settings()[0] == {"threshold": "0"}  # dev selection = the final exit alone
    assert [s["threshold"] for s in method.inference_settings()] == [
        "0", "0.001", "0.005", "0.01", "0.05", "0.1", "0.15", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]
    # Saturated heads: entropy is exactly 0 (never negative), so only a positive threshold exits.
    confident = torch.tensor([[1000.0, -1000.0], [0.0, 200.0]])
    assert torch.all(entropy(confident) == 0)
    with torch.no_grad():
        for head in model.exits:
            head.classifier.weight.mul_(1e4)
    batch = make_batch()
    with torch.no_grad():
        # Far below the 1e-6 threshold, so saturation, not rounding, makes every instance exit at layer 1.
        assert float(entropy(model.all_exit_outputs(**batch)[0]).max()) < 1e-8
        never = method.predict(model, batch, {"threshold": "0"})
        always = method.predict(model, batch, {"threshold": "1e-6"})
    assert [exit_layer(t) for t in never.traces] == [3] * len(LENGTHS)
    assert [exit_layer(t) for t in always.traces] == [1] * len(LENGTHS)


def test_regression_is_refused_clearly():
    method = get_method("deebert", "")
    with pytest.raises(HasheeError, match="deebert does not run on STS-B"):
        method.build(CONFIG, get_task("STS-B"))


def test_flops_equal_analytic_count():
    method, model = tiny()
    batch = make_batch()
    counter = FlopCounter(method.flop_modules(model))
    hidden, labels = CONFIG.hidden_size, 2
    head = hidden * hidden + hidden * labels  # pooler Linear(H,H) + classifier Linear(H,labels)
    for threshold, layers in (("0", 3), ("100", 1)):  # never early / always after layer 1
        with torch.no_grad():
            traces = method.predict(model, batch, {"threshold": threshold}).traces
        for trace, length in zip(traces, LENGTHS):
            assert [c.name for c in trace] == ["emb"] + [n for i in range(1, layers + 1)
                                                         for n in (f"layer_{i}", f"exit_{i}")]
            analytic = 2 * length * hidden + layers * (
                analytic_layer_flops(length, length, hidden, CONFIG.intermediate_size, CONFIG.num_heads) + head)
            assert counter.trace_flops(trace) == analytic


def test_second_stage_trains_only_the_heads(setup, tmp_path):
    backbone, data = setup
    seed_everything(3)
    method = get_method("deebert", "layers=2")
    model = method.build(backbone.config, get_task("SST-2"))
    method.init_from_backbone(model, backbone)
    final_pooler = backbone.state_dict["pooler.dense.weight"]
    assert all(torch.equal(head.pooler.weight, final_pooler) for head in model.exits)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    params = TrainParams(epochs=1, lr=1e-3, batch_size=8, max_length=32, checkpoint_every=0, seed=3)
    stages = method.stages(model, params)
    assert [(s.name, s.lr, s.epochs, s.select_on_dev) for s in stages] == [
        ("finetune", params.lr, params.epochs, True), ("exits", params.lr, params.epochs, False)]

    # Snapshot the weights stage 2 starts from (stage 1's best dev checkpoint): at its first loss call.
    start = {}
    original_stages = method.stages

    def snapshotting_stages(model, params):
        stages = original_stages(model, params)
        heads_loss = stages[1].loss

        def loss(model, batch):
            if not start:
                start.update({k: v.detach().clone() for k, v in model.state_dict().items()})
            return heads_loss(model, batch)

        stages[1].loss = loss
        return stages

    method.stages = snapshotting_stages
    pad = backbone.tokenizer.pad_token_id
    train(method, model, data["train"], data["dev"], params, tmp_path, pad,
          dev_score=dev_scorer(method, data["dev"], pad, 16, "cpu"), progress=False)
    assert start, "stage 2 never ran"
    end = model.state_dict()
    frozen = [k for k in end if k.startswith("bert.") or k.startswith("exits.1.")]
    assert any(not torch.equal(initial[k], start[k]) for k in frozen if k.startswith("bert.encoder"))  # stage 1 trained
    for k in frozen:
        assert torch.equal(start[k], end[k]), k  # stage 2: bit-identical backbone and final exit
    assert not torch.equal(start["exits.0.classifier.weight"], end["exits.0.classifier.weight"])
