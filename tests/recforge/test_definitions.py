"""The Dagster entry point loads, and its asset list changes only on purpose."""

from __future__ import annotations

import dagster as dg

# Renaming or adding an asset is a visible decision: update this list in the same change.
EXPECTED_ASSET_KEYS = [
    "core/id_maps",
    "core/interactions",
    "enrichment/item_description_failures",
    "enrichment/item_descriptions",
    "enrichment/item_embeddings",
    "enrichment/user_embeddings",
    "enrichment/user_profile_failures",
    "enrichment/user_profiles",
    "labels/debiased_labels",
    "labels/exposure_propensities",
    "labels/position_bias",
    "models/baselines",
    "models/hgnn",
    "models/hstu",
    "models/metrics",
    "models/mf",
    "models/promoted",
    "models/sasrec",
    "models/tiger",
    "models/two_tower",
    "raw/events",
    "raw/impressions",
    "raw/items",
    "raw/reviews",
    "raw/slates",
    "raw/users",
    "semantic_ids/codebooks",
    "semantic_ids/item_semantic_ids",
    "training_data/graph_edges",
    "training_data/graph_nodes",
    "training_data/item_frequencies",
    "training_data/sequence_shards",
    "training_data/training_window",
    "training_data/two_tower_examples",
    "training_data/user_sequences",
]


def test_definitions_load_and_validate() -> None:
    from recforge.definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("raw_daily_job") is not None
    assert defs.resolve_schedule_def("raw_daily_job_schedule") is not None


def test_sorted_asset_keys() -> None:
    from recforge.definitions import defs

    keys = sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())
    assert keys == EXPECTED_ASSET_KEYS


def test_every_asset_is_covered_by_at_least_one_check() -> None:
    from recforge.definitions import defs

    graph = defs.resolve_asset_graph()
    checked = {c.asset_key for c in graph.asset_check_keys}
    unchecked = sorted(k.to_user_string() for k in graph.get_all_asset_keys() if k not in checked and graph.get(k).is_materializable)
    assert unchecked == []
