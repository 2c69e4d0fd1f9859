"""Execution trace: per instance, which modules ran and with which input shape.

One record, three readers: FLOPs counting (hashee.measure.flops), the submission's `modules` column
(hashee.studies.elue.submit) and the validator's FLOPs rebuild. Every method's forward pass produces it.

Shapes follow ELUE's `modules` column: the shape of the tensor the named module takes, at batch
size 1 without the batch dimension. Token-exit layers take `(n_active, seq_len, hidden)`: queries
from `n_active` tokens, keys/values from all `seq_len` tokens (see hashee.core.modeling.FlopsLayer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hashee.core.errors import HasheeError


@dataclass(frozen=True, order=True)
class ModuleCall:
    name: str
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"({','.join(str(d) for d in self.shape)}),{self.name}"


Trace = tuple[ModuleCall, ...]

_CALL = re.compile(r"^\((\d+(?:,\d+)*)\),([A-Za-z0-9_./-]+)$")


def format_trace(trace: Trace) -> str:
    """ELUE `modules` string: '(10),emb; (10,768),layer_1; (768),exit_1'."""
    return "; ".join(str(call) for call in trace)


def parse_trace(text: str, where: str = "modules") -> Trace:
    calls = []
    for part in text.split(";"):
        part = part.strip().replace(" ", "")
        match = _CALL.match(part)
        if not match:
            raise HasheeError(f"{where}: cannot parse module call {part!r} (expected '(d1,d2,...),name')")
        calls.append(ModuleCall(match.group(2), tuple(int(d) for d in match.group(1).split(","))))
    return tuple(calls)
