"""A summarization run, as the `summ-*` verbs call it: fit hashes, train (the one trainer,
`hashee.core.training.train`, model selection on teacher-forced dev loss), save and load the model,
generate and score (ROUGE, per-instance FLOPs, whole-generation wall-clock) -> one row per split.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hashee.core.progress import DEFAULT_EVERY

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
    from hashee.studies.summarization.methods import SUMM_METHODS

    meta = read_meta(directory, "trained summarization model")
    method = SUMM_METHODS.get(meta["method"], meta["setting"])
    model = method.build(EncoderConfig(**meta["encoder_config"]), meta["decoder_config"])
    load_weights(model, directory, meta["method"], unsaved_prefix=UNUSED_BART_ENCODER)
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    method.load_extras(model, directory, tokenizer)
    return method, model.to(device).eval(), tokenizer, meta


# ---------------------------------------------------------------- hashes
def fit_hashes(dataset: str, data_dir, backbone_name: str, settings: list[str], outs: list, max_source_length: int,
               seed: int, buckets: int | None = None) -> list[str]:
    """Fit one HashEE hash per setting on the train + dev source tokens (never test) and save each
    to its out path; returns one line per hash saved. `buckets`: for settings that name none."""
    from hashee.studies.summarization.methods import SUMM_METHODS, HashEESeq2Seq, seq2seq_hash_source
    from hashee.studies.summarization.modeling import load_seq2seq_backbone

    backbone = load_seq2seq_backbone(backbone_name)  # all encoder layers: the hash needs the vocabulary
    start = backbone.decoder_config.get("decoder_start_token_id")
    ids = []
    for split in ("train", "dev"):  # never test
        _, features, _ = load_features(dataset, data_dir, split, backbone.tokenizer, max_source_length, 8, start)
        ids += [f["input_ids"] for f in features]
    source = seq2seq_hash_source(backbone)
    done = []
    for setting, out in zip(settings, outs):
        token_hash = SUMM_METHODS.get(HashEESeq2Seq.name, setting).fit_hash(ids, [], source, seed, buckets=buckets)
        token_hash.save(out)
        done.append(f"fitted {token_hash.name} hash for {dataset} ({token_hash.num_layers} encoder layers) -> {out}")
    return done


# ---------------------------------------------------------------- train
def train_summarizer(method_name: str, setting: str, dataset: str, data_dir, backbone_name: str, params, *,
                     max_target_length: int, max_train_examples: int, hash_file, workdir, out, device,
                     progress: bool = True, progress_every: float | None = DEFAULT_EVERY):
    """Train a summarization method (source length: `params.max_length`), save the best-dev-loss model
    to `out` (atomically) and remove the resume checkpoints. Returns (method, best dev loss)."""
    import shutil

    import torch

    from hashee.core.data import make_loader
    from hashee.core.io import atomic_dir
    from hashee.core.methods import TrainingInputs
    from hashee.core.training import seed_everything, train
    from hashee.studies.summarization.methods import SUMM_METHODS
    from hashee.studies.summarization.modeling import load_into, load_seq2seq_backbone

    method = SUMM_METHODS.get(method_name, setting)
    backbone = load_seq2seq_backbone(backbone_name, method.enc_layers, method.dec_layers)
    tok = backbone.tokenizer
    seed_everything(params.seed)
    model = method.build(backbone.encoder_config, backbone.decoder_config)
    load_into(model, backbone)
    method.prepare(model, backbone, None, TrainingInputs(data_dir=str(data_dir), seed=params.seed,
                                                         max_length=params.max_length, hash_file=hash_file))
    start = backbone.decoder_config.get("decoder_start_token_id")
    data = {split: load_features(dataset, data_dir, split, tok, params.max_length, max_target_length, start,
                                 max_train_examples if split == "train" else 0)[1]
            for split in ("train", "dev")}

    @torch.no_grad()
    def dev_score(model) -> float:  # teacher-forced dev loss, negated (the trainer keeps the highest)
        total, count = 0.0, 0
        for batch in make_loader(data["dev"], params.eval_batch_size, tok.pad_token_id):
            batch = {k: v.to(device) for k, v in batch.items()}
            total += float(method.loss(model, batch)) * len(batch["index"])
            count += len(batch["index"])
        return -total / count

    result = train(method, model, data["train"], data["dev"], params, workdir, tok.pad_token_id, device,
                   dev_score=dev_score, progress=progress, progress_every=progress_every)
    meta = {"dataset": dataset, "backbone": backbone.name, "family": backbone.family, "seed": params.seed,
            "max_source_length": params.max_length, "max_target_length": max_target_length,
            "train_params": params.to_dict(), "freeze_word_embeddings": params.freeze_word_embeddings,
            "dev_history": result.history, "best_dev_loss": -result.best_dev, "torch": torch.__version__}
    with atomic_dir(out) as tmp:
        save_model(tmp, method, model.cpu(), tok, meta)
    shutil.rmtree(workdir, ignore_errors=True)
    return method, -result.best_dev


# ---------------------------------------------------------------- evaluate
class _Generator:
    """hashee.measure.timing's `method.predict` for generation: generates, keeps the latest outputs per batch."""

    def __init__(self, method, decoding):
        self.method, self.decoding, self.outputs = method, decoding, {}

    def predict(self, model, batch, inference):
        generated = self.method.generate(model, batch, self.decoding)
        self.outputs[int(batch["index"][0])] = (batch["attention_mask"].cpu(), generated)


