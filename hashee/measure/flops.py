"""Per-instance FLOPs with fvcore, in ELUE's convention (ElasticBERT's ptflops-fork counter).

Every place where fvcore and ELUE's counter differ is handled here, and only here:
- Linear / matmul / bmm: both count one per multiply-add (prod(input) x out_features); fvcore's
  own handles are kept.
- `scaled_dot_product_attention`: fvcore has no handle and would silently drop the attention
  matmuls. Ours counts ELUE's per-head L_q*L_k (scaling) + d*L_q*L_k (scores) + L_q*L_k (softmax)
  + d*L_q*L_k (context).
- softmax: ELUE counts one per element (fvcore: nothing).
- LayerNorm: ELUE counts 2 per element (fvcore: 5 with an affine transform).
- Embedding lookups, GELU/tanh, residual adds, and the index ops that pack active tokens: 0 in
  both (`ZERO_COST_OPS`). Any other op fvcore cannot count raises: a new op that costs FLOPs must
  get a handle here, never be dropped in silence.
- Bias additions: 0 in both conventions.

FLOPs of an instance = sum over its trace (hashee.core.trace) of the FLOPs of each named module on its
traced shape. fvcore traces each distinct (module, shape) once and the result is cached, so a
10,000-instance test set costs one trace per distinct shape, not per instance.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from math import prod
from pathlib import Path

import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from hashee.core.errors import HasheeError
from hashee.core.trace import ModuleCall, Trace

ZERO_COST_OPS = {
    "aten::add", "aten::add_", "aten::sub", "aten::rsub", "aten::mul", "aten::div", "aten::neg",
    "aten::gelu", "aten::tanh", "aten::relu", "aten::sigmoid", "aten::embedding", "aten::dropout",
    "aten::index", "aten::index_select", "aten::index_put", "aten::index_put_", "aten::index_copy",
    "aten::cumsum", "aten::lt", "aten::gt", "aten::ge", "aten::le", "aten::eq", "aten::ne",
    "aten::nonzero", "aten::masked_fill", "aten::where", "aten::zeros", "aten::ones", "aten::arange",
    "aten::expand", "aten::expand_as", "aten::repeat", "aten::cat", "aten::stack", "aten::gather",
    "aten::scatter", "aten::clone", "aten::contiguous", "aten::floor_divide", "aten::remainder",
    "aten::max", "aten::min", "aten::argmax", "aten::sum", "aten::mean", "aten::abs", "aten::log",
    "aten::exp", "aten::pow", "aten::sqrt", "aten::clamp", "aten::fill_", "aten::zero_", "aten::new_zeros",
    "aten::full", "aten::full_like", "aten::zeros_like", "aten::ones_like", "aten::bitwise_and",
    "aten::bitwise_or", "aten::logical_and", "aten::logical_or", "aten::any", "aten::all", "aten::topk",
    "aten::sort", "aten::to", "aten::type_as", "aten::copy_", "aten::scalar_tensor", "aten::item",
    "aten::log_softmax", "aten::lstm",
}


def _shape(value) -> list[int]:
    return value.type().sizes()


def sdpa_flop_jit(inputs, outputs) -> int:
    """ELUE: per head L_q*L_k + d*L_q*L_k + L_q*L_k + L_q*L_k*d."""
    q, k = _shape(inputs[0]), _shape(inputs[1])
    *batch_heads, length_q, head_dim = q
    length_k = k[-2]
    return prod(batch_heads) * (2 * length_q * length_k + 2 * head_dim * length_q * length_k)


def softmax_flop_jit(inputs, outputs) -> int:
    return prod(_shape(inputs[0]))


def layer_norm_flop_jit(inputs, outputs) -> int:
    return 2 * prod(_shape(inputs[0]))


HANDLES = {
    "aten::scaled_dot_product_attention": sdpa_flop_jit,
    "aten::softmax": softmax_flop_jit,
    "aten::layer_norm": layer_norm_flop_jit,
}


def count_module_flops(module: nn.Module, inputs: tuple) -> int:
    analysis = FlopCountAnalysis(module, inputs).set_op_handle(**HANDLES)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    total = analysis.total()
    costly = set(analysis.unsupported_ops()) - ZERO_COST_OPS
    if costly:
        raise HasheeError(f"FLOPs: fvcore cannot count op(s) {', '.join(sorted(costly))} in "
                          f"{type(module).__name__}; add a handle in hashee/measure/flops.py")
    return int(total)


def _digest(value) -> str:
    return hashlib.sha1(repr(value).encode()).hexdigest()[:16]


def architecture(module: nn.Module) -> tuple:
    """What a module's FLOPs can depend on besides its input shape: its submodule types and
    parameter shapes (and hyper-parameters such as the number of heads). Modules that agree here
    (the layers of one encoder) share their counts."""
    parts = []
    for name, sub in module.named_modules():
        extras = tuple(sorted((k, v) for k, v in vars(sub).items()
                              if not k.startswith("_") and isinstance(v, (int, float, str, bool))))
        params = tuple((n, tuple(p.shape)) for n, p in sub.named_parameters(recurse=False))
        parts.append((name, type(sub).__qualname__, extras, params))
    return tuple(parts)


class FlopCounter:
    """FLOPs of traced module calls: one fvcore trace per distinct (architecture, shape).

    With `cache_dir`, counts are shared between processes (the workflow's evaluate jobs): each
    counter reads every `*.json` there and `save()` adds its new counts as one more file, so
    parallel jobs never write the same file.
    """

    def __init__(self, modules: dict[str, nn.Module], cache_dir=None):
        self.modules = modules
        self._signatures = {name: _digest(architecture(module)) for name, module in modules.items()}
        self._cache: dict[tuple, int] = {}
        self._new: dict[tuple, int] = {}
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir and self.cache_dir.is_dir():
            for file in sorted(self.cache_dir.glob("*.json")):
                try:
                    entries = json.loads(file.read_text())
                except (OSError, ValueError):
                    continue  # a cache file is an optimisation, never a source of truth
                for signature, shape, flops in entries:
                    self._cache[(signature, tuple(shape))] = int(flops)

    def save(self) -> None:
        if not self.cache_dir or not self._new:
            return
        from hashee.core.io import atomic_path

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        entries = [[signature, list(shape), flops] for (signature, shape), flops in self._new.items()]
        with atomic_path(self.cache_dir / f"{uuid.uuid4().hex}.json") as tmp:
            tmp.write_text(json.dumps(entries))
        self._new.clear()

    def call_flops(self, call: ModuleCall) -> int:
        module = self.modules.get(call.name)
        if module is None:
            raise HasheeError(f"FLOPs: trace names module {call.name!r} that the model does not define; "
                              f"known: {', '.join(sorted(self.modules))}")
        key = (self._signatures[call.name], call.shape)
        if key not in self._cache:
            device = next(module.parameters(), torch.zeros(())).device
            # Each submodule's own mode back afterwards: `module.train(module.training)` would put every
            # submodule in the wrapper's mode, e.g. an evaluated model's layers back into training (dropout).
            modes = [(sub, sub.training) for sub in module.modules()]
            module.eval()
            with torch.no_grad():
                self._cache[key] = self._new[key] = count_module_flops(
                    module, (torch.zeros(call.shape, device=device),))
            for sub, mode in modes:
                sub.training = mode
        return self._cache[key]

    def trace_flops(self, trace: Trace) -> int:
        return sum(self.call_flops(call) for call in trace)

    def mean_mflops(self, traces: Iterable[Trace]) -> float:
        values = [self.trace_flops(t) for t in traces]
        return sum(values) / len(values) / 1e6 if values else float("nan")


def bert_base_flops(lengths: Sequence[int], num_labels: int) -> list[int]:
    """FLOPs of the full 12-layer BERT-base (hidden 768) on instances of these lengths: the paper's
    speed-up denominator. Analytic, in ELUE's convention; tests/test_flops.py checks it equals
    fvcore's count of the same modules exactly, so no 110M-parameter model is built per job."""
    hidden, intermediate, heads = 768, 3072, 12
    head = hidden * hidden + hidden * num_labels  # pooler + classifier
    return [2 * length * hidden + 12 * analytic_layer_flops(length, length, hidden, intermediate, heads) + head
            for length in lengths]


def analytic_layer_flops(n_active: int, length: int, hidden: int, intermediate: int, heads: int) -> int:
    """Independent analytic count of one token-exit layer in ELUE's convention (tests cross-check fvcore)."""
    head_dim = hidden // heads
    projections = n_active * hidden * hidden + 2 * length * hidden * hidden  # Q on active; K, V on all
    attention = heads * (2 * n_active * length + 2 * head_dim * n_active * length)
    output = n_active * hidden * hidden + 2 * n_active * hidden * intermediate
    layer_norms = 2 * (2 * n_active * hidden)
    return projections + attention + output + layer_norms
