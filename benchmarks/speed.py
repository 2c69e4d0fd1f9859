"""Realized wall-clock speed-up vs FLOPs speed-up of token exits, measured in one run.

For each configuration and batch size (length 128), on the same weights and the same batch:
  flops_speedup = FLOPs(full encoder) / FLOPs(HashEE)      (fvcore, ELUE convention)
  wall_speedup  = time(full encoder)  / time(HashEE)       (median over repeats)
  ratio         = wall_speedup / flops_speedup             (1.0 = every saved FLOP is saved time)
"full encoder" time is the faster of transformers' BertModel and our encoder with no exits, so
packing overhead is never hidden behind a slow baseline.

  (a) the offline default backbone (MiniLM-L6-H384) with the frequency hash fitted on demo SST-2;
  (b) a 6-layer, hidden-768 encoder with tokens spread evenly over the 6 layers (special tokens last).

Dynamic baselines (issue 6), same definitions: each instance-exit method runs its own heads and
batched loop (exited instances leave the batch) with a controlled exit pattern spread evenly over
the layers, against the same model with no early exit; CascadeBERT passes half of the batch on
(threshold at the median confidence of its small model), against its large model alone. At
batch size 1 the same is timed over 12 instances (2 exiting at each layer) run one at a time.

The dynamic methods are timed through `predict_outputs`, what the timing stage times (no traces);
their FLOPs come from `predict`'s traces of the same batches.

Token pruning (`--only pruning`, beyond the paper): PoWER-BERT and LTP on the MiniLM model with a
controlled pruning pattern (`prune_setup`), pruned tokens packed out of the sequence, through
`predict_outputs`, against the same model run whole; `--per-layer` times each layer alone on the
states it runs on (the ceiling, as for HashEE). Batch 1: 12 instances one at a time.

Summarization (`--only summarization`): HashEE on the offline seq2seq model's encoder (minilm-seq2seq,
frequency hash fitted on the demo-en training sources) against the full model with the same weights,
per summary over the demo-en test sources (source length 64, greedy decoding): each generates exactly
16 tokens (min_length = max_length), so the decoders do the same work and the FLOPs speed-up is the
encoder's saving over the whole generation. Target: HashEE no slower per summary (wall x >= 1.0).

Before anything is timed glibc is told to keep freed memory, as the timing stage does
(`hashee.measure.timing.keep_freed_memory`; the first line printed says so).

Usage: python benchmarks/speed.py [--device cpu|cuda] [--repeats N] [--batch-sizes 32,1]
       [--only token|dynamic|pruning|summarization] [--per-layer]
Targets (docs/timing.md): (a) >= 0.95 at batch 32 and >= 0.85 at batch 1; (b) >= 1.0 at batch 32 and
>= 0.9 at batch 1; every instance-exit baseline >= 0.95 at both batch sizes; summarization HashEE no
slower per summary than the full model; token pruning >= 0.95 at batch 32 (issue 31).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import BertConfig, BertModel

from hashee.core.modeling import (
    EncoderConfig,
    TokenExitEncoder,
    encoder_flop_modules,
    encoder_traces,
    plan_layers,
)
from hashee.core.trace import ModuleCall
from hashee.measure.flops import FlopCounter
from hashee.measure.timing import keep_freed_memory

LENGTH = 128


def timed(fns, device, repeats):
    """Median seconds of each of `fns` (a dict name -> callable), the calls interleaved: every round
    runs each function once, in an order rotated from round to round, so a load change on a shared
    machine lands on every side of a ratio alike instead of on whichever ran during it."""
    names = list(fns)
    for _ in range(2):
        for name in names:
            fns[name]()
    samples = {name: [] for name in names}
    for round_number in range(repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fns[name]()
            if device.type == "cuda":
                torch.cuda.synchronize()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def hf_twin(encoder: TokenExitEncoder) -> BertModel:
    c = encoder.config
    hf = BertModel(BertConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_layers,
                              num_attention_heads=c.num_heads, intermediate_size=c.intermediate_size,
                              max_position_embeddings=c.max_position_embeddings, hidden_act=c.hidden_act),
                   add_pooling_layer=False)
    hf.load_state_dict({k: v for k, v in encoder.state_dict().items() if not k.startswith("pooler")}, strict=False)
    return hf


def measure(name, encoder, input_ids, exit_layers, device, repeats):
    encoder = encoder.to(device).eval()
    hf = hf_twin(encoder).to(device).eval()
    mask = torch.ones_like(input_ids)
    ids, mask, exits = input_ids.to(device), mask.to(device), exit_layers.to(device)
    with torch.inference_mode():
        out = encoder(ids, mask, None, exits)
        times = timed({"hashee": lambda: encoder(ids, mask, None, exits), "ours": lambda: encoder(ids, mask),
                       "hf": lambda: hf(input_ids=ids, attention_mask=mask)}, device, repeats)
    t_hashee, t_ours_full, t_hf_full = times["hashee"], times["ours"], times["hf"]
    hidden = encoder.config.hidden_size
    counter = FlopCounter(encoder_flop_modules(encoder.cpu()))
    hashee_flops = sum(counter.trace_flops(t) for t in encoder_traces(mask.cpu(), out.active_counts.cpu(), hidden, ()))
    full_counts = torch.full_like(out.active_counts.cpu(), LENGTH)
    full_flops = sum(counter.trace_flops(t) for t in encoder_traces(mask.cpu(), full_counts, hidden, ()))
    t_full = min(t_ours_full, t_hf_full)
    flops_speedup, wall_speedup = full_flops / hashee_flops, t_full / t_hashee
    print(f"{name:<34} batch {input_ids.shape[0]:>2}  FLOPs x{flops_speedup:.2f}  wall x{wall_speedup:.2f}  "
          f"ratio {wall_speedup / flops_speedup:.3f}   (full: hf {t_hf_full * 1e3:.1f} ms, ours {t_ours_full * 1e3:.1f} ms;"
          f" hashee {t_hashee * 1e3:.1f} ms)")
    return wall_speedup / flops_speedup


def per_layer(encoder, input_ids, exit_layers, repeats):
    """Each layer alone (CPU), on the same input states: its time with the case's active tokens
    against its time with every token, next to its FLOPs fraction; shows which layers lose time."""
    encoder = encoder.cpu().eval()
    key_mask = torch.ones_like(input_ids, dtype=torch.bool)
    levels = torch.arange(1, encoder.num_layers + 1).view(-1, 1, 1)
    stacked = key_mask.unsqueeze(0) & (exit_layers.unsqueeze(0) >= levels)
    plans, full_plan = plan_layers(stacked), plan_layers(key_mask.unsqueeze(0))[0]
    counter = FlopCounter(encoder_flop_modules(encoder))
    hidden_size, cpu = encoder.config.hidden_size, torch.device("cpu")
    measured = []  # per layer: (FLOPs, full FLOPs, time, full time)
    with torch.inference_mode():
        hidden = encoder.embeddings(input_ids)
        for number, (layer, active, plan) in enumerate(zip(encoder.encoder.layer, stacked, plans), start=1):
            times = timed({"exits": lambda layer=layer, active=active, plan=plan: layer(hidden, key_mask, active, plan),
                           "full": lambda layer=layer: layer(hidden, key_mask, key_mask, full_plan)}, cpu, repeats)
            name, batch = f"layer_{number}", input_ids.shape[0]
            flops = sum(counter.trace_flops((ModuleCall(name, (n, LENGTH, hidden_size)),))
                        for n in active.sum(dim=1).tolist())
            full_flops = batch * counter.trace_flops((ModuleCall(name, (LENGTH, LENGTH, hidden_size)),))
            print(f"    layer {number}: {plan.count:>5} active tokens  FLOPs {flops / full_flops:.3f} of full,"
                  f" time {times['exits'] / times['full']:.3f} of full ({times['exits'] * 1e3:.2f} ms vs"
                  f" {times['full'] * 1e3:.2f} ms)")
            measured.append((flops, full_flops, times["exits"], times["full"]))
    flops, full_flops, time_exits, time_full = map(sum, zip(*measured))
    flops_speedup, wall_speedup = full_flops / flops, time_full / time_exits
    # The whole encoder adds the same embeddings and head to both sides and the layer loop to the exits'
    # side, which only lowers its ratio: this is its ceiling with this GEMM library's speed at few rows.
    print(f"    layers alone: FLOPs x{flops_speedup:.2f}  time x{wall_speedup:.2f}  ratio {wall_speedup / flops_speedup:.3f}"
          f" (the whole encoder's ceiling on this device)")


def default_backbone_case(batch_size):
    from hashee.core.backbones import load_backbone
    from hashee.core.hashee_method import HashEE, encoder_hash_source
    from hashee.core.hashing import task_fitting_data
    from hashee.core.tasks import get_task
    from hashee.studies.elue.data import write_demo_data

    backbone = load_backbone("minilm")
    with tempfile.TemporaryDirectory() as tmp:
        write_demo_data(tmp, seed=0, size="small")
        ids, labels = task_fitting_data(get_task("SST-2"), tmp, backbone.tokenizer, LENGTH)
        token_hash = HashEE({"hash": "frequency", "layers": "6", "buckets": "6"}).fit_hash(
            ids, labels, encoder_hash_source(backbone), 0)
        from hashee.core.data import read_split
        texts = [ex.text_a for ex in read_split(get_task("SST-2"), f"{tmp}/SST-2/dev.tsv")]
    tok = backbone.tokenizer
    stream = [t for text in texts for t in tok(text, add_special_tokens=False)["input_ids"]]
    rows = []
    for i in range(batch_size):  # fill each instance to exactly 128 tokens: [CLS] ... [SEP]
        start = (i * (LENGTH - 2)) % max(1, len(stream) - LENGTH)
        rows.append([tok.cls_token_id] + stream[start:start + LENGTH - 2] + [tok.sep_token_id])
    ids = torch.tensor(rows)
    return backbone.build_encoder(), ids, token_hash.assign(ids)


def even_spread_case(batch_size):
    torch.manual_seed(0)
    encoder = TokenExitEncoder(EncoderConfig(num_layers=6))
    ids = torch.randint(1000, 30000, (batch_size, LENGTH))
    generator = torch.Generator().manual_seed(0)
    exits = torch.stack([torch.randperm(LENGTH, generator=generator) % 6 + 1 for _ in range(batch_size)])
    exits[:, 0] = exits[:, -1] = 6  # [CLS] and [SEP] exit last
    return encoder, ids, exits


def benchmark_inputs(batch_size):
    """`batch_size` instances of exactly LENGTH tokens of demo text ([CLS] ... [SEP])."""
    _, ids, _ = default_backbone_case(batch_size)
    return ids


def force_exits(method, targets, start):
    """Make a multi-exit method exit instance i after layer targets[i], through its own loop; the
    batch being run holds instances start[0], start[0] + 1, ..."""
    base_init = method.init_exit_state

    def init_exit_state(task, batch_size, device):
        return {**base_init(task, batch_size, device), "forced": targets[start[0]:start[0] + batch_size].to(device)}

    method.init_exit_state = init_exit_state
    method.exit_decision = lambda task, outputs, layer, state, inference: state["forced"] <= layer
    return method


def dynamic_ratios(batch_size, device, repeats):
    from hashee.core.backbones import load_backbone
    from hashee.core.methods import get_method
    from hashee.core.tasks import get_task

    backbone = load_backbone("minilm")
    layers = backbone.config.num_layers
    count = batch_size if batch_size > 1 else 2 * layers  # batch 1: instances one at a time
    ids = benchmark_inputs(count)
    whole = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    batches = [{k: v[i:i + batch_size] for k, v in whole.items()} for i in range(0, count, batch_size)]
    task = get_task("SNLI")
    targets = torch.arange(count) % layers + 1  # exits spread evenly over the layers
    start = [0]  # first instance of the batch being run (force_exits reads it)
    ratios = []
    for name in ("deebert", "fastbert", "pabee", "berxit", "elasticbert-entropy", "elasticbert-patience"):
        method = get_method(name, "layers=6")
        torch.manual_seed(0)
        model = method.build(backbone.config, task)
        method.init_from_backbone(model, backbone)
        first = method.inference_settings()[0]
        full = force_exits(get_method(name, "layers=6"), torch.full_like(targets, layers), start)
        forced = force_exits(method, targets, start)
        # `full` and `forced` share the model; only the exit pattern differs.
        ratios.append(_compare(name, full, forced, model, batches, first, device, repeats, start))
    method = get_method("cascadebert", "layers=6,small_layers=2")
    torch.manual_seed(0)
    model = method.build(backbone.config, task)
    method.init_from_backbone(model, backbone)
    model.eval()  # the median must be of the confidences predict() will see: no dropout
    with torch.inference_mode():
        small_logits, _ = model.models[0](whole["input_ids"], whole["attention_mask"], whole["token_type_ids"])
    median = torch.softmax(small_logits, -1).max(-1).values.median().item()
    ratios.append(_cascade(method, model, batches, median, device, repeats))
    return ratios


def _run_all(fn, batches, start=None):
    """fn(batch) over every batch in order; returns the traces of all instances."""
    traces = []
    for number, batch in enumerate(batches):
        if start is not None:
            start[0] = number * batch["input_ids"].shape[0]
        traces += fn(batch)
    return traces


def _compare(name, full_method, fast_method, model, batches, inference, device, repeats, start):
    counter = FlopCounter(fast_method.flop_modules(model.cpu()))
    model.to(device).eval()
    batches = [{k: v.to(device) for k, v in batch.items()} for batch in batches]

    def run(method):
        return _run_all(lambda batch: method.predict(model, batch, inference).traces, batches, start)

    def run_untraced(method):  # what the timing stage times
        def call(batch):
            method.predict_outputs(model, batch, inference)
            return []

        return _run_all(call, batches, start)

    with torch.inference_mode():
        fast, full = run(fast_method), run(full_method)
        times = timed({"fast": lambda: run_untraced(fast_method), "full": lambda: run_untraced(full_method)},
                      device, repeats)
    t_fast, t_full = times["fast"], times["full"]
    return _report(name, batches, counter, full, fast, t_full, t_fast)


def _cascade(method, model, batches, threshold, device, repeats):
    from hashee.core.modeling import encoder_traces

    counter = FlopCounter(method.flop_modules(model.cpu()))
    large = model.models[-1].to(device).eval()
    model.to(device).eval()
    batches = [{k: v.to(device) for k, v in batch.items()} for batch in batches]
    inference = {method.sweep_key: repr(threshold)}  # unrounded: the confidences may differ by < 1e-4
    hidden = large.bert.config.hidden_size

    def run_large(batch):
        _, out = large(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        return [tuple(c.__class__(f"m2.{c.name}", c.shape) for c in trace)
                for trace in encoder_traces(batch["attention_mask"].cpu(), out.active_counts.cpu(), hidden)]

    def run_cascade(batch):
        return method.predict(model, batch, inference).traces

    def run_cascade_untraced(batch):  # what the timing stage times
        method.predict_outputs(model, batch, inference)
        return []

    with torch.inference_mode():
        fast, full = _run_all(run_cascade, batches), _run_all(run_large, batches)
        times = timed({"fast": lambda: _run_all(run_cascade_untraced, batches),
                       "full": lambda: _run_all(run_large, batches)}, device, repeats)
    t_fast, t_full = times["fast"], times["full"]
    return _report("cascadebert (half passed on)", batches, counter, full, fast, t_full, t_fast)


def _report(name, batches, counter, full_traces, fast_traces, t_full, t_fast):
    flops_speedup = sum(map(counter.trace_flops, full_traces)) / sum(map(counter.trace_flops, fast_traces))
    wall_speedup = t_full / t_fast
    print(f"{name:<34} batch {batches[0]['input_ids'].shape[0]:>2}  FLOPs x{flops_speedup:.2f}  wall x{wall_speedup:.2f}  "
          f"ratio {wall_speedup / flops_speedup:.3f}   (full {t_full * 1e3:.1f} ms, early exits {t_fast * 1e3:.1f} ms)")
    return wall_speedup / flops_speedup


def prune_setup(name, model):
    """A controlled pruning pattern on the MiniLM model: PoWER-BERT keeps a fraction 1 - j/L of the
    non-[CLS] tokens after layer j; LTP keeps the tokens above its initial thresholds (final threshold
    0.01, rising linearly over the layers), on this text."""
    layers = model.bert.num_layers
    with torch.no_grad():
        if name == "powerbert":
            model.pruner.retention.copy_((1 - torch.arange(1, layers, dtype=torch.float32) / layers).unsqueeze(1)
                                         .expand_as(model.pruner.retention))
        model.pruner.searched.fill_(True)


def pruning_ratios(batch_size, device, repeats, per_layer_too):
    """PoWER-BERT and LTP (token pruning, pruned tokens packed out of the sequence) against the same
    model run whole (the plain encoder, what the static model runs), through `predict_outputs`."""
    from hashee.core.backbones import load_backbone
    from hashee.core.methods import get_method
    from hashee.core.tasks import get_task

    backbone = load_backbone("minilm")
    count = batch_size if batch_size > 1 else 2 * backbone.config.num_layers  # batch 1: one at a time
    ids = benchmark_inputs(count)
    whole = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    batches = [{k: v[i:i + batch_size] for k, v in whole.items()} for i in range(0, count, batch_size)]
    ratios = []
    for name in ("powerbert", "ltp"):
        method = get_method(name, "layers=6")
        torch.manual_seed(0)
        model = method.build(backbone.config, get_task("SNLI"))
        method.init_from_backbone(model, backbone)
        model.eval()
        prune_setup(name, model)
        ratios.append(_pruning_case(name, method, model, batches, device, repeats, per_layer_too))
    return ratios


def _pruning_case(name, method, model, batches, device, repeats, per_layer_too):
    from hashee.core.methods import get_method

    static = get_method("static", "layers=6")
    inference = method.inference_settings()[0]
    counter = FlopCounter(method.flop_modules(model))
    model.to(device)
    on_device = [{k: v.to(device) for k, v in batch.items()} for batch in batches]
    with torch.inference_mode():
        fast = _run_all(lambda batch: method.predict(model, batch, inference).traces, on_device)
        full = _run_all(lambda batch: static.predict(model, batch, {}).traces, on_device)
        times = timed({"fast": lambda: [method.predict_outputs(model, b, inference) for b in on_device],
                       "full": lambda: [static.predict_outputs(model, b, {}) for b in on_device]}, device, repeats)
    ratio = _report(f"{name} (tokens pruned)", batches, counter, full, fast, times["full"], times["fast"])
    if per_layer_too:
        pruning_per_layer(method, model.cpu(), batches[0], inference, counter, repeats)
    return ratio


def pruning_per_layer(method, model, batch, inference, counter, repeats):
    """Each layer alone (CPU) on the tokens it runs on when pruning (what `pruned_forward` runs at inference:
    `packed_layer` over the real tokens, with the attention they receive but in the last layer) against
    the plain layer on every token; the ceiling of the whole pruned encoder's ratio (which adds the
    decisions and the row copies between layers)."""
    from hashee.core.modeling import kept_rows, packed_layer

    cpu, hidden_size = torch.device("cpu"), model.bert.config.hidden_size
    full_mask = batch["attention_mask"].bool()
    rule = method.hard_rule(model, batch["attention_mask"], inference)
    measured = []
    with torch.inference_mode():
        full_hidden = model.bert.embeddings(batch["input_ids"])
        states, key_mask = kept_rows(full_hidden, full_mask)
        layers = list(model.bert.encoder.layer)
        for number, layer in enumerate(layers, start=1):
            last = number == len(layers)
            def run(layer=layer, states=states, key_mask=key_mask, with_received=not last):
                return packed_layer(layer, states, key_mask, with_received=with_received)

            times = timed({"pruned": run, "full": lambda layer=layer: layer(full_hidden, full_mask)}, cpu, repeats)
            lengths = key_mask.sum(dim=1).tolist()
            flops = sum(counter.trace_flops((ModuleCall(f"layer_{number}", (n, n, hidden_size)),)) for n in lengths)
            full_flops = len(lengths) * counter.trace_flops((ModuleCall(f"layer_{number}", (LENGTH, LENGTH, hidden_size)),))
            print(f"    layer {number}: {sum(lengths):>5} tokens  FLOPs {flops / full_flops:.3f} of full,"
                  f" time {times['pruned'] / times['full']:.3f} of full")
            measured.append((flops, full_flops, times["pruned"], times["full"]))
            if not last:
                states, received = packed_layer(layer, states, key_mask)
                keep = rule(number, received, key_mask) & key_mask
                states, key_mask = kept_rows(states, keep, key_mask)
    flops, full_flops, t_pruned, t_full = map(sum, zip(*measured))
    print(f"    layers alone: FLOPs x{full_flops / flops:.2f}  time x{t_full / t_pruned:.2f}  ratio "
          f"{(t_full / t_pruned) / (full_flops / flops):.3f} (the whole pruned encoder's ceiling on this device)")


SUMMARY_SOURCE_LENGTH, SUMMARY_TOKENS = 64, 16


def summarization_ratio(batch_size, device, repeats):
    """HashEE's encoder exits in generation, per summary, against the full model (see the module docstring)."""
    from hashee.studies.summarization.cost import generation_costs
    from hashee.studies.summarization.data import load_split, write_demo
    from hashee.studies.summarization.methods import SUMM_METHODS, seq2seq_hash_source
    from hashee.studies.summarization.modeling import OFFLINE_SEQ2SEQ, load_into, load_seq2seq_backbone

    backbone = load_seq2seq_backbone(OFFLINE_SEQ2SEQ)
    tokenizer = backbone.tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        write_demo(tmp, seed=0, size="small")
        train, test = (load_split("demo-en", f"{tmp}/demo-en", split) for split in ("train", "test"))
    full, hashee = SUMM_METHODS.get("full"), SUMM_METHODS.get("hashee", "hash=frequency,buckets=6")
    train_ids = [tokenizer(e.source, truncation=True, max_length=SUMMARY_SOURCE_LENGTH)["input_ids"] for e in train]
    model = full.build(backbone.encoder_config, backbone.decoder_config)
    load_into(model, backbone)
    hashee.attach_hash(model, hashee.fit_hash(train_ids, [], seq2seq_hash_source(backbone), seed=0))
    model = model.to(device).eval()
    sources = [e.source for e in test]
    batches = []
    for start in range(0, len(sources), batch_size):
        encoded = tokenizer(sources[start:start + batch_size], truncation=True, max_length=SUMMARY_SOURCE_LENGTH,
                            padding=True, return_tensors="pt")
        batches.append({"input_ids": encoded["input_ids"].to(device), "attention_mask": encoded["attention_mask"].to(device)})
    decoding = {"num_beams": 1, "max_length": SUMMARY_TOKENS + 1, "min_length": SUMMARY_TOKENS + 1}

    def run(method):
        return [method.generate(model, batch, decoding) for batch in batches]

    with torch.inference_mode():
        outputs = {name: run(method) for name, method in (("full", full), ("hashee", hashee))}
        times = timed({name: (lambda method=method: run(method)) for name, method in (("full", full), ("hashee", hashee))},
                      device, repeats)
    flops = {}
    for name, generated in outputs.items():
        rows = [row for batch, out in zip(batches, generated)
                for row in generation_costs(model, batch["attention_mask"].cpu(), out, tokenizer.pad_token_id)]
        assert all(n == SUMMARY_TOKENS for _, _, n in rows), "every summary should have the same length"
        flops[name] = sum(enc + dec for enc, dec, _ in rows)
    flops_speedup, wall_speedup = flops["full"] / flops["hashee"], times["full"] / times["hashee"]
    per_summary = {name: seconds * 1e3 / len(sources) for name, seconds in times.items()}
    print(f"{'(c) summarization, HashEE encoder':<34} batch {batch_size:>2}  FLOPs x{flops_speedup:.2f}  "
          f"wall x{wall_speedup:.2f}  ratio {wall_speedup / flops_speedup:.3f}   (per summary: full "
          f"{per_summary['full']:.1f} ms, hashee {per_summary['hashee']:.1f} ms; {len(sources)} summaries of "
          f"{SUMMARY_TOKENS} tokens)")
    return wall_speedup


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch-sizes", default="32,1")
    parser.add_argument("--only", choices=["token", "dynamic", "pruning", "summarization"], default=None)
    parser.add_argument("--per-layer", action="store_true",
                        help="after each token-exit case, time every layer alone (CPU) against the full layer")
    args = parser.parse_args()
    device = torch.device(args.device)
    kept = keep_freed_memory()  # as the timing stage does (hashee time)
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} length={LENGTH} "
          f"freed memory {'kept' if kept else 'returned'}")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.only in (None, "token"):
        for batch_size in batch_sizes:
            for name, case, targets in [("(a) MiniLM-L6 + frequency hash", default_backbone_case, (0.95, 0.85)),
                                        ("(b) 6L-768, tokens spread evenly", even_spread_case, (1.0, 0.9))]:
                encoder, ids, exits = case(batch_size)
                ratio = measure(name, encoder, ids, exits, device, args.repeats)
                target = targets[0] if batch_size > 1 else targets[1]
                print(f"    -> ratio {ratio:.3f}, target >= {target}: {'met' if ratio >= target else 'NOT met'}")
                if args.per_layer:
                    per_layer(encoder, ids, exits, args.repeats)
    if args.only in (None, "dynamic"):
        for batch_size in batch_sizes:
            ratios = dynamic_ratios(batch_size, device, args.repeats)
            print(f"instance exits, batch {batch_size}: min ratio {min(ratios):.3f} (target >= 0.95: "
                  f"{'met' if min(ratios) >= 0.95 else 'NOT met'})")

    if args.only in (None, "pruning"):
        for batch_size in batch_sizes:
            ratios = pruning_ratios(batch_size, device, args.repeats, args.per_layer)
            target = f"target >= 0.95: {'met' if min(ratios) >= 0.95 else 'NOT met'}" if batch_size > 1 else "no target"
            print(f"token pruning, batch {batch_size}: min ratio {min(ratios):.3f} ({target})")

    if args.only in (None, "summarization"):
        for batch_size in batch_sizes:
            wall_speedup = summarization_ratio(batch_size, device, args.repeats)
            print(f"    -> HashEE {wall_speedup:.2f}x the full model's speed per summary (target >= 1.0: "
                  f"{'met' if wall_speedup >= 1.0 else 'NOT met'})")


if __name__ == "__main__":
    main()
