"""Node and edge tables of the heterogeneous graph for the HGNN, from the training window."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from transforms.engine import Engine
from transforms.sequences.config import (
    GRAPH_EDGES_SCHEMA,
    GRAPH_NODES_SCHEMA,
    ITEM_EMBEDDINGS_SCHEMA,
    _conform,
)
from transforms.sequences.inputs import PreparedInputs, _base_cte, _in_train


@dataclass(frozen=True)
class GraphConfig:
    """Graph settings. Co-occurrence reads the first ``max_session_items`` distinct items of a session,
    which bounds the pairs a session adds (a 10,000-event bot session would add 10^8)."""

    max_session_items: int = 50


def build_graph(
    engine: Engine,
    prep: PreparedInputs,
    items: pa.Table,
    id_maps: pa.Table,
    item_embeddings: pa.Table | None = None,
    config: GraphConfig = GraphConfig(),
) -> tuple[pa.Table, pa.Table]:
    """Node and edge tables of the heterogeneous graph, from the training window only.

    Nodes: users and items with a training-window event (items also when the catalog has them
    available before ``train_end``), categories and brands of those items. Edges: user-item per
    event type (weight = events), item-item co-occurrence within sessions (weight = sessions, both
    directions), item-category and item-brand (weight 1).

    Args:
        engine: The engine :func:`prepare` registered the inputs on.
        prep: Inputs; its split defines the training window.
        items: ``raw_items`` rows (item_id, categories, brand, available_from are read).
        id_maps: ``core_id_maps`` rows.
        item_embeddings: ``item_idx, embedding`` (:data:`ITEM_EMBEDDINGS_SCHEMA`), if built.
        config: Graph settings.

    Returns:
        ``(nodes, edges)`` of :data:`GRAPH_NODES_SCHEMA` and :data:`GRAPH_EDGES_SCHEMA`, sorted.
    """
    d = engine.dialect
    engine.register_arrow("graph_items", items.select(["item_id", "categories", "brand", "available_from"]))
    engine.register_arrow("graph_id_maps", id_maps.select(["entity", "external_id", "idx"]))
    embeddings = item_embeddings if item_embeddings is not None else ITEM_EMBEDDINGS_SCHEMA.empty_table()
    engine.register_arrow("graph_embeddings", embeddings.select(ITEM_EMBEDDINGS_SCHEMA.names).cast(ITEM_EMBEDDINGS_SCHEMA))
    split = prep.split
    catalog_window = "TRUE"
    if split is not None and split.cutoffs is not None:
        catalog_window = f"(ci.available_from IS NULL OR {_in_train(split.cutoffs, d.epoch_ms('ci.available_from'))})"
    cte = f"""
WITH {_base_cte(d, prep)},
train AS (SELECT * FROM base WHERE in_train = 1),
item_ids AS (SELECT external_id, idx FROM graph_id_maps WHERE entity = 'item'),
user_ids AS (SELECT external_id, idx FROM graph_id_maps WHERE entity = 'user'),
catalog AS (
    SELECT m.idx AS item_idx, ci.categories, ci.brand, ci.available_from
    FROM graph_items ci JOIN item_ids m ON m.external_id = ci.item_id
    WHERE {catalog_window}
),
node_items AS (
    SELECT DISTINCT item_idx FROM (SELECT item_idx FROM train UNION ALL SELECT item_idx FROM catalog) x
),
item_categories AS (
    SELECT DISTINCT item_idx, category FROM (
        SELECT c.item_idx, {d.explode("c.categories")} AS category
        FROM catalog c JOIN node_items n ON n.item_idx = c.item_idx
    ) x WHERE category IS NOT NULL
),
categories AS (
    SELECT category, DENSE_RANK() OVER (ORDER BY category) - 1 AS category_idx
    FROM (SELECT DISTINCT category FROM item_categories) x
),
item_brands AS (
    SELECT DISTINCT c.item_idx, c.brand FROM catalog c JOIN node_items n ON n.item_idx = c.item_idx WHERE c.brand IS NOT NULL
),
brands AS (
    SELECT brand, DENSE_RANK() OVER (ORDER BY brand) - 1 AS brand_idx FROM (SELECT DISTINCT brand FROM item_brands) x
),
session_items AS (
    SELECT user_idx, session_id, item_idx, ROW_NUMBER() OVER (PARTITION BY user_idx, session_id ORDER BY first_pos) AS item_rank
    FROM (SELECT user_idx, session_id, item_idx, MIN(pos) AS first_pos FROM train GROUP BY user_idx, session_id, item_idx) x
),
capped AS (SELECT * FROM session_items WHERE item_rank <= {config.max_session_items})"""
    nodes_sql = f"""{cte}
SELECT 'user' AS node_type, u.idx AS node_idx, u.external_id AS name, {d.null_list("FLOAT", 1)} AS embedding
FROM user_ids u WHERE u.idx IN (SELECT user_idx FROM train)
UNION ALL
SELECT 'item', n.item_idx, m.external_id, e.embedding
FROM node_items n JOIN item_ids m ON m.idx = n.item_idx LEFT JOIN graph_embeddings e ON e.item_idx = n.item_idx
UNION ALL
SELECT 'category', category_idx, category, {d.null_list("FLOAT", 1)} FROM categories
UNION ALL
SELECT 'brand', brand_idx, brand, {d.null_list("FLOAT", 1)} FROM brands
ORDER BY node_type, node_idx
"""
    edges_sql = f"""{cte}
SELECT CONCAT('user_item:', event_type) AS edge_type, 'user' AS src_type, user_idx AS src_idx, 'item' AS dst_type,
       item_idx AS dst_idx, CAST(COUNT(*) AS DOUBLE) AS weight
FROM train GROUP BY event_type, user_idx, item_idx
UNION ALL
SELECT 'item_item:co_session', 'item', a.item_idx, 'item', b.item_idx, CAST(COUNT(*) AS DOUBLE)
FROM capped a JOIN capped b ON a.user_idx = b.user_idx AND a.session_id = b.session_id AND a.item_idx <> b.item_idx
GROUP BY a.item_idx, b.item_idx
UNION ALL
SELECT 'item_category', 'item', ic.item_idx, 'category', c.category_idx, 1.0
FROM item_categories ic JOIN categories c ON c.category = ic.category
UNION ALL
SELECT 'item_brand', 'item', ib.item_idx, 'brand', b.brand_idx, 1.0
FROM item_brands ib JOIN brands b ON b.brand = ib.brand
ORDER BY edge_type, src_idx, dst_idx
"""
    nodes = _conform(engine.query(nodes_sql), GRAPH_NODES_SCHEMA)
    edges = _conform(engine.query(edges_sql), GRAPH_EDGES_SCHEMA)
    return nodes, edges
