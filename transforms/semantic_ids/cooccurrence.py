"""Item embeddings learned from co-occurrence in user histories, for items without catalog text.

Many datasets name items in their logs that the catalog does not describe (a MIND sample: 92 % of
impressed news), and an events-only dataset has no catalog at all. Such items still need a semantic
ID. Their embedding comes from the training window only (DESIGN.md section 3, rule 1)::

    events with ts < cut-off, per user in time order
      -> pairs of distinct items at most ``window`` steps apart        (symmetric counts C)
      -> PPMI_ij = max(0, log(C_ij * total / (C_i. * C_.j)))
      -> randomized truncated SVD (seeded):  E = U * sqrt(S), rows L2-normalised, signs fixed

Deterministic: rows are items in id order, the random projection is seeded, and each component's
sign is chosen so that its largest loading is positive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COOCCURRENCE_MODEL = "cooccurrence-ppmi-svd@1"


@dataclass(frozen=True)
class CooccurrenceConfig:
    """How co-occurrence embeddings are learned.

    Attributes:
        dim: Embedding dimension (fewer when there are fewer items).
        window: Two events of one user at most this many steps apart co-occur.
        seed: Seed of the randomized SVD.
        power_iterations: Subspace iterations of the randomized SVD.
    """

    dim: int = 32
    window: int = 5
    seed: int = 0
    power_iterations: int = 4

    @property
    def model(self) -> str:
        """The name an embedding space of these settings is known by (a codebook records it)."""
        return f"{COOCCURRENCE_MODEL}:dim={self.dim}:window={self.window}:seed={self.seed}"


def cooccurrence_embeddings(
    events: pa.Table, cutoff: dt.datetime, config: CooccurrenceConfig = CooccurrenceConfig()
) -> tuple[list[str], np.ndarray]:
    """Items that co-occur with another item before ``cutoff``, and their unit embeddings.

    Args:
        events: ``user_id``, ``item_id``, ``ts`` (other columns ignored; null items skipped).
        cutoff: Only events strictly before it are read.
        config: Dimension, window, seed.

    Returns:
        Item ids (sorted) and their ``(n, dim)`` float32 unit vectors; items without any co-occurring
        item before the cut-off are absent.
    """
    from scipy import sparse

    if cutoff.tzinfo is None:
        raise ValueError("the cut-off must be timezone-aware (UTC)")
    table = events.select(["user_id", "item_id", "ts"]).filter(pc.is_valid(events["item_id"]))
    table = table.filter(pc.less(table["ts"], pa.scalar(cutoff, type=table.schema.field("ts").type)))
    if table.num_rows < 2:
        return [], np.zeros((0, config.dim), np.float32)
    table = table.take(pc.sort_indices(table, [("user_id", "ascending"), ("ts", "ascending"), ("item_id", "ascending")]))
    items = pc.unique(table["item_id"]).sort()
    item_idx = pc.index_in(table["item_id"], value_set=items).to_numpy()
    user_idx = pc.index_in(table["user_id"], value_set=pc.unique(table["user_id"])).to_numpy()
    n = len(items)
    rows, cols = [], []
    for offset in range(1, config.window + 1):
        same = (user_idx[offset:] == user_idx[:-offset]) & (item_idx[offset:] != item_idx[:-offset])
        rows.append(item_idx[:-offset][same])
        cols.append(item_idx[offset:][same])
    r, c = np.concatenate(rows), np.concatenate(cols)
    if len(r) == 0:
        return [], np.zeros((0, config.dim), np.float32)
    counts = sparse.coo_matrix((np.ones(2 * len(r)), (np.r_[r, c], np.r_[c, r])), shape=(n, n)).tocsr()
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    coo = counts.tocoo()
    pmi = np.log(coo.data * totals.sum() / (totals[coo.row] * totals[coo.col]))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=(n, n))
    present = np.flatnonzero(totals > 0)
    vectors = _embed(ppmi, min(config.dim, max(1, len(present) - 1)), config)
    norms = np.linalg.norm(vectors, axis=1)
    ok = present[norms[present] > 0]
    ids = items.take(pa.array(ok)).to_pylist()
    out = np.zeros((len(ok), config.dim), np.float32)
    out[:, : vectors.shape[1]] = vectors[ok] / norms[ok, None]
    return ids, out


def _embed(matrix: object, k: int, config: CooccurrenceConfig) -> np.ndarray:
    """``U * sqrt(S)`` of a rank-``k`` randomized SVD (Halko et al.), signs fixed."""
    n = matrix.shape[0]  # type: ignore[attr-defined]
    rng = np.random.default_rng(config.seed)
    q, _ = np.linalg.qr(matrix @ rng.standard_normal((n, min(n, k + 8))))  # type: ignore[operator]
    for _ in range(config.power_iterations):
        q, _ = np.linalg.qr(matrix.T @ q)  # type: ignore[attr-defined]
        q, _ = np.linalg.qr(matrix @ q)  # type: ignore[operator]
    u_small, s, _ = np.linalg.svd((matrix.T @ q).T, full_matrices=False)  # type: ignore[attr-defined]
    u = (q @ u_small)[:, :k] * np.sqrt(s[:k])
    signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])
    return u * np.where(signs == 0, 1.0, signs)


def id_hash_vectors(item_ids: list[str], dim: int, salt: str = "") -> np.ndarray:
    """A unit vector per item drawn from a generator seeded by its id: the last resort for items
    with neither text nor co-occurrence in the training window (deterministic, spread out)."""
    out = np.empty((len(item_ids), dim), np.float32)
    for i, item in enumerate(item_ids):
        seed = int.from_bytes(hashlib.blake2b(f"{salt}\x1f{item}".encode(), digest_size=8).digest(), "little")
        v = np.random.default_rng(seed).standard_normal(dim)
        out[i] = v / np.linalg.norm(v)
    return out
