"""HashEE, the method this benchmark is about (docs/method.md): each token exits at its hashed layer.

`TokenHashExits` is its hash plumbing (fit a hash for a setting, load and attach a fitted one, each
token's exit layer, the hash file beside a checkpoint), shared with the summarization study's HashEE
(hashee.studies.summarization.methods). Registered like every other method: through the
`hashee.methods` entry point (pyproject.toml), never imported by the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.methods import Method, Prediction, Stage, register, task_loss
from hashee.core.modeling import encoder_traces


@dataclass
class HashSource:
    """What fitting a hash reads from a backbone (ELUE's encoder or a seq2seq model's encoder)."""

    tokenizer: object
    vocab_size: int
    num_layers: int  # the backbone's, the most a hash can spread its exits over
    word_embeddings: torch.Tensor  # the input embeddings (the clustered hash clusters them)


class TokenHashExits:
    """The hash plumbing of HashEE, shared by the ELUE method below and the summarization one
    (hashee.studies.summarization.methods): fit a hash for a setting, load a fitted one, attach it,
    the exit layer of each token, and the hash file beside a checkpoint. Mixed into a `Method`."""

    def hash_layers(self, source: HashSource) -> int:
        """The setting's `layers` (missing, empty or "all": every layer of the backbone)."""
        layers = self.int_setting("layers")
        if layers is None:
            return source.num_layers
        if not 1 <= layers <= source.num_layers:
            raise HasheeError(f"method {self.name}: a hash for {layers} layers, but the backbone has {source.num_layers}")
        return layers

    def hash_buckets(self, default: int | None = None) -> int:
        """The setting's `buckets` when it gives one, else `default` (fit-hash --buckets), else the method's default."""
        if "buckets" not in self.given and default is not None:
            return default
        buckets = self.int_setting("buckets")
        if buckets is None:
            raise HasheeError(f"method {self.name}: setting buckets={self.settings['buckets']!r} is not a number of buckets")
        return buckets

    def fit_hash(self, ids: list, labels: list, source: HashSource, seed: int, *, buckets: int | None = None,
                 is_regression: bool = False):
        """This setting's hash fitted on `ids` (train + dev token ids, never test) and their `labels`
        (empty where the study has none: then the mi hash cannot be fitted)."""
        from hashee.core.hashing import HASH_NAMES, fit_hash, vocab_fingerprint

        name = self.settings["hash"]
        if name not in HASH_NAMES:
            raise unknown_name("hash", name, HASH_NAMES)
        if name == "mi" and not labels:
            raise HasheeError(f"setting {self.setting_text()!r}: the mi hash needs class labels, which this data lacks; "
                              f"use one of {', '.join(h for h in HASH_NAMES if h != 'mi')}")
        return fit_hash(name, ids, labels, vocab_size=source.vocab_size, num_layers=self.hash_layers(source),
                        num_buckets=self.hash_buckets(buckets), special_ids=tuple(source.tokenizer.all_special_ids),
                        seed=seed, fingerprint=vocab_fingerprint(source.tokenizer),
                        word_embeddings=source.word_embeddings, is_regression=is_regression)

    def load_hash(self, model, path, tokenizer) -> None:
        """Attach the fitted hash at `path`, checked against the model's tokenizer and vocabulary."""
        from hashee.core.hashing import TokenHash, vocab_fingerprint

        self.attach_hash(model, TokenHash.load(path, vocab_fingerprint=vocab_fingerprint(tokenizer),
                                               vocab_size=model.bert.config.vocab_size))

    def attach_hash(self, model, token_hash) -> None:
        token_hash.check_fits(self.settings["hash"], model.bert.num_layers)
        model.token_hash = token_hash

    def exit_layers(self, model, input_ids, generator=None):
        """(B, S) 1-based exit layer of each token."""
        token_hash = getattr(model, "token_hash", None)
        if token_hash is None:
            raise HasheeError(f"{self.name} model has no hash attached (missing hash.pt beside the checkpoint?)")
        # rand-incons draws per occurrence: from the global RNG while training (resumable with it),
        # from the hash's own seeded generator at evaluation (deterministic).
        if model.training and token_hash.name == "rand-incons" and generator is None:
            generator = torch.default_generator
        return token_hash.assign(input_ids.cpu(), generator=generator).to(input_ids.device)

    def save_extras(self, model, directory) -> None:
        model.token_hash.save(f"{directory}/hash.pt")

    def load_extras(self, model, directory, tokenizer) -> None:
        from pathlib import Path

        path = Path(directory) / "hash.pt"
        if not path.exists():
            raise HasheeError(f"{path}: missing; a HashEE checkpoint needs its hash file beside its weights")
        self.load_hash(model, path, tokenizer)


def encoder_hash_source(backbone) -> HashSource:
    """An ELUE backbone (hashee.core.backbones.load_backbone) as a hash's fitting source."""
    return HashSource(backbone.tokenizer, backbone.config.vocab_size, backbone.config.num_layers,
                      backbone.state_dict["embeddings.word_embeddings.weight"])


@register
class HashEE(TokenHashExits, Method):
    """Hash-based token-level early exiting: each token exits at its hashed layer (docs/method.md)."""

    name = "hashee"
    label = "HashEE"
    supports_regression = True  # a token-exit model's head is the plain classifier/regressor
    needs_fitted_hash = True
    table_order = 7
    # The paper's ELUE HashEE is the Frequency hash on ElasticBERT-6L (its 4.4-6.2x match the ablation's
    # Frequency row, the only hash above 3.3x). Its plots draw one red per hash (hashee.measure.plots).
    paper_rows = (("elasticbert", "hash=frequency,layers=6", "HashEE"),)
    setting_defaults = {"hash": "frequency", "layers": "", "buckets": "6"}
    # The backbones experiment compares HashEE (frequency hash, first 6 layers) with the static 6-layer model
    # on each backbone, as the paper's figure does.
    backbones_setting = "hash=frequency,layers=6"

    def build(self, config, task):
        model = super().build(config, task)
        model.token_hash = None  # set by attach_hash (training) or load_extras (evaluation)
        return model

    def prepare(self, model, backbone, task, inputs) -> None:
        """The hash from `inputs.hash_file` (the workflow's fit_hash job), else one fitted now on the
        task's train + dev."""
        from hashee.core.hashing import task_fitting_data

        if inputs.hash_file:
            self.load_hash(model, inputs.hash_file, backbone.tokenizer)
        else:
            ids, labels = task_fitting_data(task, inputs.data_dir, backbone.tokenizer, inputs.max_length)
            self.attach_hash(model, self.fit_hash(ids, labels, encoder_hash_source(backbone), inputs.seed,
                                                  is_regression=task.is_regression))

    def stages(self, model, params):
        def loss(model, batch):
            exits = self.exit_layers(model, batch["input_ids"])
            logits, _ = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], exits)
            return task_loss(model.task, logits, batch["labels"])

        return [Stage("finetune", lambda m: m.parameters(), loss, params.epochs, params.lr, params.warmup,
                      params.weight_decay)]

    def predict(self, model, batch, inference):
        exits = self.exit_layers(model, batch["input_ids"])
        logits, out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], exits)
        return Prediction(logits, encoder_traces(batch["attention_mask"], out.active_counts,
                                                 model.bert.config.hidden_size))

    def predict_outputs(self, model, batch, inference):
        exits = self.exit_layers(model, batch["input_ids"])
        return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], exits)[0]
