"""Frozen configs of the generative recommenders (SASRec, HSTU, TIGER), in the style of
``training.config``: one dataclass per model, the run's ``RunConfig`` reused, and one
``GenerativeConfig`` that a checkpoint holds whole (``to_dict`` / ``from_dict`` / ``with_overrides``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, get_type_hints

from training.config import RunConfig
from training.device import fast_bf16


class GenerativeKind(StrEnum):
    SASREC = "sasrec"
    HSTU = "hstu"
    TIGER = "tiger"


class SoftmaxKind(StrEnum):
    FULL = "full"  # cross-entropy over the whole catalogue at every position
    SAMPLED = "sampled"  # in-batch positives plus uniform negatives, log-Q corrected


class SequenceSource(StrEnum):
    SHARDS = "shards"  # training_data/sequence_shards of a warehouse (a leave-one-out build)
    BEAUTY = "beauty"  # the TIGER Amazon Beauty split: {user: [items]} JSON (+ optional published semantic IDs)
    MOVIELENS = "movielens"  # an ml-100k style ``u.data`` (user, item, rating, unix seconds)


@dataclass(frozen=True)
class SequenceDataConfig:
    """Where the sequences come from and how they are evaluated.

    Attributes:
        source: Which reader builds the data.
        path: Shard root / warehouse root (``SHARDS``), the Beauty folder, or the MovieLens folder.
        dataset: Name recorded with the metrics.
        max_len: Most recent items a model sees (SASRec / HSTU history length).
        filter_seen: Items of the query history are removed from the ranking (the target never is);
            recorded in the protocol name.
        length_groups: Batches group rows (TIGER: prefixes) of similar length: the rows of this many batches
            are sorted by length, cut into batches, and the batches shuffled (0: a plain shuffle). Short
            histories then cost what they hold, not the batch's longest row.
    """

    source: SequenceSource = SequenceSource.SHARDS
    path: str = ""
    dataset: str = ""
    max_len: int = 50
    filter_seen: bool = True
    length_groups: int = 50


@dataclass(frozen=True)
class SASRecConfig:
    """SASRec (Kang and McAuley, ICDM 2018), trained on every position with a full softmax by default.

    Attributes:
        dim: Embedding and hidden width (item embeddings are shared with the output layer).
        layers: Transformer blocks.
        heads: Attention heads.
        dropout: Dropout of embeddings, attention and feed-forward.
        loss: Full cross-entropy, or sampled softmax (in-batch + ``negatives`` uniform, log-Q corrected).
        negatives: Uniform negatives per batch of the sampled softmax.
        temperature: Sampled-softmax logits are divided by it.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        beta2: Adam's second-moment decay (the reference SASRec uses 0.98).
    """

    dim: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.3
    loss: SoftmaxKind = SoftmaxKind.FULL
    negatives: int = 256
    temperature: float = 1.0
    lr: float = 0.001
    weight_decay: float = 0.0
    beta2: float = 0.98


@dataclass(frozen=True)
class HSTUConfig:
    """HSTU (Zhai et al., ICML 2024), defaults after the reference's MovieLens configuration.

    Attributes:
        dim: Item embedding width (and the residual stream).
        layers: HSTU blocks.
        heads: Attention heads.
        attention_dim: Per-head width of Q and K.
        linear_dim: Per-head width of U and V.
        dropout: Dropout of the input and of each block's output projection.
        num_buckets: Time-difference buckets of the relative bias (ln(seconds) / 0.301, as the reference).
        action_types: Add an embedding of each event's type (the loader's ``event_types``) to its item.
        loss: Sampled softmax (the reference's: the positive against ``negatives`` uniform items), or the full
            softmax over the catalogue (the same cosine logits over the temperature; what SASRec uses).
        negatives: Uniform negatives per batch of the sampled softmax.
        temperature: Logits are cosine similarities divided by it.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        beta2: Adam's second-moment decay. 0.999 (PyTorch's) is what every earlier run used; the reference
            trainer and our SASRec use 0.98.
    """

    dim: int = 64
    layers: int = 2
    heads: int = 1
    attention_dim: int = 64
    linear_dim: int = 64
    dropout: float = 0.2
    num_buckets: int = 128
    action_types: bool = True
    loss: SoftmaxKind = SoftmaxKind.SAMPLED
    negatives: int = 128
    temperature: float = 0.05
    lr: float = 0.001
    weight_decay: float = 0.0
    beta2: float = 0.999


@dataclass(frozen=True)
class TIGERConfig:
    """TIGER (Rajput et al., NeurIPS 2023): encoder-decoder over semantic-ID tokens.

    Attributes:
        dim: Model width (the paper: 128).
        layers: Encoder layers and decoder layers each (the paper: 4).
        heads: Attention heads (the paper: 6 of width 64; here ``dim`` is split).
        ff: Feed-forward width (the paper: 1024).
        dropout: Dropout (the paper: 0.1).
        max_items: History items encoded, most recent last (the paper: 20).
        recency_positions: Number the encoder's positions from the newest item back instead of from the oldest
            forward, so that the item the next one most depends on has the same position in every history.
        user_buckets: Hash buckets of the user token (the paper: 2000; 0: no user token, as in LETTER's TIGER).
        beam: Beams of the constrained beam search at test time (at least the largest K).
        valid_beam: Beams when validating.
        valid_users: Validation users decoded per evaluation (0: all), a seeded random sample, the same at every
            evaluation.
        test_users: Test users decoded (0: all), a seeded random sample (beam search is the cost on a CPU).
        bf16: Train with the matrix products in bfloat16 (autocast; CPUs with AMX or AVX512-BF16, and CUDA):
            1.7x the examples/s on these machines. Decoding stays in float32.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
    """

    dim: int = 128
    layers: int = 4
    heads: int = 4
    ff: int = 1024
    dropout: float = 0.1
    max_items: int = 20
    recency_positions: bool = False
    user_buckets: int = 2000
    beam: int = 50
    valid_beam: int = 10
    valid_users: int = 2000
    test_users: int = 0
    bf16: bool = False
    lr: float = 0.001
    weight_decay: float = 0.0


class LrScheduleKind(StrEnum):
    CONSTANT = "constant"  # the optimiser's learning rate throughout (what every run before this option used)
    COSINE = "cosine"  # linear warm-up, then a half cosine down to ``min_ratio`` of it
    INVERSE_SQRT = "inverse_sqrt"  # linear warm-up, the full rate to ``hold_epochs``, then sqrt(hold / step) (TIGER's, T5's)


@dataclass(frozen=True)
class LrScheduleConfig:
    """The learning rate over the run, as a factor of the model's ``lr`` set before every step (counted in epochs
    of steps, so a seeded run replays exactly whatever its budget).

    Attributes:
        kind: ``constant`` leaves the optimiser's learning rate alone.
        warmup_epochs: The factor rises linearly from one step's share to 1 over these epochs (0: none).
        decay_epochs: The cosine reaches ``min_ratio`` at the end of this epoch (counted from the start, warm-up
            included) and stays there.
        min_ratio: The factor after the decay (the inverse square root's floor).
        hold_epochs: ``inverse_sqrt``: the full rate until the end of this epoch (warm-up included; TIGER: 10,000
            steps at 0.01), then the factor ``sqrt(hold / step)`` in steps.
    """

    kind: LrScheduleKind = LrScheduleKind.CONSTANT
    warmup_epochs: float = 0.0
    decay_epochs: float = 100.0
    min_ratio: float = 0.0
    hold_epochs: float = 0.0


@dataclass(frozen=True)
class GenerativeConfig:
    """Everything ``train_generative`` needs; ``budget_seconds`` bounds the training wall clock (0: none);
    ``ema_decay`` (0: off) validates, keeps and tests an exponential moving average of the weights instead of the
    weights themselves (``training.generative.averaging``; 0.999 averages over about the last 1,000 steps)."""

    model: GenerativeKind = GenerativeKind.SASREC
    data: SequenceDataConfig = field(default_factory=SequenceDataConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(batch_size=128, max_epochs=200, patience=10, valid_k=10))
    sasrec: SASRecConfig = field(default_factory=SASRecConfig)
    hstu: HSTUConfig = field(default_factory=HSTUConfig)
    tiger: TIGERConfig = field(default_factory=TIGERConfig)
    schedule: LrScheduleConfig = field(default_factory=LrScheduleConfig)
    budget_seconds: float = 0.0
    ema_decay: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> GenerativeConfig:
        flat = {f"{s}.{k}": v for s, values in payload.items() if isinstance(values, dict) for k, v in values.items()}
        flat |= {k: v for k, v in payload.items() if not isinstance(v, dict)}
        return cls().with_overrides(flat)

    def with_overrides(self, overrides: dict[str, Any]) -> GenerativeConfig:
        """A copy with ``{"section.key": value}`` (or a top-level ``{"model": ...}``) applied; strings
        are parsed to the field's type."""
        config = self
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            if not key:
                kind = get_type_hints(type(config))[section]
                config = dataclasses.replace(config, **{section: _parse(value, kind)})
                continue
            part = getattr(config, section, None)
            if not dataclasses.is_dataclass(part) or key not in {f.name for f in dataclasses.fields(part)}:
                raise KeyError(f"unknown setting {dotted!r}")
            kind = get_type_hints(type(part))[key]
            config = dataclasses.replace(config, **{section: dataclasses.replace(part, **{key: _parse(value, kind)})})  # type: ignore[arg-type]
        return config

    @property
    def lr(self) -> float:
        return float(getattr(self, self.model.value).lr)

    @property
    def weight_decay(self) -> float:
        return float(getattr(self, self.model.value).weight_decay)

    @property
    def betas(self) -> tuple[float, float]:
        return 0.9, float(getattr(getattr(self, self.model.value), "beta2", 0.999))


def benchmark_preset(model: GenerativeKind | str, device: str = "auto") -> dict[str, Any]:
    """The settings of the benchmark's headline runs of ``model`` (``benchmarks/generative.py``: ``beauty_sasrec``,
    ``beauty_hstu``, ``beauty_tiger_long``), chosen on Beauty's validation split and sized for a CPU:
    ``recforge train <model> --preset benchmark``. TIGER's is 2 + 2 layers with a feed-forward of 512 (the paper's
    4 + 4 and 1,024 in float32 ran at a quarter of its examples/s on Beauty here), in bfloat16 where that is fast (:func:`fast_bf16`),
    with positions counted from the newest item, no user token and the weights' moving average (since session 16:
    ``beauty_tiger``'s run, validation NDCG@10 0.0543 against 0.0460 without the three)."""
    common = {"data.length_groups": 50, "run.patience": 20}
    kind = GenerativeKind(model)
    if kind is GenerativeKind.SASREC:
        return common | {"sasrec.dropout": 0.5, "run.batch_size": 128}
    if kind is GenerativeKind.HSTU:  # the reference's Amazon shape (configs/amzn-books) with the full softmax at 0.085
        return common | {"hstu.dropout": 0.5, "run.batch_size": 128, "hstu.loss": "full", "hstu.temperature": 0.085,
                         "hstu.layers": 4, "hstu.heads": 4, "hstu.attention_dim": 16, "hstu.linear_dim": 16}
    return common | {"tiger.dim": 128, "tiger.layers": 2, "tiger.ff": 512, "tiger.heads": 4, "run.batch_size": 256,
                     "tiger.bf16": fast_bf16(device), "tiger.recency_positions": True, "tiger.user_buckets": 0, "ema_decay": 0.999}


def _parse(value: Any, kind: Any) -> Any:
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return kind(value)
    if not isinstance(value, str):
        return value
    if kind is bool:
        if value.lower() not in {"true", "false", "1", "0"}:
            raise ValueError(f"not a boolean: {value!r}")
        return value.lower() in {"true", "1"}
    return kind(value) if isinstance(kind, type) else value


@dataclass(frozen=True)
class ScheduledRun:
    """The knobs of a scheduled run of a generative model (the ``models/sasrec|hstu|tiger`` assets).

    Smaller batches and a longer patience than :class:`training.config.RunConfig`'s defaults: HSTU's
    validation metric is flat for its first epochs, and a short patience stops it there.
    """

    seed: int = 1
    batch_size: int = 128
    max_epochs: int = 50
    patience: int = 20
    budget_seconds: float = 0.0

