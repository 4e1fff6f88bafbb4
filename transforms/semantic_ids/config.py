"""Configuration of semantic-ID codebooks: small, typed, frozen, serialisable to JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from enum import StrEnum

from warehouse.contracts import SEMANTIC_ID_LETTERS

# Token letters by position: <a_12><b_7><c_201><d_0>.
LEVEL_LETTERS = SEMANTIC_ID_LETTERS


class QuantizerKind(StrEnum):
    """How the residual codebooks are learned."""

    RESIDUAL_KMEANS = "residual_kmeans"
    RQ_VAE = "rq_vae"


class Disambiguation(StrEnum):
    """How two items with the same quantized codes are told apart.

    ``EXTRA_LEVEL`` (TIGER): one more code, the item's rank among the items sharing its codes.
    ``REASSIGN_LAST`` (LC-Rec style): the items of a colliding group move to distinct free codes of
    the last level, chosen by a Sinkhorn (entropic optimal transport) plan; no extra level.
    """

    EXTRA_LEVEL = "extra_level"
    REASSIGN_LAST = "reassign_last"


@dataclass(frozen=True)
class RqVaeConfig:
    """RQ-VAE training knobs (used when ``quantizer`` is ``rq_vae``).

    Attributes:
        latent_dim: Dimension of the quantized latent space.
        hidden: Widths of the encoder's hidden layers (the decoder mirrors them).
        epochs: Passes over the training sample.
        batch_size: Rows per optimisation step.
        learning_rate: Adam learning rate.
        commitment: Weight of the commitment loss (beta in VQ-VAE).
        device: ``auto`` picks CUDA when present, else ``cpu``; or name a torch device.
    """

    latent_dim: int = 32
    hidden: tuple[int, ...] = (512, 256)
    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 1e-3
    commitment: float = 0.25
    device: str = "auto"


@dataclass(frozen=True)
class SemanticIdConfig:
    """What a codebook version is trained with.

    Attributes:
        levels: Quantization levels (L); the full ID has L codes, plus one with ``EXTRA_LEVEL``.
        codes_per_level: Codes per level (K).
        quantizer: Residual k-means (CPU, default) or RQ-VAE (torch).
        balanced: Balanced assignment (Sinkhorn) while training, against dead codes and crowded codes;
            the per-code offsets it learns are stored and used when encoding.
        disambiguation: How full-ID collisions are resolved.
        seed: Seed of every random choice.
        train_sample_size: Items sampled (without replacement) to train on; all items are encoded.
        max_iter: Lloyd iterations per level (k-means).
        tol: Stop a level early when the centroids move less than this (relative to the data's spread).
        chunk_rows: Rows per block when encoding, which bounds memory.
        rqvae: RQ-VAE knobs.
        train_end: The training cut-off (ISO-8601, normalised to UTC), or None for no cut-off. With a
            cut-off the codebook is trained only on items available strictly before it (``available_from``
            null or earlier); every item, later ones included, is still encoded with it. A
            timezone-less value is read as UTC. Stored with the version as provenance.
    """

    levels: int = 3
    codes_per_level: int = 256
    quantizer: QuantizerKind = QuantizerKind.RESIDUAL_KMEANS
    balanced: bool = False
    disambiguation: Disambiguation = Disambiguation.EXTRA_LEVEL
    seed: int = 0
    train_sample_size: int = 65_536
    max_iter: int = 20
    tol: float = 1e-4
    chunk_rows: int = 16_384
    rqvae: RqVaeConfig = field(default_factory=RqVaeConfig)
    train_end: str | None = None

    def __post_init__(self) -> None:
        if self.train_end is not None:
            object.__setattr__(self, "train_end", _utc_iso(self.train_end))
        object.__setattr__(self, "quantizer", QuantizerKind(self.quantizer))
        object.__setattr__(self, "disambiguation", Disambiguation(self.disambiguation))
        if isinstance(self.rqvae, dict):
            rq = dict(self.rqvae)
            rq["hidden"] = tuple(rq.get("hidden", RqVaeConfig.hidden))
            object.__setattr__(self, "rqvae", RqVaeConfig(**rq))
        extra = 1 if self.disambiguation is Disambiguation.EXTRA_LEVEL else 0
        if not 1 <= self.levels <= len(LEVEL_LETTERS) - extra:
            raise ValueError(f"levels must be in 1..{len(LEVEL_LETTERS) - extra}, got {self.levels}")
        if self.codes_per_level < 2:
            raise ValueError(f"codes_per_level must be at least 2, got {self.codes_per_level}")
        for name in ("train_sample_size", "max_iter", "chunk_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def train_end_time(self) -> dt.datetime | None:
        """``train_end`` as a timezone-aware datetime."""
        return None if self.train_end is None else dt.datetime.fromisoformat(self.train_end)

    @property
    def id_length(self) -> int:
        """Codes in a full ID."""
        return self.levels + (1 if self.disambiguation is Disambiguation.EXTRA_LEVEL else 0)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): stored with every codebook version."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> SemanticIdConfig:
        return cls(**json.loads(text))


def _utc_iso(value: str | dt.datetime) -> str:
    """An instant as canonical ISO-8601 UTC text (naive values are read as UTC)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as err:
            raise ValueError(f"train_end must be an ISO-8601 timestamp, got {value!r}") from err
    if not isinstance(value, dt.datetime):
        raise ValueError(f"train_end must be an ISO-8601 timestamp or a datetime, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()
