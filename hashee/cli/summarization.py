"""`hashee summ-fit-hash | summ-train | summ-evaluate`: the summarization verbs the workflow calls.
Thin, as hashee/cli/elue.py: parse arguments, call the library, write outputs atomically."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from hashee.core.errors import HasheeError

ROW_COLUMNS = ["dataset", "backbone", "method", "setting", "seed", "split", "rouge1", "rouge2", "rougeL",
               "enc_gflops", "dec_gflops", "total_gflops", "gen_tokens", "truncated_sources", "time_s",
               "device", "n"]
UNUSED_BART_ENCODER = "bart.model.encoder."  # BART's own 0-layer encoder: ours runs instead


# ---------------------------------------------------------------- data -> features
def encode_split(examples, tokenizer, max_source: int, max_target: int, decoder_start: int):
    """Features for the trainer's collate: input_ids (source, truncated to max_source tokens), labels
    (max_target, -100 padded: the target without the decoder start token) and index. Returns
    (features, number of truncated sources, where the first one is)."""
    import torch

    # verbose=False: long sources are expected here; they are truncated and counted below.
    sources = tokenizer([ex.source for ex in examples], verbose=False)["input_ids"]
    targets = tokenizer([ex.target for ex in examples], verbose=False)["input_ids"]
    features, truncated = [], []
    for index, (ex, source, target) in enumerate(zip(examples, sources, targets)):
        if len(source) > max_source:  # keep the closing special token
            truncated.append(ex.where)
            source = source[: max_source - 1] + source[-1:]
        if target and target[0] == decoder_start:
            target = target[1:]
        if len(target) > max_target:
            target = target[: max_target - 1] + target[-1:]
        labels = torch.full((max_target,), -100, dtype=torch.long)
        labels[: len(target)] = torch.tensor(target, dtype=torch.long)
        features.append({"input_ids": source, "labels": labels, "index": index})
    return features, len(truncated), (truncated[0] if truncated else None)


def load_features(dataset, data_dir, split, tokenizer, max_source, max_target, decoder_start, limit=0):
    from hashee.studies.summarization.data import check_tokenizer, load_split

    examples = load_split(dataset, data_dir, split)
    if limit:
        examples = examples[:limit]
    check_tokenizer(dataset, tokenizer, examples)
    features, truncated, first = encode_split(examples, tokenizer, max_source, max_target, decoder_start)
    if truncated:
        print(f"warning: {dataset} {split}: {truncated} of {len(examples)} source(s) longer than "
              f"{max_source} tokens were truncated (first at {first})", file=sys.stderr)
    return examples, features, truncated


# ---------------------------------------------------------------- persistence
def save_model(directory, method, model, tokenizer, meta: dict) -> None:
    from hashee.core.checkpoint import write_checkpoint

    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith(UNUSED_BART_ENCODER)}
    write_checkpoint(directory, state, tokenizer,
                     {"method": method.name, "setting": method.setting_text(),
                      "encoder_config": model.bert.config.to_dict(),
                      "decoder_config": model.bart.config.to_dict(), **meta})
    method.save_extras(model, Path(directory))


def load_model(directory, device="cpu"):
    from transformers import AutoTokenizer

    from hashee.core.checkpoint import load_weights, read_meta
    from hashee.core.modeling import EncoderConfig
    from hashee.studies.summarization.methods import get_summ_method

    meta = read_meta(directory, "trained summarization model")
    method = get_summ_method(meta["method"], meta["setting"])
    model = method.build(EncoderConfig(**meta["encoder_config"]), meta["decoder_config"])
    load_weights(model, directory, meta["method"], unsaved_prefix=UNUSED_BART_ENCODER)
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    method.load_extras(model, directory, tokenizer)
    return method, model.to(device).eval(), tokenizer, meta


# ---------------------------------------------------------------- summ-fit-hash
def cmd_fit_hash(args) -> None:
    from hashee.core.hashing import HASH_NAMES, fit_hash, vocab_fingerprint
    from hashee.core.settings import parse_setting
    from hashee.studies.summarization.modeling import load_seq2seq_backbone

    if len(args.setting or []) != len(args.setting_out or []) or not args.setting:
        raise HasheeError("summ-fit-hash needs pairs of --setting S --setting-out FILE")
    backbone = load_seq2seq_backbone(args.backbone)  # all encoder layers: the hash needs the vocabulary
    tok = backbone.tokenizer
    start = backbone.decoder_config.get("decoder_start_token_id")
    ids = []
    for split in ("train", "dev"):  # never test
        _, features, _ = load_features(args.dataset, args.data_dir, split, tok, args.max_source_length, 8, start)
        ids += [f["input_ids"] for f in features]
    for setting, out in zip(args.setting, args.setting_out):
        fields = parse_setting(setting)
        name = fields.get("hash", "frequency")
        if name == "mi":
            raise HasheeError(f"setting {setting!r}: the mi hash needs class labels, which summarization lacks; "
                              f"use one of {', '.join(h for h in HASH_NAMES if h != 'mi')}")
        token_hash = fit_hash(name, ids, [], vocab_size=backbone.encoder_config.vocab_size,
                              num_layers=backbone.encoder_config.num_layers,
                              num_buckets=int(fields.get("buckets", 6)), special_ids=tuple(tok.all_special_ids),
                              seed=args.seed, fingerprint=vocab_fingerprint(tok),
                              word_embeddings=backbone.state_dict["bert.embeddings.word_embeddings.weight"])
        token_hash.save(out)
        print(f"fitted {name} hash for {args.dataset} ({token_hash.num_layers} encoder layers) -> {out}")


# ---------------------------------------------------------------- summ-train
def cmd_train(args) -> None:
    import torch

    from hashee.cli.common import resolve_device
    from hashee.core.data import make_loader
    from hashee.core.hashing import TokenHash, vocab_fingerprint
    from hashee.core.io import atomic_dir
    from hashee.core.training import TrainParams, seed_everything, train
    from hashee.studies.summarization.methods import get_summ_method
    from hashee.studies.summarization.modeling import load_into, load_seq2seq_backbone

    method = get_summ_method(args.method, args.setting)
    method.freeze_word_embeddings = args.freeze_word_embeddings
    device = resolve_device(args.device)
    params = TrainParams(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                         max_length=args.max_source_length, warmup=args.warmup, weight_decay=args.weight_decay,
                         clip=args.clip, checkpoint_every=args.checkpoint_every, seed=args.seed,
                         eval_batch_size=args.batch_size, precision=args.precision)
    backbone = load_seq2seq_backbone(args.backbone, method.enc_layers, method.dec_layers)
    tok = backbone.tokenizer
    seed_everything(args.seed)
    model = method.build(backbone.encoder_config, backbone.decoder_config)
    load_into(model, backbone)
    if args.method == "hashee":
        if not args.hash_file:
            raise HasheeError("summ-train --method hashee needs --hash-file (from summ-fit-hash)")
        method.attach_hash(model, TokenHash.load(args.hash_file, vocab_fingerprint=vocab_fingerprint(tok),
                                                 vocab_size=backbone.encoder_config.vocab_size))
    start = backbone.decoder_config.get("decoder_start_token_id")
    data = {split: load_features(args.dataset, args.data_dir, split, tok, args.max_source_length,
                                 args.max_target_length, start, args.max_train_examples if split == "train" else 0)[1]
            for split in ("train", "dev")}

    @torch.no_grad()
    def dev_score(model) -> float:  # teacher-forced dev loss, negated (the trainer keeps the highest)
        total, count = 0.0, 0
        for batch in make_loader(data["dev"], params.eval_batch_size, tok.pad_token_id):
            batch = {k: v.to(device) for k, v in batch.items()}
            total += float(method.loss(model, batch)) * len(batch["index"])
            count += len(batch["index"])
        return -total / count

    result = train(method, model, data["train"], data["dev"], params, args.workdir, tok.pad_token_id, device,
                   dev_score=dev_score, progress=not args.quiet)
    meta = {"dataset": args.dataset, "backbone": backbone.name, "family": backbone.family, "seed": args.seed,
            "max_source_length": args.max_source_length, "max_target_length": args.max_target_length,
            "train_params": params.to_dict(),
            "freeze_word_embeddings": args.freeze_word_embeddings, "dev_history": result.history, "best_dev_loss": -result.best_dev,
            "torch": torch.__version__}
    with atomic_dir(args.out) as tmp:
        save_model(tmp, method, model.cpu(), tok, meta)
    shutil.rmtree(args.workdir, ignore_errors=True)
    print(f"trained {method.name} [{method.setting_text()}] on {args.dataset}: best dev loss "
          f"{-result.best_dev:.3f} -> {args.out}")


# ---------------------------------------------------------------- summ-evaluate
class _Generator:
    """hashee.measure.timing's `method.predict` for generation: generates, keeps the latest outputs per batch."""

    def __init__(self, method, decoding):
        self.method, self.decoding, self.outputs = method, decoding, {}

    def predict(self, model, batch, inference):
        generated = self.method.generate(model, batch, self.decoding)
        self.outputs[int(batch["index"][0])] = (batch["attention_mask"].cpu(), generated)


