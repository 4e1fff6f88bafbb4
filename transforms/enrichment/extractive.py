"""The extractive generator: the offline, deterministic default.

No model writes anything: a description is assembled from the catalog fields and the TF-IDF key
phrases of the item's reviews, a profile from the user's pre-cut-off history summarised in the payload
(top categories and brands, price band, recency, review sentiment, likes, dislikes, intents). Every
row it writes says ``generator_kind = extractive`` and ``model = extractive@2``, and every text starts
with "(extractive)" so nobody mistakes it for model output. Its answers pass through the same schema
validation as an LLM's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from transforms.enrichment.types import (
    OUTPUT_SCHEMAS,
    EntityKind,
    FailureKind,
    GenerationOutcome,
    GenerationTask,
    GeneratorKind,
)

EXTRACTIVE_MODEL = "extractive@2"
LABEL = "(extractive)"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _and(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rsplit(" ", 1)[0] + "…"


def describe_item(p: Mapping[str, Any]) -> dict[str, Any]:
    """An item description from its payload (see :func:`transforms.enrichment.inputs.build_item_tasks`)."""
    title = p.get("title") or p["item_id"]
    parts = [f"{LABEL} {title}"]
    if p.get("brand"):
        parts[0] += f" by {p['brand']}"
    if p.get("categories"):
        parts[0] += f", in {_and(p['categories'])}"
    if p.get("price") is not None:
        parts[0] += f", priced {p['price']:.2f}"
    parts[0] += "."
    if p.get("catalog_description"):
        parts.append(_clip(p["catalog_description"].rstrip("."), 500) + ".")
    attrs = p.get("attributes") or {}
    if attrs:
        parts.append("Attributes: " + ", ".join(f"{k} {v}" for k, v in attrs.items()) + ".")
    ratings = p.get("rating_count", p.get("review_count") if p.get("mean_rating") is not None else 0)
    if p.get("mean_rating") is not None and ratings:
        parts.append(f"Rated {p['mean_rating']:.1f}/5 over {_n(ratings, 'rating')}.")
    if p.get("review_count"):
        parts.append(f"{_n(p['review_count'], 'written review')}.")
    if p.get("key_phrases"):
        parts.append("Reviewers mention: " + ", ".join(p["key_phrases"]) + ".")
    if p.get("tags"):
        parts.append("Tagged: " + ", ".join(p["tags"]) + ".")
    highlights = [f"{k}: {v}" for k, v in attrs.items()][:4] + list(p.get("key_phrases") or [])[:4]
    highlights += [f"tag: {t}" for t in p.get("tags") or []][: max(0, 8 - len(highlights))]
    return {"description": _clip(" ".join(parts), 1500), "highlights": [_clip(h, 120) for h in highlights][:8]}


def profile_user(p: Mapping[str, Any]) -> dict[str, Any]:
    """A user profile from their payload (see :func:`transforms.enrichment.inputs.build_user_tasks`)."""
    parts = [f"{LABEL} Before the cut-off: {_n(p['interactions'], 'interaction')}, {_n(p['purchases'], 'purchase')}."]
    if p.get("top_categories"):
        parts.append("Mostly engages with " + ", ".join(c["name"] for c in p["top_categories"]) + ".")
    if p.get("top_brands"):
        parts.append("Favourite brands: " + ", ".join(b["name"] for b in p["top_brands"]) + ".")
    if p.get("price_band"):
        parts.append(f"Shops in the {p['price_band']} price band (median {p['median_price']:.2f}).")
    parts.append(f"Last active {p['last_active']}.")
    if p.get("review_count"):
        parts.append(
            f"Reviews lean {p['review_sentiment']} (mean rating {p['mean_review_rating']:.1f} over {p['review_count']})."
            if p.get("review_sentiment") else f"Wrote {p['review_count']} reviews."
        )
    if p.get("likes"):
        parts.append("Liked: " + "; ".join(p["likes"]) + ".")
    if p.get("dislikes"):
        parts.append("Disliked: " + "; ".join(p["dislikes"]) + ".")
    if p.get("intents"):
        parts.append("Currently " + "; ".join(p["intents"]) + ".")
    return {
        "profile": _clip(" ".join(parts), 1500),
        "likes": [_clip(x, 120) for x in [*(c["name"] for c in p.get("top_categories") or []), *(p.get("likes") or [])]][:10],
        "dislikes": [_clip(x, 120) for x in p.get("dislikes") or []][:10],
        "intents": [_clip(x, 120) for x in p.get("intents") or []][:10],
    }


class ExtractiveGenerator:
    """Deterministic descriptions and profiles from the grounded payload alone."""

    kind = GeneratorKind.EXTRACTIVE
    model = EXTRACTIVE_MODEL

    def generate(self, tasks: list[GenerationTask]) -> list[GenerationOutcome]:
        outcomes = []
        for task in tasks:
            try:
                raw = describe_item(task.payload) if task.entity is EntityKind.ITEM else profile_user(task.payload)
                output = OUTPUT_SCHEMAS[task.entity].model_validate(raw).model_dump()
            except (KeyError, TypeError, ValueError) as exc:
                outcomes.append(GenerationOutcome(task.entity_id, None, FailureKind.INPUT, f"{type(exc).__name__}: {exc}"))
                continue
            outcomes.append(GenerationOutcome(task.entity_id, output))
        return outcomes

    def close(self) -> None:
        return None



@dataclass(frozen=True)
class ExtractiveConfig:
    """Settings of the extractive generator (it has none; the class keeps the three configs alike)."""

    kind: ClassVar[GeneratorKind] = GeneratorKind.EXTRACTIVE
    stored_model: ClassVar[str] = EXTRACTIVE_MODEL
    fingerprint: ClassVar[str] = f"{GeneratorKind.EXTRACTIVE.value}:{EXTRACTIVE_MODEL}"

    def build(self) -> ExtractiveGenerator:
        return ExtractiveGenerator()