def generate_split(method, model, tokenizer, features, decoding, batch_size, device, repeats, warmup):
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


def evaluate_summarizer(model_dir, data_dir, out, *, splits, decoding: dict, batch_size: int, device,
                        time_repeats: int = 1, time_warmup: int = 0, predictions=None):
    """Generate for each split, score ROUGE, cost and time it: one row per split (`RUN_COLUMNS`) into the
    CSV `out`, and `<split>.tsv` (where, prediction, reference) into the folder `predictions`. Returns the rows."""
    import pandas as pd

    from hashee.core.io import atomic_dir, write_csv_atomic
    from hashee.studies.summarization.data import get_dataset
    from hashee.studies.summarization.rouge import rouge_scores
    from hashee.studies.summarization.table import RUN_COLUMNS

    method, model, tok, meta = load_model(model_dir, device)
    dataset = meta["dataset"]
    language = get_dataset(dataset).language
    if method.greedy_only and decoding["num_beams"] > 1:
        print(f"warning: method {method.name} decodes greedily; "
              f"--num-beams {decoding['num_beams']} ignored", file=sys.stderr)
    start = meta["decoder_config"].get("decoder_start_token_id")
    rows, texts_by_split = [], {}
    for split in splits:
        examples, features, truncated = load_features(dataset, data_dir, split, tok, meta["max_source_length"],
                                                      meta["max_target_length"], start)
        texts, costs, seconds, device_label = generate_split(method, model, tok, features, decoding, batch_size,
                                                             device, time_repeats, time_warmup)
        scores = rouge_scores(texts, [ex.target for ex in examples], language)
        n = len(costs)
        enc = sum(c[0] for c in costs) / n / 1e9
        dec = sum(c[1] for c in costs) / n / 1e9
        rows.append({"dataset": dataset, "backbone": meta["backbone"], "method": method.name,
                     "setting": method.setting_text(), "seed": meta["seed"], "split": split, **scores,
                     "enc_gflops": enc, "dec_gflops": dec, "total_gflops": enc + dec,
                     "gen_tokens": sum(c[2] for c in costs) / n, "truncated_sources": truncated,
                     "time_s": seconds, "device": device_label, "n": n})
        texts_by_split[split] = pd.DataFrame({"where": [ex.where for ex in examples], "prediction": texts,
                                              "reference": [ex.target for ex in examples]})
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
    write_csv_atomic(out, frame)
    if predictions:
        with atomic_dir(predictions) as tmp:
            for split, texts in texts_by_split.items():
                texts.to_csv(tmp / f"{split}.tsv", sep="\t", index=False)
    return frame
