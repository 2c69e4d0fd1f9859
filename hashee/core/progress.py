"""Progress lines for job logs: written whether or not a terminal is attached.

A workflow job's output goes to a log file, where tqdm's bar is disabled (`--quiet`) or unreadable
(carriage returns). `ProgressLog` writes one plain line to stderr at most every `every` seconds, and
always at an epoch's end, so a log of a job that runs for hours shows where it is:

    progress 16:42:05 train stage=joint(1/2) epoch=1/3 step=120/450 loss=0.5312 lr=4.20e-05 ex/s=86.1 elapsed=0:01:24 eta=0:03:52 best_dev=81.20

loss is the mean over the steps since the previous line; ex/s is measured over the same steps; eta
is the rest of the run (every stage) at the step rate measured since the log started (dev evaluations
included, so it does not run ahead); best_dev is the best dev score of the stage so far. Lines go
through `tqdm.write`, so they print above a live bar instead of breaking it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

DEFAULT_EVERY = 30.0  # seconds; `--progress-every` and the config key `progress_every` change it


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _score(value) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}"


class ProgressLog:
    """Throttled progress lines. `every`: seconds between step lines (0: after every step; None: no
    lines at all). `clock` and `write` are replaceable for tests."""

    def __init__(self, every: float | None = DEFAULT_EVERY, total_steps: int = 0, what: str = "train",
                 clock: Callable[[], float] | None = None, write: Callable[[str], None] | None = None):
        if every is not None and (not math.isfinite(every) or every < 0):
            raise ValueError(f"progress interval must be >= 0 seconds or None, got {every!r}")
        self.every, self.total_steps, self.what = every, total_steps, what
        self.clock = clock or time.monotonic
        self._write = write or _write_stderr
        self.start = self.last = self.clock()
        self.steps_done = 0  # optimizer steps taken since this log started (a resumed run counts from 0)
        self._losses: list[float] = []
        self._examples = 0
        self._stage: dict = dict(name="-", pos="1/1", epochs=1, steps=total_steps, before=0)

    @property
    def enabled(self) -> bool:
        return self.every is not None

    def begin_stage(self, name: str, index: int, num_stages: int, epochs: int, steps: int, steps_before: int) -> None:
        """A training stage starts: `steps` optimizer steps over `epochs`, after `steps_before` in earlier stages."""
        self._stage = dict(name=name, pos=f"{index + 1}/{num_stages}", epochs=epochs, steps=steps, before=steps_before)

    def step(self, *, loss: float, examples: int, **position) -> None:
        """Record one optimizer step; write a line when `every` seconds have passed since the last one."""
        self.steps_done += 1
        self._losses.append(float(loss))
        self._examples += examples
        if self.enabled and self.clock() - self.last >= self.every:
            self.line(**position)

    def line(self, *, epoch: int, step: int, lr: float, best_dev=None, dev=None, event: str = "") -> None:
        """Write one line now (epoch ends call it directly). `epoch` counts from 1, `step` within the stage."""
        if not self.enabled:
            return
        now, stage = self.clock(), self._stage
        interval = now - self.last
        fields = [f"stage={stage['name']}({stage['pos']})", f"epoch={epoch}/{stage['epochs']}",
                  f"step={step}/{stage['steps']}"]
        if self._losses:
            fields.append(f"loss={sum(self._losses) / len(self._losses):.4f}")
        fields.append(f"lr={lr:.2e}")
        fields.append(f"ex/s={self._examples / interval:.1f}" if interval > 0 and self._examples else "ex/s=?")
        elapsed = now - self.start
        rate = self.steps_done / elapsed if elapsed > 0 else 0.0
        remaining = max(0, self.total_steps - stage["before"] - step)
        eta = remaining / rate if rate > 0 else (0.0 if remaining == 0 else math.inf)
        fields += [f"elapsed={_duration(elapsed)}", f"eta={_duration(eta)}"]
        if dev is not None:
            fields.append(f"dev={_score(dev)}")
        fields.append(f"best_dev={_score(best_dev)}")
        head = f"progress {time.strftime('%H:%M:%S')} {self.what}" + (f" {event}" if event else "")
        self._write(f"{head} {' '.join(fields)}")
        self.last = now
        self._losses.clear()
        self._examples = 0


def _write_stderr(text: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(text, file=sys.stderr)
    sys.stderr.flush()


__all__ = ["DEFAULT_EVERY", "ProgressLog"]
