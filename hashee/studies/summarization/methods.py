"""Summarization methods: the full model, the truncated model (BART-6L / CPT-6L), HashEE on the
encoder, and DAT on the decoder. Each is a `hashee.core.methods.Method` (its settings handling, its class
facts such as `needs_fitted_hash`, its `prepare` hook; `stages()` for the one trainer
`hashee.core.training.train`) with generation instead of classification, in a registry of its own:
the names overlap with the ELUE methods' (`SUMM_METHODS`, a `hashee.core.methods.Registry`).

Settings (the `setting` wildcard):
- full: none.  truncated: enc_layers=N,dec_layers=M (first N encoder / M decoder layers).
- hashee: hash=<one of the five>,buckets=B — each source token exits at its hashed encoder layer.
- dat: threshold=T — a decoder token halts at the first exit whose max probability >= T.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hashee.core.errors import HasheeError
from hashee.core.hashee_method import HashSource, TokenHashExits
from hashee.core.methods import Method, Registry, Stage
from hashee.studies.summarization.modeling import Seq2SeqModel, dat_generate

# The summarization methods: the ELUE registry's mechanism (hashee.core.methods.Registry), a registry of its own.
SUMM_METHODS = Registry("summarization method")
register = SUMM_METHODS.register


@dataclass
class Generated:
    sequences: torch.Tensor  # (B, T) decoder start token first, padded after the end
    encoder_counts: torch.Tensor  # (B, L_enc) source tokens each encoder layer processed
    decoder_exits: torch.Tensor | None = None  # DAT: (B, T-1) exit layer per generated token, 0 = none


class SummMethod(Method):
    """Settings, class facts and `prepare` as every `Method`; the model is a `Seq2SeqModel`, built from
    an encoder config and BART decoder config fields (no task: the output is text)."""

    dat_exits = False  # does the model carry DAT's exit classifiers
    greedy_only = False  # True: generate() ignores beam search (evaluation warns when beams are asked for)

    # layers of the backbone the model keeps (None: all)
    enc_layers = property(lambda self: None)
    dec_layers = property(lambda self: None)

    def build(self, encoder_config, decoder_config) -> Seq2SeqModel:
        return Seq2SeqModel(encoder_config, decoder_config, dat_exits=self.dat_exits)

    def exit_layers(self, model, input_ids, generator=None):  # (B, S) 1-based encoder exit layer per token, or None
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
class HashEESeq2Seq(TokenHashExits, SummMethod):
    """HashEE on the encoder: each source token exits at its hashed layer; the decoder is unchanged.
    The hash plumbing is ELUE HashEE's (hashee.core.hashee_method.TokenHashExits)."""

    name = "hashee"
    needs_fitted_hash = True  # the workflow's summ_fit_hash job; train --dataset takes it as --hash-file
    setting_defaults = {"hash": "frequency", "buckets": "6"}

    def prepare(self, model, backbone, task, inputs) -> None:
        """The hash from `inputs.hash_file` (fit-hash --dataset): unlike ELUE's, it is never fitted on the spot."""
        if not inputs.hash_file:
            raise HasheeError(f"summarization method {self.name} needs a hash file (--hash-file, from fit-hash --dataset)")
        self.load_hash(model, inputs.hash_file, backbone.tokenizer)


def seq2seq_hash_source(backbone) -> HashSource:
    """A seq2seq backbone (modeling.load_seq2seq_backbone) as a hash's fitting source: its encoder."""
    return HashSource(backbone.tokenizer, backbone.encoder_config.vocab_size, backbone.encoder_config.num_layers,
                      backbone.state_dict["bert.embeddings.word_embeddings.weight"])


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
