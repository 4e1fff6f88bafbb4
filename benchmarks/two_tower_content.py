"""Two-tower with item content against ids only, on ML-100K (the ``content`` section of benchmarks/training.py).

Two routes to the same model, each with its own keys:

* ``catalogue`` (``ml100k_two_tower_content_*``, ``ml100k_two_tower_idonly_*``): the examples, split and item
  text of benchmarks/hgnn.py (one example per rating; titles and genres from ``u.item``; titles embedded with
  the bundled all-MiniLM-L6-v2), so the figures sit beside the 2T-HGNN's on the same test rows. Semantic-ID
  codes come from the project's residual k-means (3 levels of 32 codes) over those title embeddings.
* ``pipeline`` (``ml100k_pipeline_two_tower_*``): the user's path. ``recforge ingest movielens`` and ``recforge
  build --select core,labels,training_data``; then a second warehouse from the same ingest built with
  ``--select core,enrichment,semantic_ids`` and the cut-off ``train_end`` at the split's first validation
  timestamp, so the item descriptions (which quote each film's ratings so far), their embeddings and the
  codebook see nothing of the validation and test periods (a second warehouse: moving the cut-off back in the
  first would leave its user profiles built with the later one, which a blocking check refuses; both id maps
  come from the same ingest and are checked equal). The towers read it as ``recforge train`` does
  (``content_from_warehouse``: description embeddings, semantic-ID codes, genres as categories).

Both: the examples are split by time as ``training.data.two_tower`` does (the last 10 % of timestamps test, the
10 % before validation); log-Q comes from the split's own training rows and the label weights are off (the
pipeline's item frequencies and popularity propensities count its whole training window, which holds this
split's validation and test). Selection on the VALIDATION split only, one seed: with content, all groups or all
but the semantic-ID codes (content neighbours on, ``two_tower.content_neighbours`` 20); per family (content, ids
only) the variant with the best mean of all / cold / new validation Recall@50 (the HGNN benchmark's rule). Reported:
its test Recall@50 on all test interactions, on cold items (< 5 training positives) and on new items (no
training positive), full catalogue, query history filtered.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from training.baselines import popularity
from training.config import TrainConfig
from training.data.two_tower import TwoTowerData, two_tower_data, with_content
from training.data.two_tower_content import content_from_warehouse, item_content
from training.evaluate import Scorer, evaluate
from training.tasks import TwoTowerRetrieval
from training.train import train
from warehouse import contracts as C
from warehouse.store import Warehouse

VALID_SHARE = TEST_SHARE = 0.1  # two_tower_data's defaults
SETTINGS = {"two_tower.use_weights": False, "run.threads": 1}  # one thread: the shared cores are loaded
# Content with every group, content without the semantic-ID codes (whose finest level nearly names the item, so
# they can memorise as ids do), ids only; id dropout 0 (with one seed on ML-100K it scored no better on validation).
VARIANTS: dict[str, dict[str, object]] = {
    "content_drop00": {"two_tower.content": "auto", "two_tower.id_dropout": 0.0},
    "content_nocodes_drop00": {"two_tower.content": "text,category", "two_tower.id_dropout": 0.0},
    "idonly_drop00": {"two_tower.content": "none", "two_tower.id_dropout": 0.0},
}
CODES = {"levels": 3, "codes_per_level": 32}  # the catalogue route's codebook: 1,682 films


def _recforge(home: Path, *args: str) -> None:
    env = {**os.environ, "RECFORGE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "recforge.cli", *args], check=True, env=env, capture_output=True)


def pipeline_data(home: Path, dataset: Path, history: int) -> tuple[TwoTowerData, dict[str, object]]:
    """The pipeline's examples, split, with content built before the split's validation period."""
    import datetime as dt

    _recforge(home, "ingest", "movielens", "--path", str(dataset))
    _recforge(home, "build", "--select", "core,labels,training_data")
    store = Warehouse(home)
    examples = store.read(C.TRAINING_TWO_TOWER_EXAMPLES)
    ts = examples["ts"].cast(pa.int64()).to_numpy()
    valid_from = float(np.quantile(ts, 1 - VALID_SHARE - TEST_SHARE))  # the split two_tower_data makes
    content_end = dt.datetime.fromtimestamp(valid_from / 1000, dt.UTC)
    window_end = dt.datetime.fromtimestamp(float(ts.max()) / 1000, dt.UTC) + dt.timedelta(days=1)
    config = home.parent / "content_cutoffs.yaml"
    config.write_text(f'resources:\n  cutoffs:\n    config:\n      train_end: "{content_end.isoformat()}"\n      valid_end: "{window_end.isoformat()}"\n')
    content_home = home.parent / "content_home"
    _recforge(content_home, "ingest", "movielens", "--path", str(dataset))
    _recforge(content_home, "build", "--select", "core,enrichment,semantic_ids", "--config", str(config))
    content_store = Warehouse(content_home)
    order = [("entity", "ascending"), ("external_id", "ascending")]
    if not store.read(C.CORE_ID_MAPS).sort_by(order).select(["entity", "external_id", "idx"]).equals(
            content_store.read(C.CORE_ID_MAPS).sort_by(order).select(["entity", "external_id", "idx"])):
        raise RuntimeError("the two warehouses' id maps differ")
    data = two_tower_data(examples, None, max_history=history, valid_share=VALID_SHARE, test_share=TEST_SHARE, dataset="ml100k")
    content = content_from_warehouse(content_store, data.num_items)
    if content is None:
        raise RuntimeError("the content warehouse has no content tables")
    return with_content(data, content), {"content_cutoff": content_end.isoformat(),
                                         "embedding_model": content.versions.get("enrichment/embedding_model", ""),
                                         "codebook_version": content.versions.get("semantic_ids/codebook_version", "")}


def catalogue_data(history: int) -> tuple[TwoTowerData, dict[str, object]] | None:
    """benchmarks/hgnn.py's ML-100K examples and split, with its titles (embedded), codes over them and genres."""
    from transforms.enrichment.embedding import EmbedderConfig
    from transforms.semantic_ids.codebook import quantize, train_codebook
    from transforms.semantic_ids.config import SemanticIdConfig

    spec = importlib.util.spec_from_file_location("hgnn_benchmark", Path(__file__).resolve().parent / "hgnn.py")
    assert spec is not None and spec.loader is not None
    hgnn = importlib.util.module_from_spec(spec)
    sys.modules["hgnn_benchmark"] = hgnn  # its dataclasses look their module up
    spec.loader.exec_module(hgnn)
    catalogue = hgnn.ml100k()
    if catalogue is None:
        return None
    examples = hgnn._training_benchmark().examples_from_sequences(catalogue.sequences, history)
    data = two_tower_data(examples, None, max_history=history, valid_share=VALID_SHARE, test_share=TEST_SHARE, dataset="ml100k")
    embedder_config = EmbedderConfig()
    text = np.asarray(embedder_config.build().encode(catalogue.texts), np.float32)
    codebook = train_codebook(text, SemanticIdConfig(**CODES))  # type: ignore[arg-type]
    codes = quantize(codebook, text).codes
    content = item_content(data.num_items, text=text, codes=codes, categories=catalogue.attributes["genre"])
    return with_content(data, content), {"embedding_model": embedder_config.name, "codebook": f"residual k-means {CODES}"}