def evaluate_split(method, model, tokenizer, features, decoding, batch_size, device, repeats, warmup):
    """(predicted texts, per-instance (enc, dec, tokens) costs, whole-generation seconds, device label)."""
    from hashee.measure.timing import time_inference
    from hashee.studies.summarization.cost import generation_costs

    runner = _Generator(method, decoding)
    timing = time_inference(runner, model, features, {}, batch_size, tokenizer.pad_token_id,
                            repeats=repeats, warmup=warmup, device=device)
    texts, costs = [], []
    for start in sorted(runner.outputs):
        mask, generated = runner.outputs[start]
        generated.sequences = generated.sequences.cpu()
        texts += tokenizer.batch_decode(generated.sequences, skip_special_tokens=True)
        costs += generation_costs(model, mask, generated, tokenizer.pad_token_id)
    return texts, costs, timing["pass_ms"] / 1000, timing["device"]


def cmd_evaluate(args) -> None:
    import pandas as pd

    from hashee.cli.common import resolve_device
    from hashee.core.io import atomic_dir, write_csv_atomic
    from hashee.studies.summarization.data import get_dataset
    from hashee.studies.summarization.rouge import rouge_scores

    device = resolve_device(args.device)
    method, model, tok, meta = load_model(args.model, device)
    dataset = meta["dataset"]
    language = get_dataset(dataset).language
    decoding = {"num_beams": args.num_beams, "length_penalty": args.length_penalty, "max_length": args.max_length,
                "min_length": args.min_length, "no_repeat_ngram_size": args.no_repeat_ngram_size,
                "early_stopping": args.early_stopping}
    if method.name == "dat" and args.num_beams > 1:
        print(f"warning: DAT decodes greedily (its halting is per token of one hypothesis); "
              f"--num-beams {args.num_beams} ignored", file=sys.stderr)
    start = meta["decoder_config"].get("decoder_start_token_id")
    rows, predictions = [], {}
    for split in args.splits.split(","):
        examples, features, truncated = load_features(dataset, args.data_dir, split, tok, meta["max_source_length"],
                                                      meta["max_target_length"], start)
        texts, costs, seconds, device_label = evaluate_split(method, model, tok, features, decoding, args.batch_size,
                                                             device, args.time_repeats, args.time_warmup)
        scores = rouge_scores(texts, [ex.target for ex in examples], language)
        n = len(costs)
        enc = sum(c[0] for c in costs) / n / 1e9
        dec = sum(c[1] for c in costs) / n / 1e9
        rows.append({"dataset": dataset, "backbone": meta["backbone"], "method": method.name,
                     "setting": method.setting_text(), "seed": meta["seed"], "split": split, **scores,
                     "enc_gflops": enc, "dec_gflops": dec, "total_gflops": enc + dec,
                     "gen_tokens": sum(c[2] for c in costs) / n, "truncated_sources": truncated,
                     "time_s": seconds, "device": device_label, "n": n})
        predictions[split] = pd.DataFrame({"where": [ex.where for ex in examples], "prediction": texts,
                                           "reference": [ex.target for ex in examples]})
    write_csv_atomic(args.out, pd.DataFrame(rows, columns=ROW_COLUMNS))
    if args.predictions:
        with atomic_dir(args.predictions) as tmp:
            for split, frame in predictions.items():
                frame.to_csv(tmp / f"{split}.tsv", sep="\t", index=False)
    if not args.quiet:
        print(pd.DataFrame(rows)[["dataset", "method", "setting", "split", "rouge1", "rouge2", "rougeL",
                                  "total_gflops", "time_s"]].to_string(index=False))


