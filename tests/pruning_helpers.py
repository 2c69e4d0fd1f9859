"""Helpers shared by the token-pruning baseline tests (tests/test_powerbert.py, tests/test_ltp.py)."""

import json

import pandas as pd
import torch
from exit_helpers import alone, random_batch, tiny_config

from hashee import cli
from hashee.core.checkpoint import save_trained
from hashee.core.methods import get_method
from hashee.core.modeling import EncoderConfig, layer_with_attention
from hashee.core.tasks import TASKS, get_task
from hashee.core.trace import parse_trace
from hashee.measure.flops import FlopCounter

LENGTHS = (9, 5, 12, 7, 3, 10, 8, 6)


def tiny_pruning(name, setup, setting="", task="SST-2", layers=4, seed=0):
    """A method and its tiny random model with pruning on (`setup(model)` sets its pruning parameters)."""
    method = get_method(name, setting)
    torch.manual_seed(seed)
    model = method.build(tiny_config(layers), get_task(task)).eval()
    model.pruner.searched.fill_(True)
    with torch.no_grad():
        setup(model)
    return method, model


def batch(seed=1):
    return random_batch(LENGTHS, seed)


def layer_lengths(trace):
    return [call.shape for call in trace if call.name.startswith("layer_")]


def captured_probs(model, one):
    """Each layer's (heads, T, T) attention probabilities on an instance alone, by running the layers
    densely with nothing pruned (for the first layer, what the pruned run sees too)."""
    key_mask = one["attention_mask"].bool()
    hidden = model.bert.embeddings(one["input_ids"], one["token_type_ids"])
    _, probs = layer_with_attention(model.bert.encoder.layer[0], hidden, key_mask)
    return probs[0]


def check_batch_equals_alone(method, model, data):
    with torch.no_grad():
        for inference in method.inference_settings():
            together = method.predict(model, data, inference)
            for i in range(data["input_ids"].shape[0]):
                single = method.predict(model, alone(data, i), inference)
                assert single.traces[0] == together.traces[i]
                torch.testing.assert_close(single.outputs[0], together.outputs[i], atol=1e-5, rtol=1e-4)
                assert torch.equal(method.predict_outputs(model, alone(data, i), inference)[0], single.outputs[0])


def mean_flops(method, model, data, inference):
    with torch.no_grad():
        traces = method.predict(model, data, inference).traces
    return FlopCounter(method.flop_modules(model)).mean_mflops(traces)


SUB_CONFIG = dict(vocab_size=30522, hidden_size=32, num_layers=3, num_heads=2, intermediate_size=64)


def submission_round_trip(tmp_path, tokenizer, name, setup, monkeypatch):
    """SST-2 and STS-B tiny models of the method with pruning on: `hashee evaluate`, `hashee submit`,
    `validate-submission`, `score-submission`. Returns (the layer calls of SST-2's modules column,
    evaluate's rows per task, the submission's flops.json per task, score-submission's exit code)."""
    from hashee.studies.elue.data import write_demo_data

    names = ["SST-2", "STS-B"]
    data = write_demo_data(tmp_path / "data", size="tiny", sizes={"test": 8}, tasks=names)
    monkeypatch.setattr("hashee.measure.evaluation.bert_base_flops",
                        lambda lengths, num_labels, cache=None: [1] * len(lengths))
    models, preds, rows = {}, {}, {}
    for task_name in names:
        method = get_method(name)
        torch.manual_seed(0)
        model = method.build(EncoderConfig(**SUB_CONFIG), TASKS[task_name])
        model.pruner.searched.fill_(True)
        with torch.no_grad():
            setup(model)
        models[task_name], preds[task_name] = tmp_path / "models" / task_name, tmp_path / "preds" / task_name
        save_trained(models[task_name], method, model, tokenizer, TASKS[task_name],
                     meta={"seed": 1, "train_params": {"max_length": 32}})
        out_csv = tmp_path / f"{task_name}.csv"
        assert cli.main(["evaluate", "--model", str(models[task_name]), "--data-dir", str(data), "--splits", "test",
                         "--out", str(out_csv), "--predictions", str(preds[task_name]), "--quiet", "--device", "cpu"]) == 0
        rows[task_name] = pd.read_csv(out_csv)
    out = tmp_path / "submission"
    assert cli.main(["submit", "--predictions", *map(str, preds.values()), "--model", *map(str, models.values()),
                     "--out-dir", str(out)]) == 0
    assert cli.main(["validate-submission", str(out), "--data-dir", str(data), "--tasks", ",".join(names)]) == 0
    flops = {t: json.loads((out / t / "flops.json").read_text()) for t in names}
    reference = tmp_path / "reference.csv"
    pd.DataFrame([{"task": t, "layers": layers, "perf": perf, "mflops": flops[t]["files"][f"{t}_0.tsv"]["mflops"] * f,
                   "provenance": "test"} for t in names for layers, perf, f in ((1, 40.0, 0.5), (2, 70.0, 2.0))]
                 ).to_csv(reference, index=False)
    code = cli.main(["score-submission", str(out), "--data-dir", str(data), "--reference", str(reference),
                     "--tasks", ",".join(names)])
    lines = (out / "SST-2" / "SST-2_0.tsv").read_text().splitlines()[1:]
    calls = [c for line in lines for c in parse_trace(line.split("\t")[2]) if c.name.startswith("layer_")]
    return calls, rows, flops, code
