"""The Dagster entry point loads, and its asset list changes only on purpose."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[2]

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
    "raw/events",
    "raw/impressions",
    "raw/items",
    "raw/reviews",
    "raw/slates",
    "raw/users",
    "semantic_ids/codebooks",
    "semantic_ids/item_semantic_ids",
    "training_data/graph",
    "training_data/sequence_shards",
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


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_transforms_and_training_never_import_dagster_or_orchestration() -> None:
    offenders = []
    for package in ("transforms", "training", "warehouse"):
        for path in (REPO / package).rglob("*.py"):
            bad = _imports(path) & {"dagster", "assets", "pipelines"}
            if bad:
                offenders.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert offenders == []


def test_assets_never_import_pipelines_except_wiring() -> None:
    # assets may use pipelines' resources, partitions and runners, but recforge.definitions imports
    # assets, so an asset module importing definitions would be a cycle.
    for path in (REPO / "assets").rglob("*.py"):
        assert "recforge.definitions" not in path.read_text(), path
