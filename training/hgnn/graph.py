"""The item graph of 2T-HGNN: items and their attributes, no users.

    node types   item [I] (text embedding [I, F], semantic-ID codes [I, L], trained: has a training interaction)
                 one type per attribute (category, brand, genre, ...) [A_t]
    edge types   item -co-> item          co-occurrence in training examples (weight = count, both directions)
                 item -similar-> item     k nearest neighbours of the text embeddings (weight = cosine)
                 item -has_<t>-> t, t -rev_has_<t>-> item   attribute membership

Co-occurrence comes from the training examples only (each example's item with the last ``window``
items of its history, which lie before it), never from validation or test interactions: message
passing must not see the interactions the model is judged on. Content and attribute edges are not
interactions; they connect every item with text or attributes, so an item with no interaction still
gets an embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch_geometric.data import HeteroData

ITEM = "item"
CO = (ITEM, "co", ITEM)
SIMILAR = (ITEM, "similar", ITEM)


@dataclass(frozen=True)
class ItemGraph:
    """Tensors of the item graph (the layout of the module docstring).

    Attributes:
        num_items: Item ids are ``0 .. num_items - 1``.
        features: ``[I, F]`` float text embeddings (rows of zeros: no text); ``F`` may be 0.
        codes: ``[I, L]`` int64 semantic-ID codes (-1: none), or None.
        trained: ``[I]`` bool: the item has a training interaction (its id embedding is its own).
        cooccurrence: ``([2, E] src/dst, [E] weight)`` item-item co-occurrence.
        similar: ``([2, E], [E])`` content kNN edges (src is a neighbour of dst).
        attributes: ``{type: ([2, E] item/attribute, num attribute values)}``.
    """

    num_items: int
    features: torch.Tensor
    codes: torch.Tensor | None
    trained: torch.Tensor
    cooccurrence: tuple[torch.Tensor, torch.Tensor]
    similar: tuple[torch.Tensor, torch.Tensor]
    attributes: dict[str, tuple[torch.Tensor, int]] = field(default_factory=dict)

    @property
    def num_edges(self) -> int:
        return int(self.cooccurrence[0].shape[1] + self.similar[0].shape[1] + 2 * sum(e.shape[1] for e, _ in self.attributes.values()))

    def to_hetero_data(self) -> HeteroData:
        """PyG's ``HeteroData``: ``data['item'].x``, ``.codes``, ``.trained``, ``.n``; every edge type with ``edge_index`` and ``weight``."""
        data = HeteroData()
        data[ITEM].num_nodes = self.num_items
        data[ITEM].x = self.features.float()
        data[ITEM].trained = self.trained
        data[ITEM].n = torch.arange(self.num_items)  # global id of each sampled item (also PyG's n_id)
        if self.codes is not None:
            data[ITEM].codes = self.codes
        for edge_type, (index, weight) in ((CO, self.cooccurrence), (SIMILAR, self.similar)):
            data[edge_type].edge_index = index
            data[edge_type].weight = weight.float()
        for name, (index, count) in self.attributes.items():
            data[name].num_nodes = count
            data[name].n = torch.arange(count)
            data[ITEM, f"has_{name}", name].edge_index = index
            data[name, f"rev_has_{name}", ITEM].edge_index = index.flip(0)
        return data


def cooccurrence_edges(history: torch.Tensor, items: torch.Tensor, num_items: int, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Co-occurrence of each example's item with the last ``window`` items of its history.

    Args:
        history: ``[N, H]`` item ids + 1, newest last, 0 = padding (``TwoTowerData.history``).
        items: ``[N]`` the examples' items.
        num_items: Catalogue size.
        window: History items paired with each example's item.

    Returns:
        ``([2, E] src/dst, [E] count)``: distinct pairs in both directions, no self-loops, sorted by (src, dst).
    """
    recent = history[:, -window:] if window > 0 else history[:, :0]
    src = recent.reshape(-1) - 1
    dst = items.unsqueeze(1).expand_as(recent).reshape(-1)
    keep = (src >= 0) & (src != dst)
    src, dst = src[keep], dst[keep]
    key = torch.cat([src * num_items + dst, dst * num_items + src])
    pairs, counts = key.unique(return_counts=True)
    # A pair seen as (a, b) and as (b, a) was counted on both keys; each direction carries the total.
    return torch.stack([pairs // num_items, pairs % num_items]), counts.float()


def knn_edges(features: torch.Tensor, k: int, max_block: int = 2**24) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` most cosine-similar items of each item with a (non-zero) text embedding, exact, in
    chunks of at most ``max_block`` similarities (64 MiB of float32 by default).

    Returns:
        ``([2, E] neighbour/item, [E] cosine)``: messages flow from the neighbour to the item.
    """
    has_text = features.norm(dim=1) > 0
    index = torch.nonzero(has_text).squeeze(1)
    k = min(k, len(index) - 1)
    if k <= 0 or features.shape[1] == 0:
        return torch.empty(2, 0, dtype=torch.long), torch.empty(0)
    unit = F.normalize(features[index].float(), dim=1)
    chunk = max(1, max_block // len(index))
    sources, targets, weights = [], [], []
    for start in range(0, len(index), chunk):
        block = unit[start : start + chunk] @ unit.T
        block[torch.arange(len(block)), torch.arange(start, start + len(block))] = -2.0  # never its own neighbour
        top = block.topk(k, dim=1)
        sources.append(index[top.indices.reshape(-1)])
        targets.append(index[start : start + len(block)].repeat_interleave(k))
        weights.append(top.values.reshape(-1).clamp(min=1e-6))
    return torch.stack([torch.cat(sources), torch.cat(targets)]), torch.cat(weights)


def attribute_edges(values: list[list[str]]) -> tuple[torch.Tensor, int, list[str]]:
    """``[2, E]`` item/attribute edges from each item's attribute values (``values[i]``), the value count and names."""
    names = sorted({v for vs in values for v in vs})
    position = {v: n for n, v in enumerate(names)}
    pairs = sorted({(i, position[v]) for i, vs in enumerate(values) for v in vs})
    index = torch.tensor(pairs, dtype=torch.long).T if pairs else torch.empty(2, 0, dtype=torch.long)
    return index, len(names), names


def build_item_graph(
    history: torch.Tensor,
    items: torch.Tensor,
    num_items: int,
    features: torch.Tensor | None = None,
    attributes: dict[str, tuple[torch.Tensor, int]] | None = None,
    codes: torch.Tensor | None = None,
    window: int = 3,
    knn: int = 10,
) -> ItemGraph:
    """The item graph from the training examples (``history``, ``items``: training rows only), the
    items' text embeddings, attribute edges and semantic-ID codes."""
    features = features if features is not None else torch.zeros(num_items, 0)
    if features.shape[0] < num_items:
        features = torch.cat([features, features.new_zeros(num_items - features.shape[0], features.shape[1])])
    trained = torch.zeros(num_items, dtype=torch.bool)
    trained[items] = True
    return ItemGraph(
        num_items=num_items,
        features=features.float(),
        codes=codes,
        trained=trained,
        cooccurrence=cooccurrence_edges(history, items, num_items, window),
        similar=knn_edges(features, knn) if knn > 0 else (torch.empty(2, 0, dtype=torch.long), torch.empty(0)),
        attributes=dict(attributes or {}),
    )
