"""Catalog, users and truth files."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sample_world.config import (
    _STREAM_CATALOG_LINES,
    AGE_BANDS,
    CATEGORIES,
    COLORS,
    COUNTRIES,
    DAY_MS,
    EXAMINATION_DEFINITION,
    EXAMINATION_ETA,
    LATENT_POLES,
    MEAN_VIEWPORT,
    PARQUET_COMPRESSION,
    PROPENSITY_DEFINITION,
    CatalogFormat,
    WorldConfig,
    examination_curve,
)
from sample_world.defects import _log_defects, _LogCounts, _with_defects
from sample_world.static import _rng, _taxonomy, _World
from sample_world.text import (
    _csv_lines,
    _csv_quoted,
    _Fields,
    _fixed_text,
    _int_text,
    _iso_ms,
    _join,
    _json_lines,
    _LineBuilder,
    _lookup,
    _quoted,
    _write_lines,
)


def _write_catalog(world: _World, staging: Path) -> _LogCounts:
    config, catalog, tax = world.config, world.catalog, _taxonomy()
    category = _lookup(tax.category_names, catalog.category)
    subcategory = _lookup(tax.subcategory_names, catalog.subcategory)
    brand = _lookup(tax.brand_names, catalog.brand)
    noun = _lookup(tax.subcategory_nouns, catalog.subcategory)
    material = _lookup(tax.material_names, catalog.material)
    color = _lookup(COLORS, catalog.color)
    words = [w for pair in LATENT_POLES for w in pair]
    adjectives = [_lookup(words, catalog.pole_words[:, j]) for j in range(3)]
    model_rng = _rng(config.seed, _STREAM_CATALOG_LINES)
    model = _join(_lookup([chr(ord("A") + i) for i in range(26)], model_rng.integers(0, 26, config.items)),
                  _int_text(model_rng.integers(10, 100, config.items)))
    title = _join(brand, " ", pc.utf8_title(adjectives[0]), " ", pc.utf8_title(noun), " ", model)
    description = _join(
        "A ", adjectives[0], ", ", adjectives[1], " and ", adjectives[2], " ", noun, " by ", brand, ". Made with ",
        material, " in ", color, ". ", _lookup([s.usage for s in CATEGORIES], catalog.category),
    )
    path_name = _join(category, " > ", subcategory)
    attributes = _join('{"color": "', color, '", "material": "', material, '"}')
    price = _fixed_text(catalog.price_cents, 2)
    available_from = _iso_ms(catalog.available_from_ms)

    if config.catalog_format is CatalogFormat.JSONL:
        fields: _Fields = {
            "item_id": world.item_json, "title": _quoted(title), "description": _quoted(description),
            "categories": _join("[", _quoted(category), ", ", _quoted(path_name), "]"),
            "brand": _quoted(brand), "price": price, "attributes": attributes,
            "available_from": _join('"', available_from, '"'),
        }
        build: _LineBuilder = _json_lines
        header = ""
    else:
        fields = {
            "item_id": world.item_ids, "title": _csv_quoted(title), "description": _csv_quoted(description),
            "categories": _csv_quoted(_join(category, "|", path_name)), "brand": _csv_quoted(brand),
            "price": price, "attributes": _csv_quoted(attributes), "available_from": available_from,
        }
        build, header = _csv_lines, ",".join(fields) + "\n"
    counts = _LogCounts("items")
    spec = dataclasses.replace(_log_defects(config)["items"], csv=config.catalog_format is CatalogFormat.CSV)
    lines = _with_defects(fields, build, spec, config, model_rng, counts)
    with open(staging / "catalog" / f"items.{config.catalog_format.value}", "wb") as fh:
        fh.write(header.encode())
        _write_lines(fh, lines)
    return counts


def _write_users(world: _World, path: Path) -> None:
    pop = world.population
    signup_ms = world.start_ms - pop.signup_days_before.astype(np.int64) * DAY_MS
    signup = pc.utf8_slice_codeunits(_iso_ms(signup_ms), 0, 10)
    lines = _join(world.user_ids, ",", signup, ",", _lookup(COUNTRIES, pop.country), ",",
                  _lookup(AGE_BANDS, pop.age_band), "\n")
    with open(path, "wb") as fh:
        fh.write(b"user_id,signup_date,country,age_band\n")
        _write_lines(fh, lines)


def _write_truth(world: _World, truth: Path, exposure: np.ndarray, requests: int) -> None:
    config, catalog, tax = world.config, world.catalog, _taxonomy()
    surfaces = {
        str(s): {"eta": EXAMINATION_ETA[s], "curve": examination_curve(s, config.slate_size).tolist(),
                 "mean_viewport": MEAN_VIEWPORT[s]}
        for s in config.surfaces
    }
    examination = {"definition": EXAMINATION_DEFINITION, "propensity_definition": PROPENSITY_DEFINITION,
                   "surfaces": surfaces}
    (truth / "examination.json").write_text(json.dumps(examination, indent=2) + "\n")

    items = pa.table({
        "item_id": world.item_ids,
        "category": _lookup(tax.category_names, catalog.category),
        "subcategory": _lookup(tax.subcategory_names, catalog.subcategory),
        "brand": _lookup(tax.brand_names, catalog.brand),
        "price": pa.array(catalog.price_cents / 100.0),
        "bias": pa.array(catalog.bias),
        "popularity": pa.array(catalog.popularity),
        "latent": _list_column(catalog.latent),
        "exposure_prob": pa.array(exposure / max(requests, 1)),
        "impressions": pa.array(exposure.astype(np.int64)),
        "available_from": pa.array(catalog.available_from_ms, pa.timestamp("ms", tz="UTC")),
        "cold_start": pa.array(catalog.available_day > 0),
    })
    pq.write_table(items, truth / "items.parquet", compression=PARQUET_COMPRESSION)
    users = pa.table({
        "user_id": world.user_ids,
        "latent": _list_column(world.population.latent),
        "taste": _list_column(world.population.taste.astype(np.float32)),
        "activity": pa.array(world.population.activity),
    })
    pq.write_table(users, truth / "users.parquet", compression=PARQUET_COMPRESSION)


def _list_column(matrix: np.ndarray) -> pa.Array:
    """A (n, d) matrix as a list<float> column."""
    n, d = matrix.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel()))


def _write_world_json(path: Path, config: WorldConfig, counts: Mapping[str, int],
                      bad_by_log: Mapping[str, int], dup_by_log: Mapping[str, int]) -> None:
    # No wall-clock time here: the same config must give the same bytes.
    doc = {
        "config": config.to_json(),
        "counts": dict(counts),
        "bad_lines_by_log": dict(bad_by_log),
        "duplicate_lines_by_log": dict(dup_by_log),
        "categories": list(_taxonomy().category_names),
        "propensity_definition": PROPENSITY_DEFINITION,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def _sum_by_log(counts: Sequence[_LogCounts], value: Callable[[_LogCounts], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        out[c.log] = out.get(c.log, 0) + value(c)
    return out
