"""Codebooks: training (residual k-means or RQ-VAE) and encoding items into per-level codes.

Encoding is a pure function of one item's embedding and the codebook: an item gets the same codes
whether it is encoded alone, in a nightly increment or in a full build. That is what lets an
incremental run encode new items with the existing codebooks and agree with a batch run.

::

    embedding x ──(encoder, RQ-VAE only)──> z = r_0
    level l:  code_l = argmin_k ||r_l - C_l[k]||^2 - bias_l[k]      r_{l+1} = r_l - C_l[code_l]
    reconstruction: sum_l C_l[code_l]   (then the decoder, RQ-VAE only)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.semantic_ids.config import QuantizerKind, SemanticIdConfig
from transforms.semantic_ids.kmeans import fit_level, nearest
from transforms.semantic_ids.mlp import Mlp
from transforms.semantic_ids.rqvae import train_rqvae


class InsufficientTrainingItemsError(ValueError):
    """Fewer items are available before the training cut-off than a level has codes (K)."""

    def __init__(self, message: str, eligible: int = 0) -> None:
        super().__init__(message)
        self.eligible = eligible  # the items available before the cut-off


def codes_for_catalog(eligible: int, requested: int) -> int:
    """Codes per level for a catalog of ``eligible`` training items: ``requested`` when it fits, else the
    largest power of two with at least four items per code (2 at least), so k-means keeps every code alive."""
    if eligible >= requested:
        return requested
    codes = 2
    while codes * 2 * 4 <= eligible:
        codes *= 2
    return min(codes, requested)


@dataclass(frozen=True)
class Codebook:
    """One immutable codebook version.

    Attributes:
        version: Version number (1, 2, ...); IDs are only comparable within a version.
        config: What it was trained with.
        centroids: Per level ``(K, code_dim)`` float32.
        biases: Per level ``(K,)`` float32 assignment offsets (zero unless trained balanced).
        embedding_dim: Dimension of the embeddings it encodes.
        trained_items: Rows it was trained on (the sample of the items available before the cut-off).
        input_fingerprint: BLAKE2b of the training rows and their count (provenance).
        embedding_model: Model that produced the embeddings, when known; encoding embeddings of
            another model with it is refused.
        parent_version: Version this one replaced in a full rebuild.
        encoder: RQ-VAE encoder (embedding -> latent); None for residual k-means.
        decoder: RQ-VAE decoder (latent -> embedding); None for residual k-means.
    """

    version: int
    config: SemanticIdConfig
    centroids: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    embedding_dim: int
    trained_items: int
    input_fingerprint: str
    embedding_model: str | None = None
    parent_version: int | None = None
    encoder: Mlp | None = None
    decoder: Mlp | None = None

    @property
    def levels(self) -> int:
        return len(self.centroids)

    @property
    def codes_per_level(self) -> int:
        return int(self.centroids[0].shape[0])

    @property
    def code_dim(self) -> int:
        return int(self.centroids[0].shape[1])

    @property
    def id_length(self) -> int:
        return self.config.id_length


@dataclass(frozen=True)
class Quantized:
    """Codes of a block of items.

    Attributes:
        codes: ``(n, L)`` int32, before disambiguation.
        sq_error: ``(n,)`` squared reconstruction error in embedding space.
        level_sq_error: ``(L,)`` mean squared residual left after each level (in code space).
    """

    codes: np.ndarray
    sq_error: np.ndarray
    level_sq_error: np.ndarray


def as_embedding_matrix(embeddings: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Validate embeddings as a C-contiguous float32 ``(n, dim)`` matrix of finite values."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d (items, dim) array, got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"embeddings have dimension {x.shape[1]}, the codebook encodes dimension {dim}")
    if x.size and not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"embeddings hold NaN or infinite values (first at row {bad})")
    return x


AvailableFrom: TypeAlias = pa.Array | pa.ChunkedArray | np.ndarray | Sequence[dt.datetime | None]


def available_before(available_from: AvailableFrom, train_end: dt.datetime) -> np.ndarray:
    """Which items are available strictly before ``train_end``: a null ``available_from`` counts as
    available from the start.

    Args:
        available_from: One instant per item (Arrow timestamps, numpy ``datetime64`` or datetimes;
            timezone-less values are read as UTC), null/NaT for "always available".
        train_end: The cut-off, timezone-aware.

    Returns:
        A boolean mask, one entry per item.
    """
    if train_end.tzinfo is None:
        raise ValueError("train_end must be timezone-aware (UTC)")
    if isinstance(available_from, pa.ChunkedArray):
        available_from = available_from.combine_chunks()
    arr = available_from if isinstance(available_from, pa.Array) else pa.array(available_from)
    if len(arr) == 0:
        return np.zeros(0, dtype=bool)
    if arr.type == pa.null():
        return np.ones(len(arr), dtype=bool)
    if not pa.types.is_timestamp(arr.type):
        raise ValueError(f"available_from must hold timestamps, got {arr.type}")
    if arr.type.tz is None:
        arr = pc.assume_timezone(arr, "UTC")
    ms = arr.cast(pa.timestamp("ms", tz="UTC"))
    cutoff = pa.scalar(train_end.astimezone(dt.UTC), type=pa.timestamp("ms", tz="UTC"))
    before = pc.fill_null(pc.less(ms, cutoff), True)
    return before.to_numpy(zero_copy_only=False).astype(bool)


def training_mask(n: int, config: SemanticIdConfig, available_from: AvailableFrom | None) -> np.ndarray:
    """Rows a codebook trains on: every row without a cut-off, else those available before it.

    Raises:
        ValueError: ``config.train_end`` is set but ``available_from`` is missing or misaligned.
        InsufficientTrainingItemsError: With a cut-off, fewer than ``codes_per_level`` rows qualify.
    """
    cutoff = config.train_end_time
    if cutoff is None:
        return np.ones(n, dtype=bool)
    if available_from is None:
        raise ValueError("config.train_end is set: pass available_from (one instant or null per item)")
    mask = available_before(available_from, cutoff)
    if len(mask) != n:
        raise ValueError(f"{n} embeddings but {len(mask)} available_from values")
    eligible = int(mask.sum())
    if eligible < config.codes_per_level:
        raise InsufficientTrainingItemsError(
            f"only {eligible} of {n} items are available before the training cut-off {config.train_end}, "
            f"fewer than the {config.codes_per_level} codes per level: use a later train_end or fewer "
            "codes_per_level (training on later items instead would leak them into the codebook)",
            eligible=eligible,
        )
    return mask


def train_codebook(
    embeddings: np.ndarray,
    config: SemanticIdConfig,
    *,
    version: int = 1,
    parent_version: int | None = None,
    embedding_model: str | None = None,
    available_from: AvailableFrom | None = None,
) -> Codebook:
    """Train a codebook version on (a sample of) the embeddings available before the cut-off.

    With ``config.train_end`` set, only rows whose ``available_from`` is null or before it are
    trained on (DESIGN.md section 3, rule 1: the codebook's geometry must not be shaped by items
    that only appear later); the other rows change nothing, not a byte. Residual k-means trains level
    by level on the residuals of a ``train_sample_size`` sample; RQ-VAE trains encoder, codebooks and
    decoder jointly with torch (on CUDA when present). The result depends only on the training rows,
    their order and ``config.seed``; callers sort rows by item id first.

    Args:
        embeddings: ``(n, dim)`` rows, n >= 1.
        config: Levels, codes, quantizer, seed, sample size, cut-off.
        version: Version number to give it.
        parent_version: The version it replaces (full rebuild), if any.
        embedding_model: Model name of the embeddings, recorded for later checks.
        available_from: Per row, when the item became available (null: from the start); required
            when ``config.train_end`` is set, ignored otherwise.

    Raises:
        InsufficientTrainingItemsError: With a cut-off, fewer than ``codes_per_level`` rows are
            available before it (no silent fallback to training on later items).
    """
    x = as_embedding_matrix(embeddings)
    if x.shape[0] == 0:
        raise ValueError("cannot train a codebook on zero items")
    mask = training_mask(x.shape[0], config, available_from)
    if not mask.all():
        x = x[mask]
    rng = np.random.default_rng(config.seed)
    n = x.shape[0]
    if n > config.train_sample_size:
        sample = x[np.sort(rng.choice(n, size=config.train_sample_size, replace=False))]
    else:
        sample = x.copy()
    fingerprint = hashlib.blake2b(sample.tobytes(), digest_size=16)
    fingerprint.update(str(n).encode())
    encoder = decoder = None
    if config.quantizer is QuantizerKind.RESIDUAL_KMEANS:
        centroids, biases = _residual_kmeans(sample, config, rng)
    else:
        trained = train_rqvae(sample, config)
        centroids, biases = trained.centroids, tuple(np.zeros(len(c), np.float32) for c in trained.centroids)
        encoder, decoder = trained.encoder, trained.decoder
    return Codebook(
        version=version,
        config=config,
        centroids=centroids,
        biases=biases,
        embedding_dim=x.shape[1],
        trained_items=int(sample.shape[0]),
        input_fingerprint=fingerprint.hexdigest(),
        embedding_model=embedding_model,
        parent_version=parent_version,
        encoder=encoder,
        decoder=decoder,
    )


def _residual_kmeans(
    sample: np.ndarray, config: SemanticIdConfig, rng: np.random.Generator
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    residual = sample  # a private copy: updated in place level by level
    centroids, biases = [], []
    for _ in range(config.levels):
        fit = fit_level(
            residual, config.codes_per_level, rng, max_iter=config.max_iter, tol=config.tol, balanced=config.balanced
        )
        residual -= fit.centroids[fit.codes]
        centroids.append(fit.centroids)
        biases.append(fit.bias)
    return tuple(centroids), tuple(biases)


def quantize(codebook: Codebook, embeddings: np.ndarray) -> Quantized:
    """Encode embeddings into per-level codes, block by block (memory: one block, not the whole set)."""
    x = as_embedding_matrix(embeddings, codebook.embedding_dim)
    n, levels = x.shape[0], codebook.levels
    chunk = codebook.config.chunk_rows
    codes = np.empty((n, levels), dtype=np.int32)
    sq_error = np.empty(n, dtype=np.float32)
    level_sum = np.zeros(levels, dtype=np.float64)
    biases = [b if np.any(b) else None for b in codebook.biases]
    for start in range(0, n, chunk):
        block = x[start : start + chunk]
        stop = start + len(block)
        residual = codebook.encoder(block) if codebook.encoder is not None else block.copy()
        for level, (centroids, bias) in enumerate(zip(codebook.centroids, biases, strict=True)):
            level_codes, level_sq = nearest(residual, centroids, bias, chunk)
            codes[start:stop, level] = level_codes
            residual -= centroids[level_codes]
            level_sum[level] += float(np.sum(level_sq, dtype=np.float64))
        if codebook.decoder is not None:
            latent = codebook.encoder(block) - residual  # type: ignore[misc]
            diff = block - codebook.decoder(latent)
            sq_error[start:stop] = np.einsum("ij,ij->i", diff, diff)
        else:
            sq_error[start:stop] = np.einsum("ij,ij->i", residual, residual)
    return Quantized(codes=codes, sq_error=sq_error, level_sq_error=level_sum / max(n, 1))


def residual_before_level(codebook: Codebook, embeddings: np.ndarray, codes: np.ndarray, level: int) -> np.ndarray:
    """What is left of each row to quantize at ``level``, given its codes of the levels above."""
    x = as_embedding_matrix(embeddings, codebook.embedding_dim)
    residual = codebook.encoder(x) if codebook.encoder is not None else x.copy()
    for upper in range(level):
        residual -= codebook.centroids[upper][codes[:, upper]]
    return residual
