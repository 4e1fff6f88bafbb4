"""Grounded inputs for item descriptions and user profiles, built from the raw tables.

Everything here is computed from data strictly before the cut-off (``train_end``): reviews written
later do not reach an item's description, and interactions or reviews after it never reach a user's
profile (DESIGN.md rule 1). A task's ``input_hash`` covers its whole payload, so an item or user is
regenerated exactly when something that the generator would see has changed.

Payload layouts (JSON-serialisable dicts; lists are in a deterministic order)::

    item: item_id, title, brand, categories, price, attributes{}, catalog_description,
          review_count, rating_count, mean_rating, key_phrases[], tags[], tag_count,
          reviews[{rating, title, text, helpful_votes}]
    user: user_id, interactions, purchases, top_categories[{name, weight}],
          top_brands[{name, weight}], price_band, median_price, last_active,
          review_count, mean_review_rating, review_sentiment, likes[], dislikes[], intents[],
          reviews[{rating, title, text, item}]
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.enrichment.prompts import MAX_FIELD_CHARS, sanitize_untrusted
from transforms.enrichment.types import EntityKind, GenerationTask, content_hash

# How strongly each event type says "interested" (skip says nothing positive).
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "play": 1.0,
    "rating": 2.0,
    "share": 2.0,
    "add_to_cart": 3.0,
    "like": 3.0,
    "purchase": 5.0,
    "skip": 0.0,
}
LIKED_RATING = 4.0
DISLIKED_RATING = 2.0
# A tag is stored as a review without rating or title whose text is a short label ("dark comedy",
# "based on a book"): it is a tag, never a review, in counts and quotes.
TAG_MAX_WORDS = 5
TAG_MAX_CHARS = 60

_STOPWORDS = frozenset(
    " ".join(
        [
            "a about above after again all also am an and any are as at",
            "be because been before being below between both but by can could did do",
            "does doing down during each few for from further had has have having he",
            "her here hers herself him himself his how i if in into is it",
            "its itself just me more most my myself no nor not now of off",
            "on once only or other our ours out over own same she should so",
            "some such than that the their theirs them then there these they this those",
            "through to too under until up very was we were what when where which",
            "while who whom why will with would you your yours really bit got get",
            "one thing things item product much even still though well says said",
        ]
    ).split()
)
_WORD = re.compile(r"[a-z][a-z'\-]+")
_CLAUSE = re.compile(r"[.,;:!?()\[\]\n]+")


@dataclass(frozen=True)
class InputLimits:
    """How much of the history goes into one prompt."""

    max_reviews: int = 5
    max_key_phrases: int = 6
    max_top: int = 3
    max_likes: int = 5
    max_intents: int = 5
    recent_window: int = 10  # most recent interactions read for current intents


def cutoff_filter(table: pa.Table, cutoff: dt.datetime, column: str = "ts") -> pa.Table:
    """Rows strictly before ``cutoff`` (a timezone-aware datetime)."""
    if cutoff.tzinfo is None:
        raise ValueError("the cut-off must be timezone-aware (UTC)")
    if table.num_rows == 0:
        return table
    return table.filter(pc.less(table[column], pa.scalar(cutoff, type=table.schema.field(column).type)))


def without_held_out(table: pa.Table, held_out: pa.Table) -> pa.Table:
    """``table`` (rows with ``user_id``, ``item_id``, ``ts``: reviews or events) without what a leave-one-out split
    holds out: each user's validation and test interactions.

    Under leave-one-out a user's last two interactions are held out, whatever their date, so the global cut-off
    does not keep them out of the text: a review of the held-out item by the user who holds it out would
    describe that item to the model. ``held_out`` (``user_id``, ``item_id``, ``horizon``: the split's held-out
    steps, :func:`transforms.sequences.window.held_out_steps`) gives each such user's horizon; a row of that
    user at or after it, or about an item the user holds out, is dropped.
    """
    if table.num_rows == 0 or held_out.num_rows == 0:
        return table
    users = held_out["user_id"].to_numpy(zero_copy_only=False)
    horizons = held_out["horizon"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()
    horizon = dict(zip(users, horizons, strict=True))
    held_items = set(zip(users, held_out["item_id"].to_numpy(zero_copy_only=False), strict=True))
    row_ts = table["ts"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()
    keep = np.array([not ((u in horizon and t >= horizon[u]) or (u, i) in held_items)
                     for u, i, t in zip(table["user_id"].to_numpy(zero_copy_only=False),
                                        table["item_id"].to_numpy(zero_copy_only=False), row_ts, strict=True)], dtype=bool)
    return table.filter(pa.array(keep))


def key_phrases(documents: Mapping[str, Iterable[str]], k: int) -> dict[str, list[str]]:
    """Top-``k`` TF-IDF phrases (unigrams and bigrams of non-stopwords) of each document.

    Args:
        documents: Document id -> its texts (for an item: its reviews' texts).
        k: Phrases per document.

    Returns:
        Document id -> phrases, best first; ties broken alphabetically so the result is deterministic.
        A unigram already inside a chosen bigram is skipped.
    """
    counts: dict[str, Counter[str]] = {}
    df: Counter[str] = Counter()
    for doc_id, texts in documents.items():
        c: Counter[str] = Counter()
        for text in texts:
            for clause in _CLAUSE.split(text.lower()):  # a phrase never spans punctuation
                tokens = _WORD.findall(clause)
                for i, tok in enumerate(tokens):
                    if tok in _STOPWORDS:
                        continue
                    c[tok] += 1
                    if i + 1 < len(tokens) and tokens[i + 1] not in _STOPWORDS:
                        c[f"{tok} {tokens[i + 1]}"] += 1
        counts[doc_id] = c
        df.update(c.keys())
    n = len(documents)
    result: dict[str, list[str]] = {}
    for doc_id, c in counts.items():
        scored = sorted(
            ((1.0 + math.log(tf)) * (math.log((1 + n) / (1 + df[t])) + 1.0) * (1.25 if " " in t else 1.0), t)
            for t, tf in c.items()
        )
        ranked = sorted(scored, key=lambda st: (-st[0], st[1]))
        chosen: list[str] = []
        for _, term in ranked:
            if len(chosen) == k:
                break
            if " " not in term and any(term in c_.split(" ") for c_ in chosen if " " in c_):
                continue
            chosen.append(term)
        result[doc_id] = chosen
    return result


def is_tag(review: Mapping[str, Any]) -> bool:
    """Whether a raw review row is a tag (MovieLens ``tags``): no rating, no title, a short label."""
    text = (review.get("text") or "").strip()
    return (
        review.get("rating") is None and not review.get("title") and bool(text)
        and len(text) <= TAG_MAX_CHARS and len(text.split()) <= TAG_MAX_WORDS
    )


def leaf_categories(categories: Iterable[str] | None) -> list[str]:
    """Every category of an item except those that are a path prefix of another one.

    Genres are all kept (``["Comedy", "Drama"]``); of a path (``["Outdoor", "Outdoor > Tents"]``)
    only its most specific step is.
    """
    cats = [c for c in (categories or []) if c]
    return [c for c in cats if not any(o != c and o.startswith(f"{c} >") for o in cats)]


def _attributes(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): sanitize_untrusted(str(v), 80) for k, v in sorted(parsed.items()) if v is not None}


def _round(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(float(x), nd)


class ItemScope(enum.StrEnum):
    """Which catalog items get a description (and so an embedding and a content-based semantic ID).

    ``catalog``: every catalog item (new items included: they are served from content). ``logged``: only
    items that occur in the logs (events, impressions, reviews), for catalogs far larger than what anyone
    interacted with (Diginetica's 184,048 products against about 16,000 logged): the others get no text,
    and downstream they are items without content (a co-occurrence semantic ID, the missing-text vector).
    """

    CATALOG = "catalog"
    LOGGED = "logged"


def items_in_scope(items: pa.Table, scope: ItemScope, logged: pa.Array | None = None) -> pa.Table:
    """The catalog rows to describe under ``scope`` (``logged``: the distinct item ids of the logs)."""
    if scope is ItemScope.CATALOG:
        return items
    if logged is None:
        raise ValueError("ItemScope.LOGGED needs the logged item ids")
    return items.filter(pc.is_in(items["item_id"], value_set=logged.cast(pa.string())))


def build_item_tasks(
    items: pa.Table, reviews: pa.Table, cutoff: dt.datetime, limits: InputLimits = InputLimits()
) -> list[GenerationTask]:
    """One task per catalog item, grounded in its catalog fields and its reviews before ``cutoff``, and
    one per item that has a review before ``cutoff`` but no catalog row, grounded in its reviews alone
    (a dataset of reviews without metadata, such as Amazon 2014's 5-core files).

    The most helpful reviews (helpful votes, then recency, then id) are quoted; key phrases are ranked
    by TF-IDF over all items' reviews before the cut-off.
    """
    reviews = cutoff_filter(reviews, cutoff)
    by_item: dict[str, list[dict[str, Any]]] = defaultdict(list)
    tags_of: dict[str, Counter[str]] = defaultdict(Counter)
    for r in reviews.select(["review_id", "item_id", "ts", "rating", "title", "text", "helpful_votes"]).to_pylist():
        if is_tag(r):
            tags_of[r["item_id"]][sanitize_untrusted(r["text"], 80).lower()] += 1
        else:
            by_item[r["item_id"]].append(r)
    phrases = key_phrases(
        {i: [sanitize_untrusted(r["text"]) for r in rs if r["text"]] for i, rs in sorted(by_item.items())},
        limits.max_key_phrases,
    )
    rows = items.to_pylist()
    reviewed = {i for i, rs in by_item.items() if any(r["text"] or r["title"] for r in rs)}
    rows += [{"item_id": i} for i in sorted(reviewed - {r["item_id"] for r in rows})]  # known from reviews only
    tasks = []
    for it in sorted(rows, key=lambda r: r["item_id"]):
        item_id = it["item_id"]
        rs = by_item.get(item_id, [])
        best = sorted(rs, key=lambda r: (-(r["helpful_votes"] or 0), -r["ts"].timestamp(), r["review_id"]))
        ratings = [r["rating"] for r in rs if r["rating"] is not None]
        tags = tags_of.get(item_id, Counter())
        payload = {
            "item_id": item_id,
            "title": sanitize_untrusted(it.get("title"), MAX_FIELD_CHARS),
            "brand": sanitize_untrusted(it.get("brand"), 80) or None,
            "categories": [sanitize_untrusted(c, 80) for c in leaf_categories(it.get("categories"))],
            "price": _round(it.get("price")),
            "attributes": _attributes(it.get("attributes")),
            "catalog_description": sanitize_untrusted(it.get("description"), 1000),
            "review_count": sum(1 for r in rs if r["text"]),
            "rating_count": len(ratings),
            "mean_rating": _round(statistics.fmean(ratings)) if ratings else None,
            "key_phrases": phrases.get(item_id, []),
            "tags": [t for t, _ in sorted(tags.items(), key=lambda tc: (-tc[1], tc[0]))[: limits.max_key_phrases]],
            "tag_count": sum(tags.values()),
            "reviews": [
                {
                    "rating": r["rating"],
                    "title": sanitize_untrusted(r["title"], MAX_FIELD_CHARS),
                    "text": sanitize_untrusted(r["text"]),
                    "helpful_votes": r["helpful_votes"],
                }
                for r in [r for r in best if r["text"] or r["title"]][: limits.max_reviews]
            ],
        }
        tasks.append(GenerationTask(EntityKind.ITEM, item_id, payload, content_hash(payload)))
    return tasks


def _price_band(price: float | None, low: float | None, high: float | None) -> str | None:
    if price is None or low is None or high is None:
        return None
    if price < low:
        return "budget"
    if price > high:
        return "premium"
    return "mid-range"


def _sentiment(mean_rating: float | None) -> str | None:
    if mean_rating is None:
        return None
    if mean_rating >= LIKED_RATING:
        return "positive"
    if mean_rating <= DISLIKED_RATING:
        return "negative"
    return "mixed"


def _top(weights: Mapping[str, float], n: int) -> list[dict[str, Any]]:
    ranked = sorted(((-w, name) for name, w in weights.items() if name and w > 0))[:n]
    return [{"name": name, "weight": round(-w, 2)} for w, name in ranked]


def _dedupe(values: Iterable[str], n: int) -> list[str]:
    out: list[str] = []
    for v in values:
        if v and v not in out:
            out.append(v)
        if len(out) == n:
            break
    return out


def build_user_tasks(
    events: pa.Table,
    reviews: pa.Table,
    items: pa.Table,
    cutoff: dt.datetime,
    limits: InputLimits = InputLimits(),
) -> list[GenerationTask]:
    """One task per user with any interaction or review strictly before ``cutoff``.

    The profile input holds top categories and brands (event-weighted), the price band of what they
    engaged with (against the tertiles of catalog prices of items available before the cut-off),
    recency, the sentiment of their reviews, likes (purchases and reviews rated >= 4), dislikes
    (reviews rated <= 2) and current intents (carted but not bought, and the categories of their most
    recent interactions). Nothing at or after the cut-off is read, and the cut-off itself is not in
    the payload (recency is the date last active), so moving the cut-off regenerates only the users
    whose history before it changed.
    """
    events = cutoff_filter(events, cutoff)
    reviews = cutoff_filter(reviews, cutoff)
    catalog = {r["item_id"]: r for r in items.select(["item_id", "title", "categories", "brand", "price", "available_from"]).to_pylist()}
    known_prices = sorted(
        r["price"] for r in catalog.values()
        if r["price"] is not None and (r["available_from"] is None or r["available_from"] < cutoff)
    )
    low = high = None
    if len(known_prices) >= 3:
        low, high = statistics.quantiles(known_prices, n=3, method="inclusive")

    def title(item_id: str) -> str:
        row = catalog.get(item_id)
        return sanitize_untrusted(row["title"], 120) if row and row["title"] else item_id

    def categories(item_id: str) -> list[str]:
        return [sanitize_untrusted(c, 80) for c in leaf_categories((catalog.get(item_id) or {}).get("categories"))]

    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events.select(["user_id", "ts", "event_type", "item_id", "event_id"]).to_pylist():
        if e["item_id"] is not None:
            history[e["user_id"]].append(e)
    written: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in reviews.select(["user_id", "item_id", "ts", "rating", "title", "text", "review_id"]).to_pylist():
        if not is_tag(r):
            written[r["user_id"]].append(r)

    tasks = []
    for user_id in sorted(set(history) | set(written)):
        evs = sorted(history.get(user_id, []), key=lambda e: (e["ts"], e["event_id"]))
        rvs = sorted(written.get(user_id, []), key=lambda r: (r["ts"], r["review_id"]))
        cat_w: dict[str, float] = defaultdict(float)
        brand_w: dict[str, float] = defaultdict(float)
        prices: list[float] = []
        for e in evs:
            w = EVENT_WEIGHTS.get(e["event_type"], 1.0)
            row = catalog.get(e["item_id"]) or {}
            for cat in categories(e["item_id"]):
                cat_w[cat] += w
            if row.get("brand"):
                brand_w[sanitize_untrusted(row["brand"], 80)] += w
            if w > 0 and row.get("price") is not None:
                prices.append(float(row["price"]))
        purchased = [e["item_id"] for e in evs if e["event_type"] == "purchase"]
        carted = [e["item_id"] for e in evs if e["event_type"] == "add_to_cart"]
        ratings = [r["rating"] for r in rvs if r["rating"] is not None]
        mean_rating = statistics.fmean(ratings) if ratings else None
        median_price = statistics.median(prices) if prices else None
        last = max([e["ts"] for e in evs] + [r["ts"] for r in rvs])
        liked = [r["item_id"] for r in reversed(rvs) if r["rating"] is not None and r["rating"] >= LIKED_RATING]
        disliked = [r["item_id"] for r in reversed(rvs) if r["rating"] is not None and r["rating"] <= DISLIKED_RATING]
        recent = [e["item_id"] for e in reversed(evs) if EVENT_WEIGHTS.get(e["event_type"], 1.0) > 0][: limits.recent_window]
        payload = {
            "user_id": user_id,
            "interactions": len(evs),
            "purchases": len(purchased),
            "top_categories": _top(cat_w, limits.max_top),
            "top_brands": _top(brand_w, limits.max_top),
            "price_band": _price_band(median_price, low, high),
            "median_price": _round(median_price),
            "last_active": last.astimezone(dt.UTC).date().isoformat(),
            "review_count": len(rvs),
            "mean_review_rating": _round(mean_rating),
            "review_sentiment": _sentiment(mean_rating),
            "likes": _dedupe((title(i) for i in [*liked, *reversed(purchased)] if i not in disliked), limits.max_likes),
            "dislikes": _dedupe((title(i) for i in disliked), limits.max_likes),
            "intents": _dedupe(
                [f"considering {title(i)}" for i in reversed(carted) if i not in purchased]
                + [f"browsing {c}" for i in recent for c in categories(i)],
                limits.max_intents,
            ),
            "reviews": [
                {
                    "rating": r["rating"],
                    "item": title(r["item_id"]),
                    "title": sanitize_untrusted(r["title"], MAX_FIELD_CHARS),
                    "text": sanitize_untrusted(r["text"]),
                }
                for r in list(reversed(rvs))[: limits.max_reviews]
            ],
        }
        tasks.append(GenerationTask(EntityKind.USER, user_id, payload, content_hash(payload), cutoff))
    return tasks
