"""Item content for the two-tower model: each item's text embedding, semantic-ID codes and catalog
features, as tensors indexed by item id (the rows of ``TwoTowerData``'s catalogue).

    ItemContent.text        [I, F] float32  text embedding (``enrichment/item_embeddings``; zeros: none)
    ItemContent.has_text    [I]    bool
    ItemContent.codes       [I, L] int64    semantic-ID code per level (``semantic_ids/item_semantic_ids``; -1: none)
    ItemContent.categories  [I, C] int64    categories hashed into buckets 1..B, 0 = padding (a row of 0: none)
    ItemContent.brand       [I]    int64    brand hashed into 1..B (0: none)
    ItemContent.price       [I]    int64    price bucket 1..P by quantiles of the catalogue's prices (0: none)

Category and brand strings are hashed (CRC-32, stable across processes and runs) rather than given a
vocabulary: a value first seen after training still lands on a row, and the table size is a setting.
Content is not an interaction: it may describe items that have none (new items are served from it).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from training.config import ContentGroup


@dataclass(frozen=True)
class ItemContent:
    """Content tensors of ``num_items`` items (the layout of the module docstring)."""

    text: torch.Tensor
    has_text: torch.Tensor
    codes: torch.Tensor
    categories: torch.Tensor
    brand: torch.Tensor
    price: torch.Tensor
    buckets: int  # B: hash buckets of categories and brands
    price_buckets: int  # P
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def num_items(self) -> int:
        return int(self.has_text.shape[0])

    @property
    def code_sizes(self) -> tuple[int, ...]:
        """Codes per level (the largest code seen + 1)."""
        if self.codes.numel() == 0:
            return ()
        return tuple(int(v) + 1 for v in self.codes.max(0).values.clamp(min=0))

    @property
    def available(self) -> tuple[ContentGroup, ...]:
        """The groups some item has a value for, in the towers' order."""
        present = {
            ContentGroup.CODES: bool((self.codes >= 0).any()),
            ContentGroup.TEXT: bool(self.has_text.any()) and self.text.shape[1] > 0,
            ContentGroup.CATEGORY: bool((self.categories > 0).any()),
            ContentGroup.BRAND: bool((self.brand > 0).any()),
            ContentGroup.PRICE: bool((self.price > 0).any()),
        }
        return tuple(g for g in ContentGroup if present[g])

    def coverage(self) -> dict[str, float]:
        """Share of items with a value, per group."""
        n = max(self.num_items, 1)
        return {ContentGroup.CODES.value: float((self.codes >= 0).any(1).sum()) / n if self.codes.numel() else 0.0,
                ContentGroup.TEXT.value: float(self.has_text.sum()) / n, ContentGroup.CATEGORY.value: float((self.categories > 0).any(1).sum()) / n,
                ContentGroup.BRAND.value: float((self.brand > 0).sum()) / n, ContentGroup.PRICE.value: float((self.price > 0).sum()) / n}


def hash_bucket(value: str, buckets: int) -> int:
    """``1 .. buckets`` for a (case- and space-normalised) string; stable across processes."""
    return zlib.crc32(value.strip().lower().encode()) % buckets + 1


def price_bucket_edges(prices: np.ndarray, buckets: int) -> np.ndarray:
    """Inner edges of ``buckets`` equal-count price buckets (on the positive, finite prices)."""
    known = prices[np.isfinite(prices) & (prices > 0)]
    if not len(known) or buckets < 2:
        return np.zeros(0)
    return np.unique(np.quantile(known, np.linspace(0, 1, buckets + 1)[1:-1]))


def item_content(
    num_items: int,
    *,
    text: torch.Tensor | np.ndarray | None = None,
    codes: torch.Tensor | np.ndarray | None = None,
    categories: Sequence[Sequence[str]] | None = None,
    brands: Sequence[str | None] | None = None,
    prices: Sequence[float | None] | None = None,
    buckets: int = 1024,
    price_buckets: int = 10,
    versions: dict[str, str] | None = None,
) -> ItemContent:
    """``ItemContent`` of items ``0 .. num_items - 1`` from per-item inputs (row ``i`` is item ``i``; inputs
    shorter than the catalogue leave the remaining items without that content, longer ones are cut).

    Args:
        text: ``[N, F]`` text embeddings; an all-zero row means no text.
        codes: ``[N, L]`` semantic-ID codes, -1 where an item has none.
        categories: Each item's category strings.
        brands: Each item's brand (None or empty: none).
        prices: Each item's price (None, NaN or <= 0: none).
        buckets: Hash buckets of categories and brands.
        price_buckets: Equal-count price buckets.
        versions: The versions of the tables the content came from (recorded in checkpoints).
    """
    def rows(tensor: torch.Tensor | np.ndarray | None, fill: float, dtype: torch.dtype) -> torch.Tensor:
        t = torch.as_tensor(tensor if tensor is not None else np.zeros((0, 0)), dtype=dtype)
        out = torch.full((num_items, t.shape[1] if t.dim() == 2 else 0), fill, dtype=dtype)
        n = min(num_items, t.shape[0])
        out[:n] = t[:n]
        return out

    text_rows = rows(text, 0.0, torch.float32)
    width = max((len(c) for c in (categories or [])[:num_items]), default=0)
    category_rows = torch.zeros(num_items, max(width, 1), dtype=torch.long)
    for i, values in enumerate((categories or [])[:num_items]):
        hashed = sorted({hash_bucket(v, buckets) for v in values if v and v.strip()})
        category_rows[i, : len(hashed)] = torch.tensor(hashed, dtype=torch.long)
    brand = torch.zeros(num_items, dtype=torch.long)
    for i, value in enumerate((brands or [])[:num_items]):
        if value and value.strip():
            brand[i] = hash_bucket(value, buckets)
    price = torch.zeros(num_items, dtype=torch.long)
    if prices is not None:
        amounts = np.array([np.nan if p is None else float(p) for p in prices[:num_items]], dtype=np.float64)
        valid = np.isfinite(amounts) & (amounts > 0)
        bucketed = np.searchsorted(price_bucket_edges(amounts, price_buckets), amounts[valid], side="right") + 1
        price[: len(amounts)][torch.from_numpy(valid)] = torch.from_numpy(bucketed.astype(np.int64))
    return ItemContent(text=text_rows, has_text=text_rows.abs().sum(1) > 0, codes=rows(codes, -1, torch.long), categories=category_rows,
                       brand=brand, price=price, buckets=buckets, price_buckets=price_buckets, versions=dict(versions or {}))


