"""Models of the difficulty study, all trained by the ONE trainer (`hashee.core.training.train`).

Multi-exit models (the source of model-defined difficulty):
- sentence level: `SummedExitMethod`, the baselines' multi-exit model (`hashee.core.multiexit`:
  one ClsHead = own pooler + linear classifier per layer) trained on the unweighted sum of the
  exits' cross-entropies, as the reference's 12-exit BERT;
- token level: `TokenExitMethod`, the same model with a per-token linear head per layer
  (`TokenHead`) and the summed per-token cross-entropy (padding and [CLS]/[SEP] ignored).

Difficulty predictors (docs/difficulty.md), each mapping an instance (or each token) to L logits of
"layer i gets it wrong", trained with masked binary cross-entropy:
- Majority: each layer's majority value on the training instances (nothing to train);
- Linear-M: mean of trainable, backbone-initialised word embeddings over the real tokens -> Linear(E, L);
- Linear-B: a Linear(H, 1) probe per layer on that layer's [CLS] (token level: token) state of
  the frozen pretrained backbone;
- BiLSTM: backbone-initialised embeddings -> 1-layer biLSTM over the real tokens only (packed) ->
  Linear(2h, L) (sentence: the two final states; token: every position);
- BERT: the fine-tuned backbone -> pooler on [CLS] (token level: each token's last state) -> Linear(H, L).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from hashee.core.methods import Method, Stage
from hashee.core.modeling import TokenExitEncoder, pooled_input
from hashee.core.multiexit import MultiExitMethod

SENTENCE_PREDICTORS = ("Majority", "Linear-M", "Linear-B", "BiLSTM", "BERT")
TOKEN_PREDICTORS = ("Linear-B", "BiLSTM", "BERT")
IGNORE = -100  # tag of positions without a label ([CLS], [SEP], padding)


# ------------------------------------------------------------------------------ multi-exit models
class SummedExitMethod(MultiExitMethod):
    """Multi-exit classifier trained on the unweighted sum of every exit's loss (not registered:
    it serves the study, not the ELUE benchmark)."""

    name = "difficulty-multiexit"

    def stages(self, model, params):
        def loss(model, batch):
            return sum(self.exit_losses(model, batch))

        return [Stage("finetune", lambda m: m.parameters(), loss, params.epochs, params.lr, params.warmup,
                      params.weight_decay)]


class TokenHead(nn.Module):
    """Per-token exit: dropout -> Linear(H, tags); (B, T, H) -> (B, T, tags)."""

    def __init__(self, config, num_labels: int):
        super().__init__()
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)

    def forward(self, hidden, key_mask=None):
        return self.classifier(self.dropout(hidden))


class TokenExitMethod(SummedExitMethod):
    name = "difficulty-token-multiexit"

    def make_exit(self, config, num_labels, layer):
        return TokenHead(config, num_labels)

    def exit_losses(self, model, batch):
        outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        tags = batch["labels"][:, : batch["input_ids"].shape[1]]  # (B, T): stored padded to max_length
        return [nn.functional.cross_entropy(out.flatten(0, 1), tags.reshape(-1), ignore_index=IGNORE)
                for out in outputs]


@torch.no_grad()
def exit_predictions(model, batch) -> torch.Tensor:
    """Every exit's predicted label: (B, L) for sentence heads, (B, T, L) for token heads."""
    outputs = model.all_exit_outputs(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    return torch.stack([out.argmax(dim=-1) for out in outputs], dim=-1)


# ------------------------------------------------------------------------------ predictors
def _mask(batch) -> torch.Tensor:
    return batch["attention_mask"].bool()  # (B, T)


class MeanEmbeddingPredictor(nn.Module):
    """Linear-M."""

    def __init__(self, embedding: torch.Tensor, num_layers: int):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(embedding.clone(), freeze=False)
        self.out = nn.Linear(embedding.shape[1], num_layers)

    def get_input_embeddings(self) -> nn.Embedding:  # what the trainer's freeze_word_embeddings keeps fixed
        return self.embed

    def forward(self, batch):
        mask = _mask(batch).unsqueeze(-1).float()  # (B, T, 1)
        vectors = self.embed(batch["input_ids"])  # (B, T, E)
        mean = (vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # (B, E): padding excluded
        return self.out(mean)  # (B, L)


class LayerProbePredictor(nn.Module):
    """Linear-B: probes on a frozen encoder's per-layer states. The states of an instance are computed
    once (keyed by the row's `index`) and reused every epoch, while they fit in `cache_bytes`."""

    def __init__(self, encoder: TokenExitEncoder, token_level: bool, cache_bytes: int = 1 << 30):
        super().__init__()
        self.encoder = encoder
        self.token_level = token_level
        self.probes = nn.ModuleList([nn.Linear(encoder.config.hidden_size, 1) for _ in range(encoder.num_layers)])
        self.cache: dict[int, torch.Tensor] = {}  # index -> (L, H) or (L, T_real, H); not in the state dict
        self.cache_bytes_left = cache_bytes

    @torch.no_grad()
    def features(self, batch) -> torch.Tensor:
        """(B, L, H) [CLS] states, or (B, L, T, H) token states (zero on padding)."""
        keys, width = batch["index"].tolist(), batch["input_ids"].shape[1]
        if all(k in self.cache for k in keys):
            if not self.token_level:
                return torch.stack([self.cache[k] for k in keys])
            return torch.stack([nn.functional.pad(self.cache[k], (0, 0, 0, width - self.cache[k].shape[1]))
                                for k in keys])
        self.encoder.eval()  # a frozen feature extractor: no dropout even while the probes train
        states = torch.stack(self.encoder(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                                          output_layer_states=True).layer_states, dim=1)  # (B, L, T, H)
        states = states if self.token_level else states[:, :, 0]
        for key, value, length in zip(keys, states, batch["attention_mask"].sum(dim=1).tolist()):
            value = value[:, :length].clone() if self.token_level else value.clone()
            if value.nbytes <= self.cache_bytes_left:
                self.cache[key] = value
                self.cache_bytes_left -= value.nbytes
        return states

    def forward(self, batch):
        features = self.features(batch)
        return torch.cat([probe(features[:, i]) for i, probe in enumerate(self.probes)], dim=-1)  # (B, L) / (B, T, L)


class BiLstmPredictor(nn.Module):
    def __init__(self, embedding: torch.Tensor, num_layers: int, hidden: int, token_level: bool,
                 dropout: float = 0.3):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(embedding.clone(), freeze=False)
        self.lstm = nn.LSTM(embedding.shape[1], hidden, num_layers=1, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, num_layers)
        self.token_level = token_level

    def get_input_embeddings(self) -> nn.Embedding:  # what the trainer's freeze_word_embeddings keeps fixed
        return self.embed

    def forward(self, batch):
        lengths = _mask(batch).sum(dim=1).cpu()  # (B,)
        packed = pack_padded_sequence(self.embed(batch["input_ids"]), lengths, batch_first=True,
                                      enforce_sorted=False)  # padding never enters the LSTM
        outputs, (h_n, _) = self.lstm(packed)
        if self.token_level:
            states, _ = pad_packed_sequence(outputs, batch_first=True,
                                            total_length=batch["input_ids"].shape[1])  # (B, T, 2h)
        else:
            states = torch.cat([h_n[0], h_n[1]], dim=-1)  # (B, 2h): last forward + last backward state
        return self.out(self.dropout(states))


class BertPredictor(nn.Module):
    def __init__(self, encoder: TokenExitEncoder, num_layers: int, token_level: bool):
        super().__init__()
        self.bert = encoder
        self.token_level = token_level
        self.dropout = nn.Dropout(encoder.config.hidden_dropout)
        self.out = nn.Linear(encoder.config.hidden_size, num_layers)

    def forward(self, batch):
        last = self.bert(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).last_hidden_state
        if self.token_level:
            features = last  # (B, T, H)
        else:
            features = self.bert.pooler(pooled_input(last, batch["attention_mask"].bool(), self.bert.config.pooling))
        return self.out(self.dropout(features))


def difficulty_targets(batch, logits) -> tuple[torch.Tensor, torch.Tensor]:
    """The "wrong" bits matching `logits` and their mask (token labels are stored padded to
    max_length with -1; only real, labelled tokens count)."""
    targets = batch["labels"]
    if targets.dim() == 3:
        targets = targets[:, : logits.shape[1]]  # (B, T, L)
    return targets.clamp(min=0).float(), targets >= 0


def bce_loss(model, batch) -> torch.Tensor:
    logits = model(batch)
    targets, mask = difficulty_targets(batch, logits)
    losses = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (losses * mask).sum() / mask.sum().clamp(min=1)


class PredictorMethod(Method):
    """A predictor as one training stage of the shared trainer (not registered)."""

    def __init__(self, name: str, trains):
        super().__init__({})
        self.name = f"difficulty-{name}"
        self._trains = trains

    def stages(self, model, params):
        return [Stage("fit", self._trains, bce_loss, params.epochs, params.lr, params.warmup, params.weight_decay)]


def build_predictor(name: str, backbone, num_layers: int, token_level: bool,
                    lstm_hidden: int) -> tuple[nn.Module, PredictorMethod]:
    """The model of a trainable predictor and the method that trains it."""
    embedding = backbone.state_dict["embeddings.word_embeddings.weight"]

    def everything(model):
        return model.parameters()

    if name == "Linear-M":
        return MeanEmbeddingPredictor(embedding, num_layers), PredictorMethod(name, everything)
    if name == "Linear-B":
        return (LayerProbePredictor(backbone.build_encoder(), token_level),
                PredictorMethod(name, lambda model: model.probes.parameters()))
    if name == "BiLSTM":
        return BiLstmPredictor(embedding, num_layers, lstm_hidden, token_level), PredictorMethod(name, everything)
    if name == "BERT":
        return BertPredictor(backbone.build_encoder(), num_layers, token_level), PredictorMethod(name, everything)
    raise ValueError(f"unknown predictor {name!r}")
