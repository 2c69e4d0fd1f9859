"""Summarization methods: the full model, the truncated model (BART-6L / CPT-6L), HashEE on the
encoder, and DAT on the decoder. Each is a `hashee.core.methods.Method` (its settings handling, its class
facts such as `needs_fitted_hash`, its `prepare` hook; `stages()` for the one trainer
`hashee.core.training.train`) with generation instead of classification, in a registry of its own:
the names overlap with the ELUE methods'.

Settings (the `setting` wildcard):
- full: none.  truncated: enc_layers=N,dec_layers=M (first N encoder / M decoder layers).
- hashee: hash=<one of the five>,buckets=B — each source token exits at its hashed encoder layer.
- dat: threshold=T — a decoder token halts at the first exit whose max probability >= T.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.methods import Method, Stage
from hashee.core.settings import parse_setting
from hashee.studies.summarization.modeling import Seq2SeqModel, dat_generate

REGISTRY: dict[str, type[SummMethod]] = {}


def register(cls):
    REGISTRY[cls.name] = cls
    return cls


def get_summ_method(name: str, setting: str | dict = "") -> SummMethod:
    if name not in REGISTRY:
        raise unknown_name("summarization method", name, REGISTRY)
    return REGISTRY[name](parse_setting(setting) if isinstance(setting, str) else dict(setting))


@dataclass
class Generated:
    sequences: torch.Tensor  # (B, T) decoder start token first, padded after the end
    encoder_counts: torch.Tensor  # (B, L_enc) source tokens each encoder layer processed
    decoder_exits: torch.Tensor | None = None  # DAT: (B, T-1) exit layer per generated token, 0 = none


class SummMethod(Method):
    """Settings, class facts and `prepare` as every `Method`; the model is a `Seq2SeqModel`, built from
    an encoder config and BART decoder config fields (no task: the output is text)."""

    dat_exits = False  # does the model carry DAT's exit classifiers
    greedy_only = False  # True: generate() ignores beam search (summ-evaluate warns when beams are asked for)

    # layers of the backbone the model keeps (None: all)
    enc_layers = property(lambda self: None)
    dec_layers = property(lambda self: None)

    def build(self, encoder_config, decoder_config) -> Seq2SeqModel:
        return Seq2SeqModel(encoder_config, decoder_config, dat_exits=self.dat_exits)

    def exit_layers(self, model, input_ids):  # (B, S) 1-based encoder exit layer per token, or None
        return None

    def loss(self, model, batch):
        return model.loss(batch["input_ids"], batch["attention_mask"], batch["labels"],
                          self.exit_layers(model, batch["input_ids"]))

    def stages(self, model, params) -> list[Stage]:
        return [Stage("finetune", lambda m: m.parameters(), self.loss, params.epochs, params.lr, params.warmup,
                      params.weight_decay)]

    @torch.no_grad()
    def generate(self, model, batch, decoding: dict) -> Generated:
        from transformers.modeling_outputs import BaseModelOutput

        enc = model.encode(batch["input_ids"], batch["attention_mask"], self.exit_layers(model, batch["input_ids"]))
        sequences = model.bart.generate(encoder_outputs=BaseModelOutput(last_hidden_state=enc.last_hidden_state),
                                        attention_mask=batch["attention_mask"], do_sample=False, **decoding)
        return Generated(sequences, enc.active_counts)

    def save_extras(self, model, directory) -> None:
        pass

    def load_extras(self, model, directory, tokenizer) -> None:
        pass


@register
class Full(SummMethod):
    """The whole pretrained model, fine-tuned (BART / CPT in the paper's table)."""

    name = "full"


@register
class Truncated(SummMethod):
    """The first enc_layers encoder and dec_layers decoder layers (BART-6L / CPT-6L)."""

    name = "truncated"
    setting_defaults = {"enc_layers": "6", "dec_layers": "6"}
    enc_layers = property(lambda self: self.int_setting("enc_layers"))
    dec_layers = property(lambda self: self.int_setting("dec_layers"))


@register
class HashEESeq2Seq(SummMethod):
    """HashEE on the encoder: each source token exits at its hashed layer; the decoder is unchanged."""

    name = "hashee"
    needs_fitted_hash = True  # the workflow's summ_fit_hash job; summ-train takes it as --hash-file
    setting_defaults = {"hash": "frequency", "buckets": "6"}

    def prepare(self, model, backbone, task, inputs) -> None:
        """The hash from `inputs.hash_file` (summ-fit-hash): unlike ELUE's, it is never fitted on the spot."""
        from hashee.core.hashing import TokenHash, vocab_fingerprint

        if not inputs.hash_file:
            raise HasheeError(f"summarization method {self.name} needs a hash file (--hash-file, from summ-fit-hash)")
        self.attach_hash(model, TokenHash.load(inputs.hash_file, vocab_fingerprint=vocab_fingerprint(backbone.tokenizer),
                                               vocab_size=backbone.encoder_config.vocab_size))

    def attach_hash(self, model, token_hash) -> None:
        token_hash.check_fits(self.settings["hash"], model.bert.num_layers)
        model.token_hash = token_hash

    def exit_layers(self, model, input_ids):
        token_hash = getattr(model, "token_hash", None)
        if token_hash is None:
            raise HasheeError("HashEE summarization model has no hash attached (missing hash.pt?)")
        generator = torch.default_generator if model.training and token_hash.name == "rand-incons" else None
        return token_hash.assign(input_ids.cpu(), generator=generator).to(input_ids.device)

    def save_extras(self, model, directory) -> None:
        model.token_hash.save(f"{directory}/hash.pt")

    def load_extras(self, model, directory, tokenizer) -> None:
        from pathlib import Path

        from hashee.core.hashing import TokenHash, vocab_fingerprint

        path = Path(directory) / "hash.pt"
        self.attach_hash(model, TokenHash.load(path, vocab_fingerprint=vocab_fingerprint(tokenizer),
                                               vocab_size=model.bert.config.vocab_size))


@register
class DAT(SummMethod):
    """Depth-adaptive decoder (Elbayad et al., 2020): exits on every decoder layer, trained "aligned"
    (every exit's loss, averaged), confidence-thresholded per-token halting, greedy decoding."""

    name = "dat"
    setting_defaults = {"threshold": "0.9"}
    dat_exits = True
    greedy_only = True  # its halting is per token of one hypothesis

    @property
    def threshold(self) -> float:
        try:
            return float(self.settings["threshold"])
        except ValueError:
            raise HasheeError(f"method dat: setting threshold={self.settings['threshold']!r} is not a number") from None

    def loss(self, model, batch):
        return model.dat_loss(batch["input_ids"], batch["attention_mask"], batch["labels"])

    @torch.no_grad()
    def generate(self, model, batch, decoding: dict) -> Generated:
        enc = model.encode(batch["input_ids"], batch["attention_mask"])
        sequences, exits = dat_generate(model, enc.last_hidden_state, batch["attention_mask"], self.threshold,
                                        max_length=decoding["max_length"], min_length=decoding.get("min_length", 0),
                                        no_repeat_ngram_size=decoding.get("no_repeat_ngram_size", 0))
        return Generated(sequences, enc.active_counts, exits)
