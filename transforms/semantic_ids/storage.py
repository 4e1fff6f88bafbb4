"""Codebook versions as rows of the ``semantic_ids_codebooks`` table (one immutable row per version).

Networks (RQ-VAE encoder and decoder) are stored as one binary value in a small, deterministic
format, so the same codebook always gives the same bytes::

    8 bytes  little-endian header length h
    h bytes  JSON header: [[name, [shape...]], ...] in storage order
    rest     the float32 arrays, C order, one after the other
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.semantic_ids.codebook import Codebook
from transforms.semantic_ids.config import SemanticIdConfig
from transforms.semantic_ids.mlp import Mlp
from warehouse.contracts import SEMANTIC_IDS_CODEBOOKS


def codebook_row(codebook: Codebook) -> pa.Table:
    """One row of the codebooks table for ``codebook``."""
    centroids = _nested_lists(np.stack(codebook.centroids))
    networks = None
    if codebook.encoder is not None and codebook.decoder is not None:
        networks = encode_networks({"encoder": codebook.encoder, "decoder": codebook.decoder})
    row = {
        "version": [codebook.version],
        "parent_version": [codebook.parent_version],
        "quantizer": [str(codebook.config.quantizer)],
        "levels": [codebook.levels],
        "codes_per_level": [codebook.codes_per_level],
        "id_length": [codebook.id_length],
        "disambiguation": [str(codebook.config.disambiguation)],
        "embedding_dim": [codebook.embedding_dim],
        "code_dim": [codebook.code_dim],
        "embedding_model": [codebook.embedding_model],
        "trained_items": [codebook.trained_items],
        "input_fingerprint": [codebook.input_fingerprint],
        "config": [codebook.config.to_json()],
        "centroids": centroids,
        "code_bias": _nested_lists(np.stack(codebook.biases)),
        "networks": [networks],
    }
    return pa.table(row, schema=SEMANTIC_IDS_CODEBOOKS.schema)


def _nested_lists(values: np.ndarray) -> pa.Array:
    """A float32 array of shape ``(a, b, ...)`` as a one-row nested list array, without Python floats."""
    arr: pa.Array = pa.array(np.ascontiguousarray(values, np.float32).reshape(-1))
    for size in reversed(values.shape):
        count = len(arr) // size
        arr = pa.ListArray.from_arrays(pa.array(np.arange(count + 1, dtype=np.int32) * size), arr)
    return arr


def append_codebook(table: pa.Table, codebook: Codebook) -> pa.Table:
    """The codebooks table with ``codebook`` added; earlier versions are carried over untouched."""
    if table.num_rows and codebook.version in table["version"].to_pylist():
        raise ValueError(f"codebook version {codebook.version} already exists; versions are immutable")
    if table.num_rows and codebook.version <= max(table["version"].to_pylist()):
        raise ValueError(f"codebook version {codebook.version} is not newer than the stored ones")
    return pa.concat_tables([table.cast(SEMANTIC_IDS_CODEBOOKS.schema), codebook_row(codebook)]).combine_chunks()


def latest_version(table: pa.Table) -> int | None:
    """Highest stored version, or None when there is none."""
    return None if table.num_rows == 0 else int(pc.max(table["version"]).as_py())


def load_codebook(table: pa.Table, version: int | None = None) -> Codebook:
    """Rebuild a :class:`Codebook` from its row (the latest version unless one is named)."""
    version = latest_version(table) if version is None else version
    if version is None:
        raise LookupError("no codebook is stored yet: train one first (a full build)")
    rows = table.filter(pc.equal(table["version"], version))
    if rows.num_rows != 1:
        raise LookupError(f"codebook version {version} is not stored (have {sorted(table['version'].to_pylist())})")
    row = rows.drop_columns(["centroids", "code_bias"]).to_pylist()[0]
    shape = (row["levels"], row["codes_per_level"])
    flat = pc.list_flatten(pc.list_flatten(pc.list_flatten(rows["centroids"]))).to_numpy()
    centroids = tuple(flat.astype(np.float32).reshape(*shape, row["code_dim"]))
    bias_flat = pc.list_flatten(pc.list_flatten(rows["code_bias"])).to_numpy()
    biases = tuple(bias_flat.astype(np.float32).reshape(shape))
    encoder = decoder = None
    if row["networks"] is not None:
        nets = decode_networks(row["networks"])
        encoder, decoder = nets["encoder"], nets["decoder"]
    return Codebook(
        version=row["version"],
        config=SemanticIdConfig.from_json(row["config"]),
        centroids=centroids,
        biases=biases,
        embedding_dim=row["embedding_dim"],
        trained_items=row["trained_items"],
        input_fingerprint=row["input_fingerprint"],
        embedding_model=row["embedding_model"],
        parent_version=row["parent_version"],
        encoder=encoder,
        decoder=decoder,
    )


def encode_networks(nets: dict[str, Mlp]) -> bytes:
    """Serialise named MLPs deterministically (see the module docstring)."""
    arrays: list[tuple[str, np.ndarray]] = []
    for name in sorted(nets):
        for i, (w, b) in enumerate(zip(nets[name].weights, nets[name].biases, strict=True)):
            arrays += [(f"{name}.{i}.weight", w), (f"{name}.{i}.bias", b)]
    header = json.dumps([[n, list(a.shape)] for n, a in arrays]).encode()
    body = b"".join(np.ascontiguousarray(a, np.float32).tobytes() for _, a in arrays)
    return struct.pack("<Q", len(header)) + header + body


def decode_networks(blob: bytes) -> dict[str, Mlp]:
    """Inverse of :func:`encode_networks`."""
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + size])
    offset = 8 + size
    layers: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    for name, shape in header:
        count = int(np.prod(shape))
        arr = np.frombuffer(blob, np.float32, count, offset).reshape(shape).copy()
        offset += 4 * count
        net, index, kind = name.split(".")
        layers.setdefault(net, {}).setdefault(int(index), {})[kind] = arr
    if offset != len(blob):
        raise ValueError("network blob has trailing bytes: it is corrupt")
    return {
        net: Mlp(
            weights=tuple(parts[i]["weight"] for i in sorted(parts)),
            biases=tuple(parts[i]["bias"] for i in sorted(parts)),
        )
        for net, parts in layers.items()
    }
