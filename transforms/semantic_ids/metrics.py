"""Quality figures of a set of semantic IDs (reported as asset metadata and by the benchmark).

* utilization (level): share of the level's codes used by at least one item (dead codes lower it).
* perplexity (level): ``exp(entropy)`` of the level's code distribution; ``K`` when perfectly even.
* prefix collision rate (depth d): share of items whose first ``d`` codes equal another item's; at
  the full ID length it must be 0, at depth L (before the extra level) it is the share of items that
  needed disambiguation.
* reconstruction error: mean squared distance between an embedding and its quantized reconstruction,
  also relative to the mean squared norm of the embeddings.
* category purity (first level): share of items whose category is the most common one of their
  first-level code; compared with the purity of a random assignment of the same code sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transforms.semantic_ids.config import LEVEL_LETTERS
from transforms.semantic_ids.disambiguate import sorted_row_groups


@dataclass(frozen=True)
class SemanticIdReport:
    """Quality figures; ``to_metadata`` flattens them for Dagster and JSON."""

    items: int
    utilization: tuple[float, ...]  # per quantized level
    perplexity: tuple[float, ...]  # per quantized level
    prefix_collision_rate: tuple[float, ...]  # per depth 1..id_length
    full_id_collisions: int
    max_extra_code: int | None
    reconstruction_mse: float | None = None
    relative_reconstruction_error: float | None = None
    category_purity: float | None = None
    category_purity_chance: float | None = None

    def to_metadata(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"items": self.items, "full_id_collisions": self.full_id_collisions}
        for level, (u, p) in enumerate(zip(self.utilization, self.perplexity, strict=True)):
            out[f"utilization_{LEVEL_LETTERS[level]}"] = round(u, 6)
            out[f"perplexity_{LEVEL_LETTERS[level]}"] = round(p, 3)
        for depth, rate in enumerate(self.prefix_collision_rate, start=1):
            out[f"prefix_collision_rate_{LEVEL_LETTERS[:depth]}"] = round(rate, 6)
        optional = {
            "max_extra_code": self.max_extra_code,
            "reconstruction_mse": self.reconstruction_mse,
            "relative_reconstruction_error": self.relative_reconstruction_error,
            "category_purity_a": self.category_purity,
            "category_purity_a_chance": self.category_purity_chance,
        }
        out.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in optional.items() if v is not None})
        return out


def semantic_id_report(
    codes: np.ndarray,
    levels: int,
    codes_per_level: int,
    *,
    sq_error: np.ndarray | None = None,
    sq_norm: np.ndarray | None = None,
    categories: Sequence[str | None] | None = None,
    seed: int = 0,
) -> SemanticIdReport:
    """Figures for an ``(n, id_length)`` code matrix whose first ``levels`` columns are quantized.

    Args:
        codes: Full IDs (quantized levels, then the extra code if any).
        levels: Quantized levels (L).
        codes_per_level: K.
        sq_error: Per-item squared reconstruction error, when known.
        sq_norm: Per-item squared norm of the embeddings (for the relative error).
        categories: Per-item category (None where unknown) for first-level purity.
        seed: Seed of the random assignment that purity is compared with.
    """
    n, length = codes.shape
    utilization, perplexity = [], []
    for level in range(levels):
        counts = np.bincount(codes[:, level], minlength=codes_per_level) if n else np.zeros(codes_per_level)
        p = counts[counts > 0] / max(n, 1)
        utilization.append(float(np.count_nonzero(counts)) / codes_per_level)
        perplexity.append(float(np.exp(-np.sum(p * np.log(p)))) if n else 0.0)
    collision = []
    order = np.lexsort(codes.T[::-1]) if n else np.zeros(0, np.int64)
    ordered = codes[order]
    for depth in range(1, length + 1):
        _group, starts = sorted_row_groups(ordered[:, :depth])
        sizes = np.diff(np.append(starts, n))
        collision.append(float(np.sum(sizes[sizes > 1])) / n if n else 0.0)
    _full_group, full_starts = sorted_row_groups(ordered)
    full_collisions = int(n - len(full_starts))
    mse = rel = None
    if sq_error is not None and len(sq_error):
        mse = float(np.mean(sq_error, dtype=np.float64))
        if sq_norm is not None:
            rel = mse / max(float(np.mean(sq_norm, dtype=np.float64)), 1e-30)
    purity = chance = None
    if categories is not None and n:
        purity, chance = _purity(codes[:, 0], categories, seed)
    return SemanticIdReport(
        items=n,
        utilization=tuple(utilization),
        perplexity=tuple(perplexity),
        prefix_collision_rate=tuple(collision),
        full_id_collisions=full_collisions,
        max_extra_code=int(codes[:, levels].max()) if length > levels and n else None,
        reconstruction_mse=mse,
        relative_reconstruction_error=rel,
        category_purity=purity,
        category_purity_chance=chance,
    )


def _purity(first: np.ndarray, categories: Sequence[str | None], seed: int) -> tuple[float | None, float | None]:
    known = np.array([c is not None for c in categories], bool)
    if not known.any():
        return None, None
    labels = np.unique(np.asarray([c for c in categories if c is not None], dtype=object), return_inverse=True)[1]
    codes = first[known]

    def purity_of(assignment: np.ndarray) -> float:
        table = np.zeros((int(assignment.max()) + 1, int(labels.max()) + 1), np.int64)
        np.add.at(table, (assignment, labels), 1)
        return float(table.max(axis=1).sum()) / len(labels)

    # Chance: the same code sizes, items shuffled among them.
    shuffled = np.random.default_rng(seed).permutation(codes)
    return purity_of(codes), purity_of(shuffled)
