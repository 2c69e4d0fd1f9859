"""Token-exit encoder for BERT-family backbones (BERT, RoBERTa, ALBERT, ElasticBERT, DistilBERT), one file.

Module tree and parameter names follow transformers' `modeling_bert.py`, so BERT checkpoints load
by name; other families are mapped in `hashee.core.backbones`.

HashEE token exit (docs/method.md): layer l updates only *active* tokens (exit_layer >= l). Queries,
the attention output projection and the FFN run on active tokens only, gathered into one packed
(N_active, H) tensor so skipped work is really skipped. Keys/values come from every real token of
the sequence (exited ones frozen at their exit layer), projected with layer l's own K/V weights.
Padding is never active and is masked out of attention (the reference code forgets this).

Each forward pass also returns `active_counts` (B, L): how many tokens every layer processed per
instance, which `encoder_traces()` turns into the per-instance execution traces (hashee.core.trace).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import accumulate

import torch
import torch.nn.functional as F
from torch import nn

from hashee.core.trace import ModuleCall, Trace

# The activations BERT-family checkpoints name (transformers' ACT2FN, without importing transformers).
ACTIVATIONS = {
    "gelu": lambda: nn.GELU(),
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": lambda: nn.ReLU(),
}


@dataclass
class EncoderConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    pad_token_id: int = 0
    embedding_size: int | None = None  # ALBERT factorises embeddings: E != H, then a projection
    share_layers: bool = False  # ALBERT: one set of layer weights applied num_layers times
    position_style: str = "absolute"  # "roberta": positions count real tokens from pad_id + 1
    family: str = "bert"
    pooling: str = "cls"  # what sentence heads read: a key of POOLINGS (backbones.py reads it from the checkpoint)
    # Attention heads kept per layer after head pruning (baselines/headprune.py), None: num_heads in every
    # layer. Part of the saved config, so a pruned model is rebuilt with its smaller projections.
    layer_heads: list[int] | None = None

    def heads_of(self, layer: int) -> int:
        return self.num_heads if self.layer_heads is None else self.layer_heads[layer]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor  # (B, T, H)
    active_counts: torch.Tensor  # (B, L) tokens processed per layer and instance
    layer_states: list[torch.Tensor] = field(default_factory=list)  # per layer (B, T, H), if asked


class Embeddings(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        dim = config.embedding_size or config.hidden_size
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, dim, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, dim)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.projection = nn.Linear(dim, config.hidden_size) if dim != config.hidden_size else None

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.config.position_style == "roberta":
            real = input_ids.ne(self.config.pad_token_id).long()
            return torch.cumsum(real, dim=1) * real + self.config.pad_token_id
        return torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)

    def forward(self, input_ids, token_type_ids=None):  # (B, T) -> (B, T, H)
        # One segment type (RoBERTa, DistilBERT): the model ignores segments, so the 1s a BERT
        # tokenizer gives a sentence pair's second segment must not index past the one row.
        if token_type_ids is None or self.config.type_vocab_size == 1:
            token_type_ids = torch.zeros_like(input_ids)
        x = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(self.position_ids(input_ids)))
        x = self.dropout(self.LayerNorm(x))
        return self.projection(x) if self.projection is not None else x


class SelfAttention(nn.Module):
    def __init__(self, config: EncoderConfig, num_heads: int | None = None):
        super().__init__()
        self.num_heads = config.num_heads if num_heads is None else num_heads
        self.head_dim = config.hidden_size // config.num_heads
        inner = self.num_heads * self.head_dim  # < hidden_size once heads are pruned
        self.query = nn.Linear(config.hidden_size, inner)
        self.key = nn.Linear(config.hidden_size, inner)
        self.value = nn.Linear(config.hidden_size, inner)
        self.dropout_p = config.attention_dropout

    def split_heads(self, x):  # (B, T, H) -> (B, nh, T, hd)
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, queries, keys_values, key_mask):
        """queries (B, Tq, H) of active tokens; keys_values (B, T, H) all tokens; key_mask (B, T) bool."""
        if self.num_heads == 0:  # every head pruned: the sublayer adds only its output bias
            return queries.new_zeros(queries.shape[0], queries.shape[1], 0)
        q = self.split_heads(self.query(queries))  # (B, nh, Tq, hd)
        k = self.split_heads(self.key(keys_values))  # (B, nh, T, hd)
        v = self.split_heads(self.value(keys_values))
        ctx = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask[:, None, None, :],
            dropout_p=self.dropout_p if self.training else 0.0)  # (B, nh, Tq, hd)
        return ctx.transpose(1, 2).reshape(queries.shape[0], queries.shape[1], -1)  # (B, Tq, H)


class SelfOutput(nn.Module):
    def __init__(self, config: EncoderConfig, num_heads: int | None = None):
        super().__init__()
        heads = config.num_heads if num_heads is None else num_heads
        self.dense = nn.Linear(heads * (config.hidden_size // config.num_heads), config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # DistilBERT adds its attention output (out_lin) to the residual without dropout.
        self.dropout = nn.Dropout(0.0 if config.family == "distilbert" else config.hidden_dropout)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, config: EncoderConfig, num_heads: int | None = None):
        super().__init__()
        self.self = SelfAttention(config, num_heads)
        self.output = SelfOutput(config, num_heads)

    def prune_heads(self, heads) -> None:
        """Remove the attention heads `heads` (0-based, of those this layer has now) for real: the Q/K/V
        projections lose their output rows and the output projection its input columns (as transformers'
        `prune_heads`), so the FLOPs and time of what remains fall."""
        heads = set(int(h) for h in heads)
        if not heads:
            return
        d = self.self.head_dim
        keep = [h for h in range(self.self.num_heads) if h not in heads]
        index = torch.tensor([h * d + i for h in keep for i in range(d)], dtype=torch.long)
        for name in ("query", "key", "value"):
            setattr(self.self, name, _select_linear(getattr(self.self, name), index, dim=0))
        self.output.dense = _select_linear(self.output.dense, index, dim=1)
        self.self.num_heads = len(keep)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A state saved after head pruning (a resumed HeadPrune run) has fewer heads than a freshly built
        # layer: shrink to its shape first (the weights are then loaded into the smaller projections).
        saved = state_dict.get(prefix + "self.query.weight")
        if saved is not None and saved.shape[0] != self.self.query.out_features:
            heads = saved.shape[0] // self.self.head_dim
            self.prune_heads(range(heads, self.self.num_heads))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _select_linear(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A new Linear keeping `index` of the output (dim 0) or input (dim 1) features of `linear`."""
    index = index.to(linear.weight.device)
    weight = linear.weight.detach().index_select(dim, index).clone()
    out_features, in_features = weight.shape
    new = nn.Linear(in_features, out_features, bias=linear.bias is not None).to(linear.weight.device,
                                                                                linear.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            new.bias.copy_(linear.bias.detach() if dim == 1 else linear.bias.detach().index_select(0, index))
    return new


class Intermediate(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        if config.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {config.hidden_act!r} not supported; valid: {', '.join(ACTIVATIONS)}")
        self.act = ACTIVATIONS[config.hidden_act]()

    def forward(self, x):
        return self.act(self.dense(x))


class Output(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


@dataclass
class LayerPlan:
    """Which tokens one layer updates, as `plan_layers` computes it before the first layer: the sizes
    are host ints, so the layer loop never waits on the device to decide what to run."""

    count: int  # active tokens in the batch
    n_max: int  # most active tokens of one sequence
    positions: torch.Tensor  # (count,) flat positions in B*T, ascending
    rows: torch.Tensor  # (count,) each position's sequence
    slots: torch.Tensor  # (count,) its rank among its sequence's active tokens


def plan_layers(active: torch.Tensor) -> list[LayerPlan]:
    """One LayerPlan per layer from the (L, B, T) bool masks of the tokens each layer updates. HashEE's
    exit layers are known from the token ids, so every layer's packed index set is computed here at
    once, with two host reads for the whole batch (the nonzero and the sizes) instead of several per layer."""
    num, batch, length = active.shape
    flat = active.reshape(num, batch * length)
    hits = flat.reshape(-1).nonzero().squeeze(1)  # layer-major, positions ascending within a layer
    counts, n_max = torch.stack([flat.sum(dim=1), active.sum(dim=2).amax(dim=1)]).tolist()
    positions = hits % (batch * length)
    slots = (torch.cumsum(active.long(), dim=2) - 1).reshape(-1).index_select(0, hits)
    rows = torch.div(positions, length, rounding_mode="floor")
    return [LayerPlan(c, m, p, r, s) for c, m, p, r, s in
            zip(counts, n_max, positions.split(counts), rows.split(counts), slots.split(counts))]


class Layer(nn.Module):
    def __init__(self, config: EncoderConfig, num_heads: int | None = None):
        super().__init__()
        self.attention = Attention(config, num_heads)
        self.intermediate = Intermediate(config)
        self.output = Output(config)

    def forward(self, hidden, key_mask, active=None, plan: LayerPlan | None = None, in_place: bool = False):
        """hidden (B, T, H); key_mask (B, T) bool real tokens; active (B, T) bool or None (= key_mask);
        plan: `active`'s LayerPlan when the caller computed it ahead (the encoder does), else made here;
        in_place: write the updated tokens into `hidden` itself (the caller keeps no other reference to it).

        Returns the new (B, T, H) states: active positions updated, the others unchanged (frozen).
        """
        if plan is None:
            plan = plan_layers((key_mask if active is None else active).unsqueeze(0))[0]
        B, T, H = hidden.shape
        if plan.count == 0:  # every token has exited (e.g. a hash that sends none this deep)
            return hidden
        if plan.count == B * T:  # nothing to skip (no padding, no exits): plain dense layer
            attn_out = self.attention.output(self.attention.self(hidden, hidden, key_mask), hidden)
            return self.output(self.intermediate(attn_out), attn_out)
        flat = hidden.reshape(B * T, H)
        x = flat.index_select(0, plan.positions)  # (N, H) packed active tokens
        if B == 1:  # one sequence: the packed tokens are already its queries, no slots to scatter
            ctx = self.attention.self(x.unsqueeze(0), hidden, key_mask)[0]
            attn_out = self.attention.output(ctx, x)
            out = self.output(self.intermediate(attn_out), attn_out)
            return self.scatter(flat, plan.positions, out, in_place).view(B, T, H)
        # Attention needs each query next to its own sequence's keys: scatter the packed queries
        # into (B, n_max, H) slots. Only the attention core pays for this padding; the Q, output
        # and FFN projections (the bulk of a layer) run on the packed (N, H) tensor.
        queries = x.new_zeros(B, plan.n_max, H).index_put_((plan.rows, plan.slots), x)
        ctx = self.attention.self(queries, hidden, key_mask)[plan.rows, plan.slots]  # (N, H)
        attn_out = self.attention.output(ctx, x)
        out = self.output(self.intermediate(attn_out), attn_out)  # (N, H)
        return self.scatter(flat, plan.positions, out, in_place).view(B, T, H)

    @staticmethod
    def scatter(flat, positions, rows, in_place: bool):  # (B*T, H) states <- (N, H) updated rows
        # Out of place copies all B*T states to change the active ones: at batch 32, ~1 % of a layer's time.
        return flat.index_copy_(0, positions, rows) if in_place else flat.index_copy(0, positions, rows)


POOLINGS = ("cls", "mean")


def pooled_input(hidden, key_mask, pooling: str):  # (B, T, H), (B, T) -> (B, H)
    """What a sentence-level head reads: the [CLS] state (BERT-family checkpoints, whose pooler was trained
    on it) or the mean over real tokens (sentence-transformers checkpoints such as the offline MiniLM,
    trained with mean pooling: their [CLS] barely attends to the sentence in the lower layers). The mean
    costs no FLOPs in ELUE's convention (additions), so traces and module lists are the same for both."""
    if pooling == "cls":
        return hidden[:, 0]
    if key_mask is None:
        raise ValueError("mean pooling needs the key mask (which tokens are real)")
    weights = key_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


class Pooler(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, cls_state):  # (B, H) -> (B, H)
        return self.activation(self.dense(cls_state))


class Encoder(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        if config.share_layers:
            shared = Layer(config)
            self.layer = nn.ModuleList([shared] * config.num_layers)
        else:
            self.layer = nn.ModuleList([Layer(config, config.heads_of(i)) for i in range(config.num_layers)])


class TokenExitEncoder(nn.Module):
    """BertModel-compatible encoder (embeddings, encoder.layer.i, pooler) with token-level exits."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        if config.pooling not in POOLINGS:
            raise ValueError(f"encoder pooling {config.pooling!r}: expected one of {', '.join(POOLINGS)}")
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.pooler = Pooler(config)
        # Loading a head-pruned state shrinks the layers (Attention._load_from_state_dict): keep the config,
        # which checkpoints save, in step with them.
        self.register_load_state_dict_post_hook(lambda module, incompatible: module.sync_layer_heads())

    def sync_layer_heads(self) -> None:
        """config.layer_heads from the layers' head counts (None while no layer has lost a head)."""
        heads = [layer.attention.self.num_heads for layer in self.encoder.layer]
        self.config.layer_heads = None if all(h == self.config.num_heads for h in heads) else heads

    @property
    def num_layers(self) -> int:
        return len(self.encoder.layer)

    def forward(self, input_ids, attention_mask, token_type_ids=None, exit_layers=None,
                output_layer_states: bool = False) -> EncoderOutput:
        """exit_layers (B, T) 1-based exit layer per token, or None: every token runs every layer."""
        key_mask = attention_mask.bool()
        hidden = self.embeddings(input_ids, token_type_ids)
        if exit_layers is None:
            actives = [key_mask] * self.num_layers
            plans = plan_layers(key_mask.unsqueeze(0)) * self.num_layers
        else:
            levels = torch.arange(1, self.num_layers + 1, device=key_mask.device).view(-1, 1, 1)
            stacked = key_mask.unsqueeze(0) & (exit_layers.unsqueeze(0) >= levels)  # (L, B, T)
            actives, plans = stacked.unbind(0), plan_layers(stacked)
        counts, states = [], []
        # Without autograd and without kept layer states, each layer's input is ours alone: update it in place.
        in_place = not torch.is_grad_enabled() and not output_layer_states
        for layer, active, plan in zip(self.encoder.layer, actives, plans):
            hidden = layer(hidden, key_mask, active, plan, in_place)
            counts.append(active.sum(dim=1))
            if output_layer_states:
                states.append(hidden)
        return EncoderOutput(hidden, torch.stack(counts, dim=1), states)


class SequenceClassifier(nn.Module):
    """Encoder + the usual head: last layer's [CLS] (or token mean, `config.pooling`) -> pooler -> dropout ->
    Linear (1 output: regression)."""

    def __init__(self, config: EncoderConfig, num_labels: int):
        super().__init__()
        self.bert = TokenExitEncoder(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        self.num_labels = num_labels

    def forward(self, input_ids, attention_mask, token_type_ids=None, exit_layers=None):
        out = self.bert(input_ids, attention_mask, token_type_ids, exit_layers)
        pooled = pooled_input(out.last_hidden_state, attention_mask.bool(), self.bert.config.pooling)
        logits = self.classifier(self.dropout(self.bert.pooler(pooled)))
        return logits, out


def sequence_lengths(attention_mask: torch.Tensor) -> list[int]:
    return attention_mask.sum(dim=1).tolist()


def encoder_traces(attention_mask, active_counts, hidden_size: int, head: tuple[str, ...] = ("pooler", "classifier"),
                   layer_prefix: str = "layer_") -> list[Trace]:
    """Per-instance traces of a token-exit encoder run: emb, each layer it ran, then the head modules."""
    traces = []
    for length, counts in zip(sequence_lengths(attention_mask), active_counts.tolist()):
        calls = [ModuleCall("emb", (length,))]
        calls += [ModuleCall(f"{layer_prefix}{i}", (n, length, hidden_size))
                  for i, n in enumerate(counts, start=1) if n > 0]
        calls += [ModuleCall(name, (hidden_size,)) for name in head]
        traces.append(tuple(calls))
    return traces


# --- ELUE `module_list` entries: each runs one traced module on an input of the traced shape. ---
# The FLOPs counter (hashee.measure.flops), the submission's model file and the validator all run these,
# so the FLOPs we report are, by construction, the FLOPs of what the shapes say ran.

class FlopsEmbeddings(nn.Module):
    """Input (T,): embeds T tokens."""

    def __init__(self, embeddings: Embeddings):
        super().__init__()
        self.embeddings = embeddings

    def forward(self, x):
        return self.embeddings(torch.zeros(1, x.shape[0], dtype=torch.long, device=x.device))


class FlopsLayer(nn.Module):
    """Input (n_active, T, H): a token-exit layer with n_active queries over T keys/values.

    A plain (T, H) shape cannot say how many tokens are still active, so the first dimension
    carries the active count and the second the sequence length (docs/elue.md, "Submission format").
    """

    def __init__(self, layer: Layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        n_active, length = x.shape[0], x.shape[1]
        hidden = x[0].unsqueeze(0)  # (1, T, H)
        key_mask = torch.ones(1, length, dtype=torch.bool, device=x.device)
        active = torch.arange(length, device=x.device).unsqueeze(0) < n_active
        return self.layer(hidden, key_mask, active)


class FlopsHead(nn.Module):
    """Input (H,) or (T, H): a head module applied to one vector."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x.reshape(1, -1, x.shape[-1])[:, 0])


def encoder_flop_modules(encoder: TokenExitEncoder, layer_prefix: str = "layer_") -> dict[str, nn.Module]:
    modules: dict[str, nn.Module] = {"emb": FlopsEmbeddings(encoder.embeddings)}
    for i, layer in enumerate(encoder.encoder.layer, start=1):
        modules[f"{layer_prefix}{i}"] = FlopsLayer(layer)
    return modules


# --- Token pruning (PoWER-BERT, LTP; baselines/powerbert.py, baselines/ltp.py) ---
# A pruned token leaves the sequence: later layers compute its queries, keys and values no more. The
# encoder runs the same `Layer` modules densely over each instance's kept tokens, packed to the left
# (padding on the right, masked), so the layer after a pruning decision is an ordinary layer of the
# shorter length; its trace call is `layer_i` with shape (n_kept, n_kept, hidden), which FlopsLayer
# counts as a dense layer of n_kept tokens.

def layer_with_attention(layer: Layer, hidden, key_mask):
    """`layer` over (B, T, H) with its attention probabilities made explicit (SDPA does not return them):
    returns the new states (B, T, H) and the probabilities (B, heads, T_query, T_key); padded keys get 0."""
    attention = layer.attention.self
    q, k, v = (attention.split_heads(x) for x in _scaled_qkv(attention, hidden))
    probs = _attention_probs(q, k, _padded_key_bias(key_mask, hidden.dtype))
    ctx = torch.matmul(F.dropout(probs, attention.dropout_p, layer.training), v)
    return _rest_of_layer(layer, ctx.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[1], -1), hidden), probs


def _scaled_qkv(attention: SelfAttention, hidden):
    """Queries (already scaled), keys and values, (..., heads * head_dim) each. The scale is folded into
    the query projection's weights (H x H) rather than applied to the queries or the (B, heads, T, T)
    scores: one pass over memory fewer, as a fused attention kernel scales on the fly."""
    scale = attention.head_dim ** -0.5
    q = F.linear(hidden, attention.query.weight * scale, attention.query.bias * scale)
    return q, attention.key(hidden), attention.value(hidden)


def _attention_probs(q, k, key_bias, in_place: bool = False):
    """softmax(q k^T) over the real keys: (b, heads, Tq, Tk), padded keys 0 (`key_bias`: `_padded_key_bias`);
    `in_place` (no gradients): the softmax overwrites the scores, one buffer instead of two."""
    scores = torch.matmul(q, k.transpose(-1, -2))
    if key_bias is not None:
        scores.add_(key_bias)
    return torch.softmax(scores, dim=-1, out=scores) if in_place else torch.softmax(scores, dim=-1)


def _padded_key_bias(key_mask, dtype):
    """(B, 1, 1, T): 0 for real keys, the dtype's lowest value for padded ones, added to the scores (a
    broadcast add is about ten times faster on CPU than `masked_fill_` with a broadcast mask); None when
    no key is padded."""
    if bool(key_mask.all()):
        return None
    return torch.zeros(key_mask.shape, dtype=dtype, device=key_mask.device).masked_fill_(
        ~key_mask, torch.finfo(dtype).min)[:, None, None, :]


def _rest_of_layer(layer: Layer, ctx, hidden):
    """The layer after its attention core: the context in token layout (..., heads * head_dim) and the
    layer's input states (..., H) -> output projection, FFN."""
    attn_out = layer.attention.output(ctx, hidden)
    return layer.output(layer.intermediate(attn_out), attn_out)


def attention_received(probs, key_mask, mean: bool = False):
    """(B, heads, Tq, Tk) probabilities -> (B, Tk) attention each token receives, summed over heads and
    the real query positions (PoWER-BERT's significance), or averaged over them (`mean`: LTP's importance).
    Padded keys receive 0."""
    # Heads first (one pass over the probabilities), then the real query rows only (padded ones when any).
    heads = probs.sum(dim=1)  # (B, Tq, Tk)
    if bool(key_mask.all()):
        received = heads.sum(dim=1)
    else:
        received = (heads * key_mask.unsqueeze(2).to(probs.dtype)).sum(dim=1)
    received = received.masked_fill(~key_mask, 0.0)
    return averaged_received(received, key_mask, probs.shape[1]) if mean else received


def averaged_received(received, key_mask, num_heads: int):
    """The summed attention a token receives (`attention_received`) -> averaged over the heads and the real
    query positions."""
    return received / (num_heads * key_mask.sum(dim=1, keepdim=True).clamp(min=1)).to(received.dtype)


# On CPU, inference computes the attention probabilities a few instances at a time, so that each slice of
# the (B, heads, T, T) scores (about this many bytes) stays in cache between the score product, the
# softmax, the context product and the sum of what each token receives, instead of five passes over memory.
# Other devices run the batch whole (one kernel each, no per-slice launches).
RECEIVED_SLICE_BYTES = 2 << 20


def prefix_mask(lengths, width: int | None = None):
    """(B,) token counts -> the (B, width) key mask of instances packed to the left (width: the largest)."""
    width = int(lengths.max()) if width is None else width
    return torch.arange(width, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def kept_rows(states, keep, layout=None):
    """The rows of `states` whose tokens `keep` (B, T) bool marks, in order, and their key mask packed to
    the left (`prefix_mask`). `layout`: the (B, T) positions the (N, H) rows of `states` sit at (a packed
    key mask); None: `states` holds every position, (B, T, H) or (B * T, H)."""
    chosen = keep if layout is None else keep[layout]
    return states.reshape(-1, states.shape[-1])[chosen.reshape(-1)], prefix_mask(keep.sum(dim=1))


def _attention_groups(counts: list[int], bytes_per_instance: int, on_cpu: bool):
    """The (start, stop) runs of instances whose attention is computed together. On CPU: consecutive
    instances with the same token count, at most RECEIVED_SLICE_BYTES of scores at a time, so no group is
    ever padded (ragged counts after pruning give mostly groups of one, still cheaper than padding: the
    products run on strided views, nothing copied). Elsewhere: the whole batch, padded, one kernel each."""
    if not on_cpu:
        return [(0, len(counts))]
    step = max(1, RECEIVED_SLICE_BYTES // bytes_per_instance)
    groups, start = [], 0
    for index in range(1, len(counts) + 1):
        if index == len(counts) or counts[index] != counts[start] or index - start == step:
            groups.append((start, index))
            start = index
    return groups


def _by_head(rows, part: int, width: int, heads: int, slots):
    """(n, heads * head_dim) rows of `part` instances -> (part, heads, width, head_dim); with `slots` (the
    rows' places in a padded (part * width) layout) the padding rows are 0 (finite: they meet
    probabilities 0 and masked sums)."""
    if slots is not None:
        rows = rows.new_zeros(part * width, rows.shape[1]).index_copy_(0, slots, rows)
    by_heads = rows.view(part, width, heads, -1).transpose(1, 2)
    # One instance's heads are a strided batch the matrix products take as is; across instances the
    # strides differ and the products would fall back to one small product per head.
    return by_heads if part == 1 else by_heads.contiguous()


def packed_layer(layer: Layer, states, key_mask, with_received: bool = True):
    """`layer` at inference over packed tokens: `states` (N, H) are the real tokens of B instances, instance
    after instance, and `key_mask` (B, T) their layout packed to the left (`prefix_mask`). Returns the new
    (N, H) states and, with `with_received`, the (B, T) attention each token receives
    (`attention_received`: summed over heads and real queries, padded keys 0), else None.

    Every projection (Q, K, V, output, FFN) runs on the N real tokens only. The attention core runs per
    `_attention_groups`: on CPU a few instances of one length at a time, never padded, each group's
    scores in cache from the score product to the sum; elsewhere the whole batch, padded in a buffer of
    its own (padding rows 0, padded keys masked). The probabilities are explicit only where the received
    attention is wanted; without `with_received` the core is the fused attention."""
    attention = layer.attention.self
    heads, head_dim = attention.num_heads, attention.head_dim
    q, k, v = _scaled_qkv(attention, states)  # (N, heads * head_dim) each
    batch, length = key_mask.shape
    counts = key_mask.sum(dim=1).tolist()
    ends = list(accumulate(counts))
    ctx = torch.empty_like(q)
    received = states.new_zeros(batch, length) if with_received else None
    starts = [0] + ends[:-1]
    for start, stop in _attention_groups(counts, heads * length * length * states.element_size(),
                                         states.device.type == "cpu"):
        first, last = starts[start], ends[stop - 1]
        part, width = stop - start, max(counts[start:stop])
        mask = key_mask[start:stop, :width]
        slots = None if min(counts[start:stop]) == width else mask.reshape(-1).nonzero().squeeze(1)

        q_part, k_part, v_part = (_by_head(rows[first:last], part, width, heads, slots) for rows in (q, k, v))
        if with_received:
            probs = _attention_probs(q_part, k_part, None if slots is None else _padded_key_bias(mask, states.dtype),
                                     in_place=True)
            ctx_part = torch.matmul(probs, v_part)
            received[start:stop, :width] = probs.sum(dim=(1, 2)) if slots is None else attention_received(probs, mask)
        else:
            ctx_part = F.scaled_dot_product_attention(  # the queries come scaled (`_scaled_qkv`)
                q_part, k_part, v_part, attn_mask=None if slots is None else mask[:, None, None, :], scale=1.0)
        ctx_part = ctx_part.transpose(1, 2)  # (part, width, heads, head_dim)
        if slots is None:
            ctx[first:last].view(part, width, heads, head_dim).copy_(ctx_part)
        else:
            torch.index_select(ctx_part.reshape(part * width, -1), 0, slots, out=ctx[first:last])
    return _rest_of_layer(layer, ctx, states), received


def pack_tokens(hidden, keep):
    """Drop the tokens `keep` (B, T) bool marks False: each instance's kept tokens, in order, packed to the
    left of a (B, n_max, H) tensor (n_max: the most any instance keeps); returns it and its key mask."""
    batch, length, size = hidden.shape
    counts = keep.sum(dim=1)
    n_max = int(counts.max())
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, :n_max]  # kept first, in order
    # Whole rows by flat index: index_select copies rows, about 4x faster than a gather over an expanded index.
    rows = (order + torch.arange(batch, device=keep.device).unsqueeze(1) * length).reshape(-1)
    packed = hidden.reshape(batch * length, size).index_select(0, rows).view(batch, n_max, size)
    return packed, prefix_mask(counts, n_max)


@dataclass
class PrunedOutput:
    last_hidden_state: torch.Tensor  # (B, T_last, H): the tokens left after the last layer, packed
    key_mask: torch.Tensor  # (B, T_last) which of them are real
    layer_lengths: torch.Tensor  # (B, L) how many tokens each layer ran on, per instance


def pruned_forward(model: SequenceClassifier, input_ids, attention_mask, token_type_ids, decide):
    """Run `model` (a SequenceClassifier) with token pruning between layers; returns (outputs, PrunedOutput).

    `decide(layer, received, key_mask)` is called after every layer but the last (`layer` counted from 1;
    `received`: the (B, T) attention each token received in it, `attention_received`): it returns
    a (B, T) bool tensor (hard: the tokens kept; the others leave the sequence, really removed)
    or a float tensor (soft, training: each token's states are scaled by it, nothing leaves), or None (no
    pruning after this layer). [CLS] is kept by the caller's rule, never here.

    Without gradients the layers run on the real tokens alone, packed (`packed_layer`): no projection
    ever sees padding, whether the input's or the one that ragged keep counts would leave."""
    encoder = model.bert
    key_mask = attention_mask.bool()
    hidden = encoder.embeddings(input_ids, token_type_ids)
    if not (torch.is_grad_enabled() or model.training):
        return _pruned_inference(model, hidden, key_mask, decide)
    lengths = []
    for index, layer in enumerate(encoder.encoder.layer, start=1):
        lengths.append(key_mask.sum(dim=1))
        if index == encoder.num_layers:  # the last layer's attention decides nothing: run it plainly
            hidden = layer(hidden, key_mask)
            break
        hidden, probs = layer_with_attention(layer, hidden, key_mask)
        verdict = decide(index, attention_received(probs, key_mask), key_mask)
        if verdict is None:
            continue
        if verdict.dtype == torch.bool:
            keep = verdict & key_mask
            if not bool(keep.equal(key_mask)):
                hidden, key_mask = pack_tokens(hidden, keep)
        else:
            hidden = hidden * verdict.unsqueeze(-1).to(hidden.dtype)
    return _pruned_output(model, hidden, key_mask, lengths)


def _pruned_inference(model, hidden, key_mask, decide):
    """`pruned_forward` without gradients: the (N, H) real tokens through `packed_layer`, a kept token's
    row taken along after each decision, the batch laid out (padded) again for the head only."""
    encoder = model.bert
    batch, length, size = hidden.shape
    states = hidden.reshape(batch * length, size)
    if not bool(key_mask.all()):
        states, key_mask = kept_rows(hidden, key_mask)
    lengths = []
    for index, layer in enumerate(encoder.encoder.layer, start=1):
        lengths.append(key_mask.sum(dim=1))
        last = index == encoder.num_layers  # the last layer's attention decides nothing: fused attention
        states, received = packed_layer(layer, states, key_mask, with_received=not last)
        if last:
            break
        verdict = decide(index, received, key_mask)
        if verdict is None:
            continue
        if verdict.dtype != torch.bool:
            raise ValueError("pruning without gradients takes a bool keep mask (soft weights are for training)")
        keep = verdict & key_mask
        if not bool(keep.equal(key_mask)):
            states, key_mask = kept_rows(states, keep, key_mask)
    slots = key_mask.reshape(-1).nonzero().squeeze(1)
    hidden = states.new_zeros(key_mask.numel(), size).index_copy_(0, slots, states).view(*key_mask.shape, size)
    return _pruned_output(model, hidden, key_mask, lengths)


def _pruned_output(model, hidden, key_mask, lengths):
    encoder = model.bert
    pooled = pooled_input(hidden, key_mask, encoder.config.pooling)
    logits = model.classifier(model.dropout(encoder.pooler(pooled)))
    return logits, PrunedOutput(hidden, key_mask, torch.stack(lengths, dim=1))


def pruned_traces(attention_mask, layer_lengths, hidden_size: int, head: tuple[str, ...] = ("pooler", "classifier"),
                  layer_prefix: str = "layer_") -> list[Trace]:
    """Per-instance traces of `pruned_forward`: emb over the input, then each layer as a dense layer over the
    tokens it ran on, (n, n, hidden), then the head."""
    traces = []
    for length, counts in zip(sequence_lengths(attention_mask), layer_lengths.tolist()):
        calls = [ModuleCall("emb", (length,))]
        calls += [ModuleCall(f"{layer_prefix}{i}", (n, n, hidden_size)) for i, n in enumerate(counts, start=1)]
        calls += [ModuleCall(name, (hidden_size,)) for name in head]
        traces.append(tuple(calls))
    return traces
