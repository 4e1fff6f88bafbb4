"""Frozen configs: one per model, one for the run, one for the data. A checkpoint holds them all.

``TrainConfig`` is the whole of what ``train`` needs; ``with_overrides`` applies the CLI's
``--set section.key=value`` (values parsed against the field's type), and ``to_dict`` / ``from_dict``
round-trip it through JSON (the checkpoint and ``--config`` files).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, get_type_hints


class ModelKind(StrEnum):
    MF = "mf"
    TWO_TOWER = "two_tower"
    HGNN = "hgnn"  # 2T-HGNN: a heterogeneous GNN over items (training/hgnn/) under the two towers


class MFLoss(StrEnum):
    """Pointwise MF losses (training/losses.py)."""

    NAIVE = "naive"  # every non-positive pair is a negative (Y in {0, 1})
    RELMF = "relmf"  # Saito et al. WSDM 2020: Y / theta and 1 - Y / theta, theta clipped below
    MFDU = "mfdu"  # Lee et al. SIGIR 2021: SNIPS-normalised positive and negative propensities


class ContentGroup(StrEnum):
    """Item content the two-tower model can use (training/data/two_tower_content.py), in the towers' order."""

    CODES = "codes"  # semantic-ID codes, one embedding table per level
    TEXT = "text"  # the text embedding, projected
    CATEGORY = "category"  # catalog categories, hashed
    BRAND = "brand"  # catalog brand, hashed
    PRICE = "price"  # catalog price bucket


class DataSource(StrEnum):
    COAT = "coat"  # the Coat folder under the Lee et al. protocol (training/data/coat.py)
    LABELS = "labels"  # labels/debiased_labels + eval/random_exposure_ratings of a warehouse (after ``recforge ingest coat``)
    TWO_TOWER = "two_tower"  # training_data/two_tower_examples + item_frequencies of a warehouse


@dataclass(frozen=True)
class DataConfig:
    """Where the examples come from.

    Attributes:
        source: Which reader builds the data.
        path: The Coat folder (``COAT``) or the warehouse root (``LABELS``, ``TWO_TOWER``; empty: ``data_root()``).
        dataset: The ``dataset`` name of the random-exposure test ratings (``LABELS``).
        positive_rating: Ratings at or above it are positives (Coat protocol: 4).
        valid_share: Share of each user's training ratings held out for validation (Coat protocol: 0.3).
        valid_seed: Seed of that hold-out (Coat protocol: 12345).
        propensity_power: theta_i = (positives_i / max)^power (Coat protocol: 0.5).
    """

    source: DataSource = DataSource.COAT
    path: str = ""
    dataset: str = "coat"
    positive_rating: int = 4
    valid_share: float = 0.3
    valid_seed: int = 12345
    propensity_power: float = 0.5


@dataclass(frozen=True)
class MFConfig:
    """Matrix factorisation (Lee et al.'s defaults for Coat: dim 128, Adam, batch 1024).

    Attributes:
        loss: Naive, Rel-MF or MF-DU.
        dim: Embedding dimension.
        lr: Adam learning rate.
        l2: Weight of ``(||P||^2 + ||Q||^2) / 2`` (TensorFlow's ``l2_loss``), added to every step's loss.
        clip_min: Propensities are clipped to ``[clip_min, 1]`` in the debiased losses.
    """

    loss: MFLoss = MFLoss.NAIVE
    dim: int = 128
    lr: float = 0.005
    l2: float = 1e-9
    clip_min: float = 0.1


