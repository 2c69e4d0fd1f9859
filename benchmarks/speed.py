"""Realized wall-clock speed-up vs FLOPs speed-up of token exits, measured in one run.

For each configuration and batch size (length 128), on the same weights and the same batch:
  flops_speedup = FLOPs(full encoder) / FLOPs(HashEE)      (fvcore, ELUE convention)
  wall_speedup  = time(full encoder)  / time(HashEE)       (median over repeats)
  ratio         = wall_speedup / flops_speedup             (1.0 = every saved FLOP is saved time)
"full encoder" time is the faster of transformers' BertModel and our encoder with no exits, so
packing overhead is never hidden behind a slow baseline.

  (a) the offline default backbone (MiniLM-L6-H384) with the frequency hash fitted on demo SST-2;
  (b) a 6-layer, hidden-768 encoder with tokens spread evenly over the 6 layers (special tokens last).

Usage: python benchmarks/speed.py [--device cpu|cuda] [--repeats N] [--batch-sizes 32,1]
Targets (issue 3): ratio >= 0.95 on CPU, >= 0.85 on GPU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import BertConfig, BertModel

from hashee.flops import FlopCounter
from hashee.modeling import EncoderConfig, TokenExitEncoder, encoder_flop_modules, encoder_traces

LENGTH = 128


def timed(fn, device, repeats):
    for _ in range(2):
        fn()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


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
        t_hashee = timed(lambda: encoder(ids, mask, None, exits), device, repeats)
        t_ours_full = timed(lambda: encoder(ids, mask), device, repeats)
        t_hf_full = timed(lambda: hf(input_ids=ids, attention_mask=mask), device, repeats)
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


def default_backbone_case(batch_size):
    from hashee.backbones import load_backbone
    from hashee.cli import fit_hash_for
    from hashee.demo_data import write_demo_data
    from hashee.tasks import get_task

    backbone = load_backbone("minilm")
    with tempfile.TemporaryDirectory() as tmp:
        write_demo_data(tmp, seed=0, size="small")
        token_hash = fit_hash_for(get_task("SST-2"), backbone, "frequency", 6, 6, 0, tmp, LENGTH)
        from hashee.data import read_split
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch-sizes", default="32,1")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} length={LENGTH}")
    ratios = []
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        for name, case in [("(a) MiniLM-L6 + frequency hash", default_backbone_case),
                           ("(b) 6L-768, tokens spread evenly", even_spread_case)]:
            encoder, ids, exits = case(batch_size)
            ratios.append(measure(name, encoder, ids, exits, device, args.repeats))
    target = 0.95 if device.type == "cpu" else 0.85
    print(f"min ratio {min(ratios):.3f} (target >= {target} on {device.type})")


if __name__ == "__main__":
    main()
