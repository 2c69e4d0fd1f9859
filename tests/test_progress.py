"""Progress lines in job logs: paced by a clock, written at epoch ends, with or without a tqdm bar."""

import argparse
import re

import pytest

from hashee.cli.common import progress_interval
from hashee.core.methods import get_method
from hashee.core.progress import ProgressLog
from hashee.core.tasks import get_task
from hashee.core.training import TrainParams, seed_everything, train
from hashee.measure.evaluation import dev_scorer


class FakeClock:
    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick  # every reading advances: one reading per step, as the trainer does
        return self.now


def _fields(line: str) -> dict:
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def test_lines_are_paced_by_the_interval_and_average_the_loss():
    lines, now = [], [0.0]
    log = ProgressLog(10, total_steps=100, clock=lambda: now[0], write=lines.append)
    log.begin_stage("joint", 0, 1, epochs=2, steps=100, steps_before=0)
    for step in range(1, 21):
        now[0] = step * 1.0  # one step per second
        log.step(loss=float(step), examples=8, epoch=1, step=step, lr=1e-4, best_dev=None)
    assert len(lines) == 2  # at 10 s and 20 s, not after every step
    first = _fields(lines[0])
    assert first["step"] == "10/100" and first["stage"] == "joint(1/1)" and first["epoch"] == "1/2"
    assert float(first["loss"]) == pytest.approx(5.5)  # mean of steps 1..10, not the last step's
    assert float(first["ex/s"]) == pytest.approx(8.0)  # 80 examples in 10 s
    assert first["eta"] == "0:01:30"  # 90 steps left at 1 step/s
    assert first["best_dev"] == "-"
    assert float(_fields(lines[1])["loss"]) == pytest.approx(15.5)


def test_eta_counts_later_stages_and_resumed_steps_do_not_inflate_the_rate():
    lines, now = [], [0.0]
    log = ProgressLog(0, total_steps=300, clock=lambda: now[0], write=lines.append)
    log.begin_stage("exits", 1, 2, epochs=1, steps=100, steps_before=200)
    now[0] = 2.0
    log.step(loss=1.0, examples=4, epoch=1, step=51, lr=1e-4, best_dev=80.0)  # resumed at step 50 of stage 2
    fields = _fields(lines[0])
    assert fields["stage"] == "exits(2/2)" and fields["best_dev"] == "80.00"
    assert fields["eta"] == "0:01:38"  # 49 steps left at the 0.5 step/s this process has measured


def test_off_writes_nothing_and_bad_intervals_are_refused():
    lines = []
    log = ProgressLog(None, total_steps=10, write=lines.append)
    log.step(loss=1.0, examples=1, epoch=1, step=1, lr=1e-4)
    log.line(epoch=1, step=1, lr=1e-4, event="epoch-end")
    assert lines == []
    with pytest.raises(ValueError, match="progress interval"):
        ProgressLog(-1)
    assert progress_interval("off") is None and progress_interval("0") == 0.0 and progress_interval("2.5") == 2.5
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="seconds >= 0 or 'off'"):
            progress_interval(bad)


def _train(backbone, data, workdir, every, clock, progress=False):
    method = get_method("static", "layers=2")
    seed_everything(7)
    model = method.build(backbone.config, get_task("SST-2"))
    method.init_from_backbone(model, backbone)
    params = TrainParams(epochs=2, lr=1e-4, batch_size=8, max_length=32, checkpoint_every=0, seed=7)
    pad = backbone.tokenizer.pad_token_id
    return train(method, model, data["train"], data["dev"], params, workdir, pad,
                 dev_score=dev_scorer(method, data["dev"], pad, 16, "cpu"), progress=progress,
                 progress_every=every, clock=clock)


def test_trainer_logs_every_step_at_interval_zero_and_epoch_ends_always(minilm2, tiny_task, tmp_path, capsys):
    data = tiny_task("SST-2")
    steps_per_epoch = -(-len(data["train"]) // 8)
    result = _train(minilm2, data, tmp_path / "every", 0, FakeClock(1.0))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("progress ")]
    step_lines = [line for line in lines if "epoch-end" not in line]
    ends = [line for line in lines if "epoch-end" in line]
    assert len(step_lines) == 2 * steps_per_epoch and len(ends) == 2
    for line in step_lines:
        assert re.search(r" train static stage=\S+\(1/1\) epoch=[12]/2 step=\d+/\d+ loss=[\d.]+ lr=\S+ "
                         r"ex/s=[\d.]+ elapsed=\d+:\d\d:\d\d eta=\d+:\d\d:\d\d best_dev=", line), line
    assert _fields(step_lines[-1])["step"] == f"{2 * steps_per_epoch}/{2 * steps_per_epoch}"
    devs = [float(_fields(line)["dev"]) for line in ends]
    assert devs == pytest.approx([h["dev"] for h in result.history], abs=0.006)
    assert float(_fields(ends[-1])["best_dev"]) == pytest.approx(max(devs), abs=0.006)
    assert _fields(ends[-1])["eta"] == "0:00:00"

    # A long interval: the epoch ends only; the bar on (a terminal) changes nothing in the lines.
    _train(minilm2, data, tmp_path / "slow", 3600, FakeClock(1.0), progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("progress ")]
    assert len(lines) == 2 and all("epoch-end" in line for line in lines)

    _train(minilm2, data, tmp_path / "off", None, FakeClock(1.0))
    assert "progress " not in capsys.readouterr().err