def cmd_run(args) -> None:
    cmd_train(args)
    args.model, args.out = args.out, args.rows
    cmd_evaluate(args)


# ---------------------------------------------------------------- parser
def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


def add_parsers(sub) -> None:
    p = sub.add_parser("summ-fit-hash", help="summarization: fit HashEE hashes on train+dev source tokens")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--backbone", default="minilm-seq2seq")
    p.add_argument("--setting", action="append", help="a hashee setting, e.g. hash=frequency,buckets=6 (repeatable)")
    p.add_argument("--setting-out", action="append", help="hash file for the --setting at the same position")
    p.add_argument("--max-source-length", type=int, default=512)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_fit_hash)

    p = sub.add_parser("summ-train", help="summarization: fine-tune a seq2seq method (best dev loss; resumable)")
    _train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("summ-evaluate", help="summarization: generate, ROUGE, FLOPs, wall-clock -> one row per split")
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    _evaluate_options(p)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("summ-run", help="summarization: summ-train, then summ-evaluate of its model, in one process "
                                        "(the workflow's job: start-up costs more than a small run)")
    _train_options(p)
    _evaluate_options(p)
    p.add_argument("--rows", required=True, help="summ-evaluate's --out")
    p.set_defaults(func=cmd_run)


def _evaluate_options(p) -> None:
    p.add_argument("--splits", default="test")
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--length-penalty", type=float, default=1.0)
    p.add_argument("--max-length", type=int, default=64, help="decoder tokens, the start token included")
    p.add_argument("--min-length", type=int, default=0)
    p.add_argument("--no-repeat-ngram-size", type=int, default=0)
    p.add_argument("--early-stopping", type=_bool, default=False)
    p.add_argument("--time-repeats", type=int, default=1,
                   help="timed whole-generation passes, median reported (the last pass's outputs are scored)")
    p.add_argument("--time-warmup", type=int, default=0, help="untimed generation passes first")
    p.add_argument("--predictions", default=None, help="directory for <split>.tsv (where, prediction, reference)")


def _train_options(p) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--method", required=True, help="full, truncated, hashee or dat")
    p.add_argument("--setting", default="")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--backbone", default="minilm-seq2seq")
    p.add_argument("--hash-file", default=None, help="hashee: a hash from summ-fit-hash")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-source-length", type=int, default=512)
    p.add_argument("--max-target-length", type=int, default=128)
    p.add_argument("--max-train-examples", type=int, default=0, help="first N training examples (0: all)")
    p.add_argument("--freeze-word-embeddings", action="store_true",
                   help="keep the shared word-embedding / LM-head matrix fixed (the CPU demo: it costs as much as the layers)")
    p.add_argument("--warmup", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