def content_from_warehouse(store: Any, num_items: int, buckets: int = 1024, price_buckets: int = 10) -> ItemContent | None:
    """Item content from a warehouse's tables, where they exist: the text embeddings
    (``enrichment/item_embeddings``), the semantic IDs (``semantic_ids/item_semantic_ids``) and the catalog
    (``raw/items``: categories, brand, price), keyed through ``core/id_maps``. None when none exists.

    The versions record each table's content hash, the embedding model(s) and the codebook version(s).
    """
    from transforms.sequences.inputs import item_codes_from_semantic_ids, item_embeddings_by_idx
    from warehouse import contracts as C

    if not store.exists(C.CORE_ID_MAPS):
        return None
    id_maps = store.read(C.CORE_ID_MAPS)
    versions: dict[str, str] = {}
    text = codes = None
    embeddings = store.read_as_stored(C.ENRICHMENT_ITEM_EMBEDDINGS, ["item_id", "embedding", "model"])
    if embeddings is not None and embeddings.num_rows:
        by_idx = item_embeddings_by_idx(embeddings, id_maps)
        idx = by_idx["item_idx"].to_numpy()
        keep = idx < num_items
        vectors = np.asarray(by_idx["embedding"].to_pylist(), dtype=np.float32) if by_idx.num_rows else np.zeros((0, 0), np.float32)
        text = np.zeros((num_items, vectors.shape[1] if vectors.ndim == 2 else 0), np.float32)
        text[idx[keep]] = vectors[keep]
        versions["enrichment/item_embeddings"] = _version(store, C.ENRICHMENT_ITEM_EMBEDDINGS)
        versions["enrichment/embedding_model"] = ",".join(sorted(set(embeddings["model"].to_pylist())))
    semantic = store.read_as_stored(C.SEMANTIC_IDS_ITEM_SEMANTIC_IDS, ["item_id", "codes", "codebook_version"])
    if semantic is not None and semantic.num_rows:
        table = item_codes_from_semantic_ids(semantic.select(["item_id", "codes"]), id_maps)
        levels = max(len(c) for c in table["codes"].to_pylist())
        codes = np.full((num_items, levels), -1, np.int64)
        for i, code in zip(table["item_idx"].to_pylist(), table["codes"].to_pylist(), strict=True):
            if i < num_items:
                codes[i, : len(code)] = code
        versions["semantic_ids/item_semantic_ids"] = _version(store, C.SEMANTIC_IDS_ITEM_SEMANTIC_IDS)
        versions["semantic_ids/codebook_version"] = ",".join(str(v) for v in sorted(set(semantic["codebook_version"].to_pylist())))
    catalog: dict[str, Any] = {}
    if store.exists(C.RAW_ITEMS):
        catalog = _catalog_by_idx(store.read(C.RAW_ITEMS), id_maps, num_items)
        versions["raw/items"] = _version(store, C.RAW_ITEMS)
    if text is None and codes is None and not catalog:
        return None
    return item_content(num_items, text=text, codes=codes, buckets=buckets, price_buckets=price_buckets, versions=versions, **catalog)


def _catalog_by_idx(items: pa.Table, id_maps: pa.Table, num_items: int) -> dict[str, list[Any]]:
    """Per item index: categories, brand and price of its latest catalog row (the last one read)."""
    known = id_maps.filter(pc.equal(id_maps["entity"], "item"))
    position = dict(zip(known["external_id"].to_pylist(), known["idx"].to_pylist(), strict=True))
    categories: list[list[str]] = [[] for _ in range(num_items)]
    brands: list[str | None] = [None] * num_items
    prices: list[float | None] = [None] * num_items
    for item, cats, brand, price in zip(*(items[c].to_pylist() for c in ("item_id", "categories", "brand", "price")), strict=True):
        i = position.get(item)
        if i is not None and i < num_items:
            categories[i], brands[i], prices[i] = list(cats or []), brand, price
    return {"categories": categories, "brands": brands, "prices": prices}


def _version(store: Any, contract: Any) -> str:
    return ",".join(f"{k}:{v.get('hash', v.get('content_hash', ''))}" for k, v in sorted(store.manifest(contract).items()))