def describe(prefix: str, data: TwoTowerData) -> dict[str, object]:
    assert data.content is not None
    relevant = data.test.ranking.relevant
    return {
        f"{prefix}_items": data.num_items, f"{prefix}_train_examples": len(data),
        f"{prefix}_groups_available": [g.value for g in data.content.available],
        f"{prefix}_coverage": {k: round(v, 4) for k, v in data.content.coverage().items()},
        f"{prefix}_new_items": int(data.new_items.sum()), f"{prefix}_cold_items": int(data.cold_items.sum()),
        f"{prefix}_test_users": int(relevant.any(1).sum()), f"{prefix}_test_users_with_new": int((relevant & data.new_items).any(1).sum()),
        f"{prefix}_valid_users_with_new": int((data.valid.ranking.relevant & data.new_items).any(1).sum()),
    }


def subsets(prefix: str, scorer: Scorer, data: TwoTowerData, split: str) -> dict[str, float]:
    """Recall@50 on all, cold-item and new-item interactions of ``split``."""
    out = {}
    for subset, items in (("", None), ("cold_", data.cold_items), ("new_", data.new_items)):
        out[f"{prefix}_{subset}recall50"] = round(evaluate(scorer, getattr(data, split).ranking, [50], items=items, metrics=("recall",))["recall@50"], 4)
    return out


