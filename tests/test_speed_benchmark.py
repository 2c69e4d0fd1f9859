"""benchmarks/speed.py's measuring (not its targets, which stay out of unit tests): the sides of a ratio
are timed interleaved, every round calling each once in a rotated order; the per-layer breakdown gives
each layer's FLOPs fraction from its active tokens."""

import importlib.util
from pathlib import Path

import torch

from hashee.core.modeling import EncoderConfig, TokenExitEncoder


def _speed_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"
    spec = importlib.util.spec_from_file_location("speed_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_timed_interleaves_the_sides_in_rotated_order():
    speed = _speed_module()
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    times = speed.timed(fns, torch.device("cpu"), repeats=3)
    assert set(times) == {"a", "b", "c"} and all(t >= 0 for t in times.values())
    warmup, timed_calls = calls[:6], calls[6:]
    assert warmup == ["a", "b", "c"] * 2
    assert timed_calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_per_layer_reports_each_layers_flops_fraction(capsys):
    speed = _speed_module()
    torch.manual_seed(0)
    encoder = TokenExitEncoder(EncoderConfig(hidden_size=32, num_layers=3, num_heads=2, intermediate_size=64))
    ids = torch.randint(1000, 2000, (1, speed.LENGTH))
    exits = torch.full_like(ids, 3)
    exits[0, 1:97] = 1  # 96 tokens leave after layer 1: layers 2 and 3 update the other 32
    speed.per_layer(encoder, ids, exits, repeats=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert "128 active tokens  FLOPs 1.000 of full" in lines[0]
    fractions = [1.0]
    for line in lines[1:3]:
        assert "32 active tokens" in line
        fractions.append(float(line.split("FLOPs ")[1].split(" of full")[0]))
        assert 0.2 < fractions[-1] < 0.7  # a quarter of the tokens, plus the K/V projections of all 128
    # The ceiling line: the three layers' FLOPs together (equal full layers, so 3 / the sum of fractions).
    assert lines[3].strip().startswith("layers alone: FLOPs x")
    speedup = float(lines[3].split("FLOPs x")[1].split()[0])
    assert abs(speedup - 3 / sum(fractions)) < 0.02
    time_speedup, ratio = float(lines[3].split("time x")[1].split()[0]), float(lines[3].split("ratio ")[1].split()[0])
    assert abs(ratio - time_speedup / speedup) < 0.02
