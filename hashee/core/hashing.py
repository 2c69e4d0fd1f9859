"""HashEE's five token hashes: a fixed map vocabulary id -> exit layer (1-based).

Spec: docs/method.md, "The five hashes". Common rules:

- ``num_buckets`` B buckets; bucket b (0-based) exits at layer ``1 + b * (L // B)``
  (6 buckets on 12 layers -> 1, 3, ..., 11; on 6 layers -> 1..6).
- Buckets hold equal numbers of token *types*: the seen, non-special types, ``n // B`` each, the
  last bucket taking the remainder (if ``n < B`` each of the first n buckets holds one type).
  ``clustered`` is the exception: its buckets are k-means clusters of unequal size.
- Special ids and ids unseen in the fitting data exit at the last layer L.
- Fitting data is the task's train (+ dev) split, **never test**: ``fit_hash`` cannot tell, so
  the caller (``hashee fit-hash``) guarantees it.
- Everything is deterministic for a seed.

Differences from the reference code (txsun1997/HashEE, utils.py), on purpose:
- MI uses presence-per-instance probabilities over any number of classes (the reference counts
  occurrences, hard-codes labels 0/1 and drops each type's first occurrence from p(x, y));
  regression targets are binned into equal-frequency bins first.
- Unseen ids exit at L for every hash (the reference gives rand-cons/clustered ids a bucket even
  if they never occur in training, and draws rand-incons layers for special tokens too).
- The last bucket takes the remainder (the reference can spill it one layer past the last bucket).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.io import atomic_path

HASH_NAMES = ("rand-incons", "rand-cons", "frequency", "mi", "clustered")

_FORMAT = "hashee-token-hash/1"
# k-means restarts: the reference uses 40; 4 keeps a 30k x 768 fit at a few seconds on CPU,
# and fixing it keeps the result a function of the seed alone.
KMEANS_N_INIT = 4
KMEANS_MAX_ITER = 300

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)


def bucket_layers(num_layers: int, num_buckets: int) -> list[int]:
    """Exit layer of each bucket: bucket b (0-based) exits at layer 1 + b * floor(L / B).

    6 buckets on 12 layers -> [1, 3, 5, 7, 9, 11]; 6 on 6 -> [1, ..., 6].
    """
    if num_layers < 1:
        raise HasheeError(f"num_layers must be >= 1, got {num_layers}")
    if not 1 <= num_buckets <= num_layers:
        raise HasheeError(f"num_buckets must be in 1..num_layers={num_layers}, got {num_buckets}")
    step = num_layers // num_buckets
    return [1 + b * step for b in range(num_buckets)]


def vocab_fingerprint(tokenizer) -> str:
    """Short, stable hex id of a tokenizer's vocabulary: sha1 over its sorted (token, id) pairs.

    Ids are part of it because a hash maps ids, not strings: the same tokens under other ids
    must not match.
    """
    items = sorted((str(tok), int(i)) for tok, i in tokenizer.get_vocab().items())
    blob = json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha1(blob).hexdigest()[:16]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrap-around arithmetic is intended)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


@dataclass(eq=False)
class TokenHash:
    """A fitted hash. ``exit_layer[id]`` is the 1-based exit layer of vocabulary id ``id``.

    For ``rand-incons`` ``exit_layer`` holds L everywhere (unused): its layers are drawn per
    occurrence in ``assign``; ``seen``/``special_ids`` still say which ids get a draw.
    """

    name: str
    num_layers: int
    num_buckets: int
    vocab_size: int
    seed: int
    vocab_fingerprint: str
    exit_layer: torch.Tensor  # (vocab_size,) long
    special_ids: tuple[int, ...]
    seen: torch.Tensor  # (vocab_size,) bool
    # Per-device copies of the lookup tables, so assign() on GPU does not re-upload each batch.
    _device_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def check_fits(self, hash_name: str, num_layers: int) -> None:
        """The hash a model's setting asks for, fitted for that model's number of (encoder) layers."""
        if self.name != hash_name:
            raise HasheeError(f"hash file holds a {self.name!r} hash but the setting asks for {hash_name!r}")
        if self.num_layers != num_layers:
            raise HasheeError(f"hash was fitted for {self.num_layers} layers, the model's encoder has {num_layers}")

    @property
    def layers(self) -> list[int]:
        return bucket_layers(self.num_layers, self.num_buckets)

    def _tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = str(device)
        if key not in self._device_cache:
            drawable = self.seen.clone()
            if self.special_ids:
                drawable[list(self.special_ids)] = False
            self._device_cache[key] = (self.exit_layer.to(device), drawable.to(device))
        return self._device_cache[key]

    def assign(self, input_ids: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Exit layers (same shape as ``input_ids``, long, in 1..L, on its device).

        Special and unseen ids -> L. For ``rand-incons`` each occurrence of a seen non-special id
        gets a uniformly random layer among ``self.layers``: drawn from ``generator`` when given
        (training), else from a hash of (seed, the row's non-special ids, occurrence index), so
        evaluation is deterministic and a row's layers do not depend on the batch it is in nor on
        its padding (pad ids are special). Other hashes ignore ``generator``.
        """
        if not isinstance(input_ids, torch.Tensor):
            input_ids = torch.as_tensor(input_ids)
        if input_ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
            raise HasheeError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
        ids = input_ids.long()
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise HasheeError(
                f"token id out of range for {self.name} hash: ids span "
                f"{int(ids.min())}..{int(ids.max())}, vocab_size is {self.vocab_size}"
            )
        exit_table, drawable_table = self._tables(ids.device)
        layers = exit_table[ids]
        if self.name != "rand-incons" or ids.numel() == 0:
            return layers
        drawable = drawable_table[ids]
        choices = torch.tensor(self.layers, dtype=torch.long)
        if generator is not None:
            idx = torch.randint(
                0, self.num_buckets, tuple(ids.shape), generator=generator, device=generator.device
            )
        else:
            idx = torch.from_numpy(self._content_draws(ids.cpu(), drawable.cpu()))
        drawn = choices[idx.cpu()].to(ids.device)
        return torch.where(drawable, drawn, layers)

    def _content_draws(self, ids: torch.Tensor, drawable: torch.Tensor) -> np.ndarray:
        """Bucket indices from a counter-based hash of (seed, row content, occurrence index)."""
        flat_ids = ids.reshape(-1, ids.shape[-1]) if ids.dim() else ids.reshape(1, 1)
        flat_mask = drawable.reshape(flat_ids.shape)
        ids_np = flat_ids.numpy()
        mask_np = flat_mask.numpy()
        out = np.zeros(ids_np.shape, dtype=np.int64)
        for r in range(ids_np.shape[0]):
            m = mask_np[r]
            if not m.any():
                continue
            row = ids_np[r][m].astype("<i8")
            h = hashlib.blake2b(digest_size=8)
            h.update(int(self.seed).to_bytes(8, "little", signed=True))
            h.update(row.tobytes())
            base = _U64(int.from_bytes(h.digest(), "little"))
            with np.errstate(over="ignore"):
                states = base + np.arange(len(row), dtype=np.uint64) * _GOLDEN
            out[r, m] = (_splitmix64(states) % _U64(self.num_buckets)).astype(np.int64)
        return out.reshape(tuple(ids.shape))

    def __eq__(self, other) -> bool:
        if not isinstance(other, TokenHash):
            return NotImplemented
        return (
            self._scalars() == other._scalars()
            and torch.equal(self.exit_layer, other.exit_layer)
            and torch.equal(self.seen, other.seen)
        )

    def _scalars(self) -> tuple:
        return (
            self.name,
            self.num_layers,
            self.num_buckets,
            self.vocab_size,
            self.seed,
            self.vocab_fingerprint,
            tuple(self.special_ids),
        )

    __hash__ = None  # mutable tensors inside

    def save(self, path) -> None:
        """One small file (torch.save of plain types), written atomically."""
        payload = {
            "format": _FORMAT,
            "name": self.name,
            "num_layers": int(self.num_layers),
            "num_buckets": int(self.num_buckets),
            "vocab_size": int(self.vocab_size),
            "seed": int(self.seed),
            "vocab_fingerprint": self.vocab_fingerprint,
            # int16 keeps a 250k vocabulary at 0.5 MB; layers fit easily.
            "exit_layer": self.exit_layer.detach().cpu().to(torch.int16),
            "special_ids": [int(i) for i in self.special_ids],
            "seen": self.seen.detach().cpu().bool(),
        }
        # Through a file object: torch.save to a path names the zip's records after it, and the temporary
        # name is random, so the same hash would be different bytes on every save.
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            torch.save(payload, fh)

    @classmethod
    def load(cls, path, vocab_fingerprint: str | None = None, vocab_size: int | None = None) -> TokenHash:
        """Load a saved hash; if given, check it was fitted for this vocabulary (fingerprint, size)."""
        path = Path(path)
        if not path.is_file():
            raise HasheeError(f"hash file {path} does not exist")
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unpickling failure means a bad file for the user
            raise HasheeError(f"hash file {path} is not a readable hash file: {exc}") from exc
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise HasheeError(f"hash file {path} is not a {_FORMAT} file")
        if vocab_fingerprint is not None and d["vocab_fingerprint"] != vocab_fingerprint:
            raise HasheeError(
                f"hash file {path} was fitted for vocabulary {d['vocab_fingerprint']} "
                f"(size {d['vocab_size']}), expected vocabulary {vocab_fingerprint}"
                + (f" (size {vocab_size})" if vocab_size is not None else "")
            )
        if vocab_size is not None and int(d["vocab_size"]) != int(vocab_size):
            raise HasheeError(
                f"hash file {path} was fitted for vocabulary size {d['vocab_size']} "
                f"({d['vocab_fingerprint']}), expected vocabulary size {vocab_size}"
                + (f" ({vocab_fingerprint})" if vocab_fingerprint is not None else "")
            )
        h = cls(
            name=d["name"],
            num_layers=int(d["num_layers"]),
            num_buckets=int(d["num_buckets"]),
            vocab_size=int(d["vocab_size"]),
            seed=int(d["seed"]),
            vocab_fingerprint=d["vocab_fingerprint"],
            exit_layer=d["exit_layer"].long(),
            special_ids=tuple(int(i) for i in d["special_ids"]),
            seen=d["seen"].bool(),
        )
        if (
            h.name not in HASH_NAMES
            or tuple(h.exit_layer.shape) != (h.vocab_size,)
            or tuple(h.seen.shape) != (h.vocab_size,)
        ):
            raise HasheeError(
                f"hash file {path} is inconsistent (name {h.name!r}, "
                f"vocab_size {h.vocab_size}, table {tuple(h.exit_layer.shape)})"
            )
        return h


