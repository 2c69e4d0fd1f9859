"""LTP: importance = attention received averaged over heads and real queries, tokens below the learned
per-layer threshold (x the sweep's scale) really removed, soft masks in training, batch = alone, FLOPs,
the ELUE submission round trip (regression included)."""

import pytest
import torch
from exit_helpers import alone
from pruning_helpers import (
    batch,
    captured_probs,
    check_batch_equals_alone,
    layer_lengths,
    mean_flops,
    submission_round_trip,
    tiny_pruning,
)

from hashee.core.modeling import attention_received, layer_with_attention


def raise_thresholds(model):
    model.pruner.learned.fill_(0.1)


def test_importance_is_attention_received_averaged_over_heads_and_real_queries():
    probs = torch.tensor([[[[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.3, 0.3, 0.4]],
                           [[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.1, 0.1, 0.8]]]])
    mask = torch.tensor([[True, True, False]])
    # by hand: (0.5 + 0.2 + 0.9 + 0.6) / (2 heads x 2 real queries), (0.5 + 0.8 + 0.1 + 0.4) / 4
    torch.testing.assert_close(attention_received(probs, mask, mean=True), torch.tensor([[0.55, 0.45, 0.0]]))


def test_thresholds_rise_linearly_from_the_base():
    method, model = tiny_pruning("ltp", raise_thresholds)
    torch.testing.assert_close(model.pruner.thresholds(), torch.tensor([0.1025, 0.105, 0.1075]))


def test_hard_pruning_drops_tokens_below_the_threshold_keeps_cls_and_shrinks_layers():
    method, model = tiny_pruning("ltp", raise_thresholds)
    data = batch()
    inference = method.inference_settings()[0]
    one = alone(data, 2)
    with torch.no_grad():
        importance = captured_probs(model, one).mean(dim=0).mean(dim=0)
        traces = method.predict(model, data, inference).traces
        kept = {}
        rule = method.hard_rule(model, one["attention_mask"], inference)

        def spy(layer, received, key_mask):
            verdict = rule(layer, received, key_mask)
            kept.setdefault(layer, verdict[0].nonzero().flatten().tolist())
            return verdict

        method._run(model, one, spy)
    expected = [0] + [i for i in range(1, len(importance)) if importance[i] >= 0.1025]
    assert kept[1] == expected and len(expected) < len(importance)
    for trace in traces:
        shapes = layer_lengths(trace)
        assert shapes[0][0] == trace[0].shape[0] and all(s[0] == s[1] for s in shapes)
        assert [s[0] for s in shapes] == sorted((s[0] for s in shapes), reverse=True)
    assert any(s[0] < trace[0].shape[0] for trace in traces for s in layer_lengths(trace))


def test_batch_equals_alone():
    method, model = tiny_pruning("ltp", raise_thresholds)
    check_batch_equals_alone(method, model, batch())
    method, model = tiny_pruning("ltp", raise_thresholds, task="STS-B")
    check_batch_equals_alone(method, model, batch(seed=3))


def test_flops_fall_as_thresholds_rise():
    method, model = tiny_pruning("ltp", lambda model: model.pruner.learned.fill_(0.06))
    data = batch()
    points = [mean_flops(method, model, data, inference) for inference in method.inference_settings()]
    model.pruner.searched.fill_(False)
    full = mean_flops(method, model, data, method.inference_settings()[0])
    assert full > points[0] > points[2] and points[0] >= points[1] >= points[2]


def test_soft_mask_is_the_sigmoid_and_penalised():
    method, model = tiny_pruning("ltp", raise_thresholds)
    data = batch()
    penalties = []
    rule = method.soft_rule(model, data["attention_mask"], penalties)
    key_mask = data["attention_mask"].bool()
    hidden = model.bert.embeddings(data["input_ids"])
    _, probs = layer_with_attention(model.bert.encoder.layer[0], hidden, key_mask)
    mask = rule(1, attention_received(probs, key_mask), key_mask)
    importance = attention_received(probs, key_mask, mean=True)
    expected = torch.sigmoid((importance - 0.1025) / 0.001)
    torch.testing.assert_close(mask[:, 1:], expected[:, 1:])
    assert torch.all(mask[:, 0] == 1.0)
    real = key_mask.float()
    torch.testing.assert_close(penalties[0], ((mask * real).sum(1) / real.sum(1)).mean() / 3)
    penalties[0].backward()
    assert model.pruner.learned.grad[0] < 0  # a higher threshold lowers the penalty


def test_submission_round_trip(tmp_path, minilm, monkeypatch):
    calls, rows, flops, code = submission_round_trip(tmp_path, minilm.tokenizer, "ltp", raise_thresholds, monkeypatch)
    assert all(c.shape[0] == c.shape[1] for c in calls) and any(c.name != "layer_1" for c in calls)
    for task, frame in rows.items():
        first = frame[frame["setting"] == "scale=1.0"].iloc[0]
        assert flops[task]["files"][f"{task}_0.tsv"]["mflops"] == pytest.approx(first["mflops"], abs=1e-4)
    assert code == 0


def test_rows_are_marked_beyond_the_paper():
    import pandas as pd
    from test_tables import REF, row

    from hashee.measure.inference_time import display_table
    from hashee.measure.plots import Palette
    from hashee.measure.results import ROW_COLUMNS
    from hashee.studies.elue.table import elue_table

    runs = pd.DataFrame([row("SST-2", "ltp", "layers=6,scale=1.0", 1, 84.0, 2000.0, 3.0),
                         row("SST-2", "pabee", "layers=6,patience=3", 1, 83.0, 2000.0, 3.0)], columns=ROW_COLUMNS)
    table = elue_table(runs, REF)
    assert list(table[table["method"] == "ltp"]["row"]) == ["ours, beyond the paper"]  # and no paper row
    assert "ours" in set(table[table["method"] == "pabee"]["row"])
    assert any("beyond the paper" in note and "ltp" in note for note in table.attrs["notes"])
    assert Palette.legend_label("ltp", "layers=6") == "ltp (beyond the paper)"
    assert Palette.legend_label("pabee", "layers=6") == "pabee"
    timed = pd.DataFrame([{"task": "SST-2", "method": m, "setting": "layers=6", "mflops": 1.0, "flops_speedup": 2.0,
                           "ms_b1": 1.0, "p99_ms_b1": 1.0, "speedup_b1": 1.5, "ratio_b1": 0.75} for m in ("ltp", "pabee")])
    assert list(display_table(timed)["method"]) == ["ltp (beyond the paper)", "pabee"]
