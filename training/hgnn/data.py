"""2T-HGNN data: the two-tower examples with the item graph built beside them.

From a warehouse, the graph reuses ``training_data/graph_nodes`` (the items' text embeddings, the
category and brand nodes) and ``training_data/graph_edges`` (item-category, item-brand), and the
semantic-ID codes when ``semantic_ids/item_semantic_ids`` exists. Co-occurrence is rebuilt from the
training rows of the two-tower split rather than taken from ``graph_edges``' ``item_item:co_session``:
those edges span the whole training window, which holds this split's validation and test periods, so
reading them would pass the evaluated interactions through the graph.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from training.config import HGNNConfig
from training.data.two_tower import TwoTowerData
from training.hgnn.graph import ItemGraph, build_item_graph

ATTRIBUTE_EDGES = {"item_category": "category", "item_brand": "brand"}  # graph_edges edge type -> attribute node type


@dataclass(frozen=True)
class HGNNData(TwoTowerData):
    """``TwoTowerData`` and its item graph (built from the training rows only)."""

    graph: ItemGraph | None = None


def with_graph(data: TwoTowerData, config: HGNNConfig, features: torch.Tensor | None = None,
               attributes: dict[str, tuple[torch.Tensor, int]] | None = None, codes: torch.Tensor | None = None) -> HGNNData:
    """``data`` with the item graph of its training rows, the items' text embeddings, attributes and codes.

    The graph covers ``max(data.num_items, len(features))`` items: catalogue items without any
    interaction in the examples still get a node (and an embedding) from their content.
    """
    linked = [int(index[0].max()) + 1 for index, _ in (attributes or {}).values() if index.numel()]
    num_items = max(data.num_items, 0 if features is None else features.shape[0], 0 if codes is None else codes.shape[0], *linked)
    graph = build_item_graph(data.history, data.items, num_items, features, attributes, _pad_rows(codes, num_items),
                             window=config.cooc_window, knn=config.knn)
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(TwoTowerData)}
    return HGNNData(**fields, graph=graph)


def graph_inputs(nodes: pa.Table, edges: pa.Table) -> tuple[torch.Tensor | None, dict[str, tuple[torch.Tensor, int]]]:
    """Text embeddings ``[I, F]`` (None when no item has one) and the attribute edges from the graph tables."""
    items = nodes.filter(pc.equal(nodes["node_type"], "item"))
    features = None
    vectors = items["embedding"].to_pylist()
    width = max((len(v) for v in vectors if v), default=0)
    if width:
        features = torch.zeros(int(pc.max(items["node_idx"]).as_py()) + 1, width)
        for idx, vector in zip(items["node_idx"].to_pylist(), vectors, strict=True):
            if vector and len(vector) == width:
                features[idx] = torch.tensor(vector)
    attributes: dict[str, tuple[torch.Tensor, int]] = {}
    for edge_type, name in ATTRIBUTE_EDGES.items():
        rows = edges.filter(pc.equal(edges["edge_type"], edge_type))
        count = pc.count(pc.filter(nodes["node_type"], pc.equal(nodes["node_type"], name))).as_py()
        if rows.num_rows and count:
            index = torch.from_numpy(np.stack([rows["src_idx"].to_numpy(), rows["dst_idx"].to_numpy()]).astype(np.int64))
            attributes[name] = (index, int(count))
    return features, attributes


def codes_matrix(codes: pa.Table | None) -> torch.Tensor | None:
    """``[I, L]`` int64 semantic-ID codes from ``item_idx, codes`` rows (-1 where an item has none)."""
    if codes is None or codes.num_rows == 0:
        return None
    rows = codes["codes"].to_pylist()
    levels = max(len(r) for r in rows)
    out = torch.full((int(pc.max(codes["item_idx"]).as_py()) + 1, levels), -1, dtype=torch.long)
    for idx, code in zip(codes["item_idx"].to_pylist(), rows, strict=True):
        out[idx, : len(code)] = torch.tensor(code, dtype=torch.long)
    return out


def hgnn_data_from_warehouse(store: Any, data: TwoTowerData, config: HGNNConfig) -> HGNNData:
    """The HGNN's data from a warehouse: ``data`` (its two-tower examples) with the graph tables' inputs."""
    from transforms.sequences.inputs import item_codes_from_semantic_ids
    from warehouse import contracts as C

    features, attributes = graph_inputs(store.read(C.TRAINING_GRAPH_NODES), store.read(C.TRAINING_GRAPH_EDGES))
    codes = None
    try:
        semantic = C.contract_for("semantic_ids", "item_semantic_ids")
    except KeyError:
        semantic = None
    if semantic is not None and store.exists(semantic):
        table = store.read_as_stored(semantic, ["item_id", "codes"])
        codes = codes_matrix(item_codes_from_semantic_ids(table, store.read(C.CORE_ID_MAPS)))
    return with_graph(data, config, features, attributes, codes)


def _pad_rows(codes: torch.Tensor | None, rows: int) -> torch.Tensor | None:
    if codes is None or codes.shape[0] >= rows:
        return codes
    return torch.cat([codes, codes.new_full((rows - codes.shape[0], codes.shape[1]), -1)])