# ---------------------------------------------------------------------------------------------
# fitting


def _equal_buckets(order: np.ndarray, num_buckets: int) -> np.ndarray:
    """Bucket index for each element of ``order`` (rank r -> min(r // size, B - 1))."""
    size = max(1, len(order) // num_buckets)
    return np.minimum(np.arange(len(order)) // size, num_buckets - 1)


def _flatten(token_ids: Iterable[Sequence[int]], vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat ids, row index of each id) as int64 arrays; ids must lie in [0, vocab_size)."""
    rows = [np.asarray(r, dtype=np.int64).reshape(-1) for r in token_ids]
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= vocab_size):
        raise HasheeError(f"token ids span {flat.min()}..{flat.max()}, outside vocab_size {vocab_size}")
    return flat, np.repeat(np.arange(len(rows), dtype=np.int64), lengths)


def _label_classes(labels: list, n: int, is_regression: bool, regression_bins: int) -> np.ndarray:
    """Class index per instance; regression targets -> equal-frequency (quantile) bins."""
    if len(labels) != n:
        raise HasheeError(f"mi hash: {len(labels)} labels for {n} token sequences")
    if not is_regression:
        _, y = np.unique(np.asarray(list(labels)), return_inverse=True)
        return y.reshape(-1).astype(np.int64)
    if regression_bins < 2:
        raise HasheeError(f"regression_bins must be >= 2, got {regression_bins}")
    try:
        target = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HasheeError(f"mi hash: regression labels must be numbers ({exc})") from exc
    if not np.isfinite(target).all():
        raise HasheeError("mi hash: regression labels contain NaN or inf")
    # Inner quantile edges; ties may leave some bins empty, which then simply contribute no term.
    edges = np.quantile(target, np.linspace(0.0, 1.0, regression_bins + 1)[1:-1])
    return np.searchsorted(edges, target, side="right").astype(np.int64)


def _mutual_information(flat: np.ndarray, row: np.ndarray, y: np.ndarray, vocab_size: int) -> np.ndarray:
    """Per type x: sum_y p(x,y) log(p(x,y) / (p(x) p(y))), with p over instances (presence of x)."""
    n = len(y)
    num_classes = int(y.max()) + 1 if n else 1
    # One (instance, type) pair per presence: repeated tokens in an instance count once.
    # sort + diff rather than np.unique, which is pathologically slow on 10M+ keys in numpy 2.4.
    pairs = np.sort(row * vocab_size + flat)
    pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))] if pairs.size else pairs
    p_row, p_tok = pairs // vocab_size, pairs % vocab_size
    n_x = np.bincount(p_tok, minlength=vocab_size).astype(np.float64)
    n_y = np.bincount(y, minlength=num_classes).astype(np.float64)
    n_xy = np.bincount(p_tok * num_classes + y[p_row], minlength=vocab_size * num_classes)
    n_xy = n_xy.reshape(vocab_size, num_classes).astype(np.float64)
    denom = n_x[:, None] * n_y[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n_xy > 0, (n_xy / n) * np.log(n_xy * n / np.where(denom > 0, denom, 1.0)), 0.0)
    return terms.sum(axis=1)


def fit_hash(
    name: str,
    token_ids: list[list[int]],
    labels: list,
    *,
    vocab_size: int,
    num_layers: int,
    num_buckets: int = 6,
    special_ids,
    seed: int,
    fingerprint: str,
    word_embeddings: torch.Tensor | None = None,
    is_regression: bool = False,
    regression_bins: int = 5,
) -> TokenHash:
    """Fit one hash on the task's train (+ dev) token ids — never test (the caller guarantees it).

    - ``rand-incons``: nothing to fit beyond ``seen``; layers are drawn per occurrence in assign.
    - ``rand-cons``: a seeded random permutation of the seen types, split into equal buckets.
    - ``frequency``: types sorted by count over the fitting text, descending, ties by id; the most
      frequent bucket exits at layer 1.
    - ``mi``: types sorted by MI with the label (presence per instance, any number of classes;
      regression binned into ``regression_bins`` quantile bins), highest MI exits earliest.
    - ``clustered``: k-means (k = num_buckets, random_state=seed, n_init=KMEANS_N_INIT) over the
      rows of *all* vocabulary ids of ``word_embeddings`` (the backbone's input embeddings) — as
      in the paper and reference, the clustering is a property of the backbone, not of the task.
      Clusters are ordered by the sum of their members' L2 norms (all members), ascending ->
      earliest layer. Cluster sizes are not equal. Seen non-special ids take their cluster's
      layer; unseen and special ids exit at L like every hash.
    ``labels`` is only read by ``mi``.
    """
    if name not in HASH_NAMES:
        raise unknown_name("hash", name, HASH_NAMES)
    layers = np.asarray(bucket_layers(num_layers, num_buckets), dtype=np.int64)
    if vocab_size < 1:
        raise HasheeError(f"vocab_size must be >= 1, got {vocab_size}")
    special = tuple(sorted({int(i) for i in special_ids}))
    bad = [i for i in special if not 0 <= i < vocab_size]
    if bad:
        raise HasheeError(f"special ids {bad} outside vocab_size {vocab_size}")

    token_ids = list(token_ids)
    flat, row = _flatten(token_ids, vocab_size)
    counts = np.bincount(flat, minlength=vocab_size)
    seen = counts > 0
    is_special = np.zeros(vocab_size, dtype=bool)
    is_special[list(special)] = True
    candidates = np.flatnonzero(seen & ~is_special)  # the types that get buckets, ascending id

    exit_layer = np.full(vocab_size, num_layers, dtype=np.int64)
    if name == "rand-cons":
        order = candidates[np.random.default_rng(seed).permutation(len(candidates))]
        exit_layer[order] = layers[_equal_buckets(order, num_buckets)]
    elif name == "frequency":
        # lexsort: last key is primary -> count descending, then id ascending for ties.
        order = candidates[np.lexsort((candidates, -counts[candidates]))]
        exit_layer[order] = layers[_equal_buckets(order, num_buckets)]
    elif name == "mi":
        y = _label_classes(labels, len(token_ids), is_regression, regression_bins)
        mi = _mutual_information(flat, row, y, vocab_size)
        order = candidates[np.lexsort((candidates, -mi[candidates]))]
        exit_layer[order] = layers[_equal_buckets(order, num_buckets)]
    elif name == "clustered":
        exit_layer = _clustered(word_embeddings, vocab_size, num_buckets, seed, layers)
        exit_layer[~seen | is_special] = num_layers
    # rand-incons: exit_layer stays L everywhere (unused; assign draws per occurrence).

    return TokenHash(
        name=name,
        num_layers=int(num_layers),
        num_buckets=int(num_buckets),
        vocab_size=int(vocab_size),
        seed=int(seed),
        vocab_fingerprint=fingerprint,
        exit_layer=torch.from_numpy(exit_layer).long(),
        special_ids=special,
        seen=torch.from_numpy(seen.copy()),
    )


def _clustered(
    word_embeddings, vocab_size: int, num_buckets: int, seed: int, layers: np.ndarray
) -> np.ndarray:
    """Layer per vocabulary id from k-means clusters of the embedding rows, ordered by summed norm."""
    from sklearn.cluster import KMeans  # heavy import, only this hash needs it

    if word_embeddings is None:
        raise HasheeError("clustered hash needs the backbone's word embeddings (word_embeddings=None)")
    emb = torch.as_tensor(word_embeddings).detach().float().cpu()
    if emb.dim() != 2 or emb.shape[0] < vocab_size:
        raise HasheeError(
            f"clustered hash: word_embeddings of shape {tuple(emb.shape)} do not cover "
            f"vocab_size {vocab_size} rows"
        )
    if vocab_size < num_buckets:
        raise HasheeError(f"clustered hash: vocab_size {vocab_size} < num_buckets {num_buckets}")
    # Rows past vocab_size (embedding matrices padded to a multiple of 8) are never looked up.
    x = emb[:vocab_size].numpy()
    km = KMeans(n_clusters=num_buckets, n_init=KMEANS_N_INIT, max_iter=KMEANS_MAX_ITER, random_state=seed)
    cluster = km.fit_predict(x)
    norm_sum = np.bincount(
        cluster, weights=np.linalg.norm(x.astype(np.float64), axis=1), minlength=num_buckets
    )
    # Ascending summed norm -> earliest bucket; ties (e.g. empty clusters) by cluster index.
    rank = np.empty(num_buckets, dtype=np.int64)
    rank[np.lexsort((np.arange(num_buckets), norm_sum))] = np.arange(num_buckets)
    return layers[rank[cluster]].astype(np.int64)


__all__ = ["HASH_NAMES", "KMEANS_N_INIT", "TokenHash", "bucket_layers", "fit_hash", "vocab_fingerprint"]


# ---------------------------------------------------------------------------------------------
# Fitting on a task's files

def task_fitting_data(task, data_dir, tokenizer, max_length) -> tuple[list, list]:
    """Token ids and labels of train + dev (never test) for fitting a hash."""
    from hashee.core.data import load_task

    data = load_task(task.name, data_dir, tokenizer, max_length, splits=("train", "dev"))
    ids = list(data["train"]["input_ids"]) + list(data["dev"]["input_ids"])
    labels = list(data["train"]["labels"]) + list(data["dev"]["labels"])
    return ids, labels