@dataclass(frozen=True)
class TwoTowerConfig:
    """Two-tower retrieval (training/models/two_tower.py, training/tasks.py).

    Attributes:
        dim: Output embedding dimension of both towers.
        hidden: Hidden width of the tower MLPs.
        max_history: Most recent history items pooled by the user tower.
        user_buckets: Hash buckets of the user-id embedding (0: no user-id embedding).
        temperature: Logits are ``<u, v> / temperature``.
        logq: Subtract ``log Q(item)`` (its share of the training positives) from in-batch logits.
        uniform_negatives: Extra negatives drawn uniformly from the catalogue (logit correction ``log(n / N)``).
        remove_accidental_hits: Mask in-batch and sampled negatives that are the row's own positive item.
        use_weights: Weigh each example's loss by its debiased label weight.
        ssl_weight: Weight alpha of the self-supervised loss (Yao et al. CIKM 2021); 0 turns it off.
        ssl_mask_rate: Share of item-tower feature groups masked in each view.
        ssl_temperature: Temperature of the contrastive loss.
        lr: Adam learning rate.
        weight_decay: AdamW weight decay.
        content: Item content groups both towers use, comma-separated ``ContentGroup`` values; ``auto``: every
            group the data has a value for (none without content tables: ids only); ``none``: ids only.
        id_dropout: Share of training positives the item tower sees through the shared "unseen" id row
            (DropoutNet-style), so that row and the content learn to serve items without a trained id.
        content_neighbours: With the text group on, an item without a trained id row (new, or id-dropped in
            training) takes the softmax-weighted mean of the id rows of its this many most text-similar trained
            items instead of the shared unseen row (0: the unseen row).
        hash_buckets: Hash buckets of the category and brand embeddings.
        price_buckets: Equal-count price buckets.
    """

    dim: int = 64
    hidden: int = 128
    max_history: int = 50
    user_buckets: int = 0
    temperature: float = 0.05
    logq: bool = True
    uniform_negatives: int = 0
    remove_accidental_hits: bool = True
    use_weights: bool = True
    ssl_weight: float = 0.0
    ssl_mask_rate: float = 0.5
    ssl_temperature: float = 0.1
    lr: float = 0.003
    weight_decay: float = 0.0
    content: str = "auto"
    id_dropout: float = 0.0
    content_neighbours: int = 20
    hash_buckets: int = 1024
    price_buckets: int = 10

    def content_groups(self, available: tuple[ContentGroup, ...]) -> tuple[ContentGroup, ...]:
        """The groups to use, given those the data has (``available``).

        Raises:
            ValueError: A named group is unknown or the data has no value for it.
        """
        setting = self.content.strip().lower()
        if setting == "auto":
            return available
        if setting in ("none", ""):
            return ()
        named = {ContentGroup(name.strip()) for name in setting.split(",") if name.strip()}
        missing = sorted(g.value for g in named if g not in available)
        if missing:
            raise ValueError(f"two_tower.content names {missing}, but the data has no such content (it has {[g.value for g in available]})")
        return tuple(g for g in ContentGroup if g in named)


@dataclass(frozen=True)
class HGNNConfig:
    """The item graph and the heterogeneous GNN of 2T-HGNN (training/hgnn/); the towers on top read
    ``TwoTowerConfig``. Field names differ from ``TwoTowerConfig``'s so one flat asset config sets both.

    Attributes:
        graph_dim: Output width of the HGNN item embedding (the towers' content feature).
        graph_hidden: Width of every node type's input projection and of the message-passing layers.
        neighbours: Neighbours sampled per edge type at each hop, comma-separated (its length is the depth).
        cooc_window: Co-occurrence pairs a training example adds: its item with the last ``cooc_window`` history items.
        knn: Content-similarity neighbours per item (cosine of the text embeddings; 0: no content edges).
        id_embedding: Items with a training interaction also get an id embedding in the HGNN (new items share one row);
            off by default: the HGNN then embeds every item alike, from content and structure, as it must a new one.
        id_dropout: Share of training positives the item tower sees through the shared row instead of their own id
            (DropoutNet-style), so it learns to score an item from its HGNN embedding alone, as it must for new items.
        link_epochs: Epochs of the contrastive link loss over the co-occurrence edges.
        link_batch_size: Co-occurrence edges per step (in-batch negatives).
        link_lr: Adam learning rate of the HGNN.
        link_temperature: Temperature of the link loss.
        max_link_steps: Stop the HGNN's training after this many steps (0: no bound).
    """

    graph_dim: int = 64
    graph_hidden: int = 64
    neighbours: str = "10,5"
    cooc_window: int = 3
    knn: int = 10
    id_embedding: bool = False
    id_dropout: float = 0.5
    link_epochs: int = 3
    link_batch_size: int = 512
    link_lr: float = 0.003
    link_temperature: float = 0.1
    max_link_steps: int = 0

    @property
    def fanout(self) -> list[int]:
        return [int(n) for n in self.neighbours.split(",") if n.strip()]


class AnnKind(StrEnum):
    """Approximate top-K indexes (faiss, inner product); exact brute force stays the protocol."""

    NONE = "none"  # exact top-K only
    HNSW = "hnsw"  # IndexHNSWFlat: a graph, no training
    IVF = "ivf"  # IndexIVFFlat: k-means lists, ``probe`` of them searched