def scorer(task: Any, data: TwoTowerData, split: str) -> Scorer:
    retrieval = TwoTowerRetrieval(task.model, data.num_items)
    history = getattr(data, split).history
    return lambda index: retrieval.scores(history[index], index)


def select(route: str, data: TwoTowerData, quick: bool, make_config: Callable[[bool, dict[str, object]], TrainConfig]) -> dict[str, object]:
    """Train every variant, choose per family on validation, report the chosen ones' test figures."""
    head = "ml100k" if route == "catalogue" else "ml100k_pipeline"
    figures: dict[str, object] = dict(subsets(f"{head}_content_popularity", popularity(data), data, "test"))
    variants = {k: v for k, v in VARIANTS.items() if not quick or k != "content_nocodes_drop00"}
    chosen: dict[str, tuple[float, str, dict[str, float]]] = {}
    for tag, variant in variants.items():
        started = time.perf_counter()
        torch.manual_seed(1)
        result = train(make_config(quick, {**SETTINGS, **variant}), data)
        valid = subsets(f"{head}_select_{tag}_valid", scorer(result.task, data, "valid"), data, "valid")
        family = tag.split("_")[0]
        test = subsets(f"{head}_two_tower_{family}", scorer(result.task, data, "test"), data, "test")
        score = float(np.mean(list(valid.values())))
        seconds = round(time.perf_counter() - started, 1)
        figures |= valid | {f"{head}_select_{tag}_valid_mean_recall50": round(score, 4), f"{head}_select_{tag}_seconds": seconds,
                            f"{head}_select_{tag}_epochs": result.epochs}
        print(f"content {route} {tag}: valid {valid} mean {score:.4f}; test {test} ({result.epochs} epochs, {seconds} s)", flush=True)
        if family not in chosen or score > chosen[family][0]:
            chosen[family] = (score, tag, test | {f"{head}_two_tower_{family}_valid{key.split('_valid')[1]}": v for key, v in valid.items()})
    for family, (_, tag, test) in chosen.items():
        figures |= test | {f"{head}_two_tower_{family}_selected": tag}
    return figures


def content_section(tmp: Path, quick: bool, dataset: Path, history: int, make_config: Callable[[bool, dict[str, object]], TrainConfig],
                    routes: tuple[str, ...] = ("catalogue", "pipeline")) -> dict[str, object]:
    if not (dataset / "u.data").exists():
        return {}
    figures: dict[str, object] = {"ml100k_content_selected_on": "valid",
                                  "ml100k_content_selection_rule": "per family, best mean of all / cold / new validation Recall@50 (one seed)"}
    for route in routes:
        started = time.perf_counter()
        built = catalogue_data(history) if route == "catalogue" else pipeline_data(tmp / "home", dataset, history)
        if built is None:
            continue
        data, sources = built
        prefix = "ml100k_content" if route == "catalogue" else "ml100k_pipeline_content"
        figures |= describe(prefix, data) | {f"{prefix}_{k}": v for k, v in sources.items()}
        figures[f"{prefix}_build_seconds"] = round(time.perf_counter() - started, 1)
        figures |= select(route, data, quick, make_config)
    return figures