@dataclass(frozen=True)
class AnnConfig:
    """An ANN index over the item vectors, evaluated beside the exact top-K (training/ann.py): its
    recall against the exact result is reported, and the metrics it would serve.

    Attributes:
        kind: Which index (``none``: exact only).
        hnsw_m: HNSW graph degree.
        ef_search: HNSW search breadth (higher: slower, closer to exact).
        lists: IVF lists (0: about the square root of the catalogue).
        probe: IVF lists searched per query.
    """

    kind: AnnKind = AnnKind.NONE
    hnsw_m: int = 16
    ef_search: int = 32
    lists: int = 0
    probe: int = 4


@dataclass(frozen=True)
class RunConfig:
    """How the loop runs.

    Attributes:
        seed: Seeds the initialisation (the same on every rank) and the shuffles.
        batch_size: Global batch: each of ``W`` ranks takes ``batch_size / W`` rows of it.
        max_epochs: Upper bound on epochs.
        max_steps: Stop after this many optimiser steps (0: no bound).
        patience: Stop when the validation metric has not improved for this many evaluations (0: never).
        eval_every_epochs: Evaluate on the validation split every this many epochs.
        out_dir: Where checkpoints go (empty: no checkpoints).
        resume: Continue from the latest checkpoint in ``out_dir`` when there is one.
        init_from: Warm start: a checkpoint file whose model weights (those of its best epoch) initialise
            a fresh run; the optimiser starts anew. Resuming from ``out_dir`` takes precedence (empty: none).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        threads: torch CPU threads (0: torch's default).
        eval_k: The K of the test metrics (the Coat protocol: 5).
        valid_k: The K of the validation metric that picks the epoch.
    """

    seed: int = 1
    batch_size: int = 1024
    max_epochs: int = 300
    max_steps: int = 0
    patience: int = 5
    eval_every_epochs: int = 1
    out_dir: str = ""
    resume: bool = True
    init_from: str = ""
    device: str = "auto"
    threads: int = 0
    eval_k: int = 5
    valid_k: int = 3


@dataclass(frozen=True)
class TrainConfig:
    model: ModelKind = ModelKind.MF
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)
    mf: MFConfig = field(default_factory=MFConfig)
    two_tower: TwoTowerConfig = field(default_factory=TwoTowerConfig)
    hgnn: HGNNConfig = field(default_factory=HGNNConfig)
    ann: AnnConfig = field(default_factory=AnnConfig)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TrainConfig:
        out = cls()
        flat = {f"{section}.{key}": value for section, values in payload.items() if isinstance(values, dict) for key, value in values.items()}
        if "model" in payload:
            flat["model"] = payload["model"]
        return out.with_overrides(flat)

    def with_overrides(self, overrides: dict[str, Any]) -> TrainConfig:
        """A copy with ``{"section.key": value}`` (or ``{"model": ...}``) applied; strings are parsed to the field type."""
        config = self
        for dotted, value in overrides.items():
            if dotted == "model":
                config = dataclasses.replace(config, model=ModelKind(value))
                continue
            section, _, key = dotted.partition(".")
            part = getattr(config, section, None)
            if not dataclasses.is_dataclass(part) or key not in {f.name for f in dataclasses.fields(part)}:
                raise KeyError(f"unknown setting {dotted!r}")
            kind = get_type_hints(type(part))[key]
            config = dataclasses.replace(config, **{section: dataclasses.replace(part, **{key: _parse(value, kind)})})  # type: ignore[arg-type]
        return config


def load_config(path: Path | None, overrides: dict[str, Any] | None = None, model: str | None = None) -> TrainConfig:
    """A config from a JSON file (or the defaults), the model kind and ``section.key=value`` overrides."""
    config = TrainConfig.from_dict(json.loads(Path(path).read_text())) if path else TrainConfig()
    if model is not None:
        config = config.with_overrides({"model": model})
    return config.with_overrides(overrides or {})


def _parse(value: Any, kind: Any) -> Any:
    if not isinstance(value, str):
        return kind(value) if isinstance(kind, type) and issubclass(kind, StrEnum) else value
    if kind is bool:
        if value.lower() not in {"true", "false", "1", "0"}:
            raise ValueError(f"not a boolean: {value!r}")
        return value.lower() in {"true", "1"}
    if isinstance(kind, type):
        return kind(value)
    return value
