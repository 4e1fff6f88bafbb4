"""Benchmark: semantic IDs for 1M items x 384-d embeddings on 2 cores, against scikit-learn.

The baseline is what a user would write: scikit-learn's ``MiniBatchKMeans`` (defaults, 256 clusters)
fitted level by level on the residuals, codes read from ``labels_``, no disambiguation. recforge runs
``build_semantic_ids`` end to end: training, encoding every item, disambiguation and the output table
with token strings. Each side runs in its own process (2 BLAS threads) on the same synthetic
embeddings, so time and peak memory (max RSS, input included) are measured alike.

Synthetic embeddings imitate sentence embeddings of a catalogue: clustered (64 topics x 16
subtopics) and, within a subtopic, varying along a few dominant directions (a 32-d subspace with a
decaying spectrum) plus a little isotropic noise. Real text embeddings have such a decaying spectrum;
purely isotropic noise in 384-d cannot be split by any few-level quantizer, so it would make every
method collide on almost every item (the data's fault, not the method's).

Ratios are larger-is-better for recforge: ``ratio_to_minibatch_kmeans`` = baseline seconds / recforge
seconds (wall clock), ``cpu_ratio_to_minibatch_kmeans`` the same in CPU seconds (steadier on a shared
machine), ``memory_ratio_to_minibatch_kmeans`` = baseline peak RSS / recforge peak RSS.

Usage: ``python benchmarks/semantic_ids.py [--items N] [--quick]``; writes
``benchmarks/results/semantic_ids.json`` (``semantic_ids_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _harness import print_table, write_results  # noqa: E402

DIM = 384
LEVELS = 3
CODES = 256
SEED = 0
THREADS = "2"
LATENT_RANK = 32


def synthetic_embeddings(n: int, dim: int = DIM, seed: int = SEED) -> np.ndarray:
    """Unit float32 vectors: 64 topics x 16 subtopics, plus within-subtopic variation along a 32-d
    subspace with a decaying spectrum, plus a little isotropic noise; generated in blocks."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((64, dim), dtype=np.float32)
    subtopics = np.repeat(topics, 16, axis=0) + 0.5 * rng.standard_normal((64 * 16, dim), dtype=np.float32)
    spectrum = np.arange(1, LATENT_RANK + 1, dtype=np.float32) ** -0.5
    basis = rng.standard_normal((LATENT_RANK, dim), dtype=np.float32) * np.float32(np.sqrt(dim / LATENT_RANK)) * spectrum[:, None]
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        block = subtopics[rng.integers(0, len(subtopics), stop - start)]
        block += 0.5 * (rng.standard_normal((stop - start, LATENT_RANK), dtype=np.float32) @ basis)
        block += 0.05 * rng.standard_normal((stop - start, dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_recforge(path: str) -> dict[str, object]:
    import pyarrow as pa

    from transforms.semantic_ids import SemanticIdConfig, build_semantic_ids, codes_matrix, semantic_id_report

    x = np.load(path)
    ids = pa.array([f"item_{i:07d}" for i in range(len(x))], pa.string())
    config = SemanticIdConfig(levels=LEVELS, codes_per_level=CODES, seed=SEED)
    started, cpu = time.perf_counter(), _cpu_seconds()
    codebook, assignment = build_semantic_ids(ids, x, config)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    codes = codes_matrix(assignment.table["codes"], codebook.id_length)
    report = semantic_id_report(
        codes, LEVELS, CODES, sq_error=assignment.quantized.sq_error, sq_norm=np.einsum("ij,ij->i", x, x)
    )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "full_id_collisions": report.full_id_collisions,
        "disambiguated_share": assignment.disambiguated_share,
        "max_extra_code": report.max_extra_code,
        "unique_prefix_share": 1.0 - report.prefix_collision_rate[LEVELS - 1],
        "reconstruction_mse": report.reconstruction_mse,
        **{f"utilization_level_{i + 1}": u for i, u in enumerate(report.utilization)},
        **{f"perplexity_level_{i + 1}": p for i, p in enumerate(report.perplexity)},
    }


def run_minibatch_kmeans(path: str) -> dict[str, object]:
    from sklearn.cluster import MiniBatchKMeans

    from transforms.semantic_ids import semantic_id_report

    x = np.load(path)
    started, cpu = time.perf_counter(), _cpu_seconds()
    residual = x
    codes = np.empty((len(x), LEVELS), dtype=np.int32)
    for level in range(LEVELS):
        km = MiniBatchKMeans(n_clusters=CODES, random_state=SEED, n_init="auto").fit(residual)
        codes[:, level] = km.labels_
        residual = residual - km.cluster_centers_[km.labels_]
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    report = semantic_id_report(codes, LEVELS, CODES, sq_error=np.einsum("ij,ij->i", residual, residual))
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "full_id_collisions": report.full_id_collisions,
        "reconstruction_mse": report.reconstruction_mse,
        **{f"utilization_level_{i + 1}": u for i, u in enumerate(report.utilization)},
        **{f"perplexity_level_{i + 1}": p for i, p in enumerate(report.perplexity)},
    }


def _child(kind: str, path: str) -> dict[str, object]:
    env = {**os.environ, "OMP_NUM_THREADS": THREADS, "OPENBLAS_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--input", path], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10k items (under a minute)")
    parser.add_argument("--child", choices=["recforge", "minibatch_kmeans"], help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        runner = run_recforge if args.child == "recforge" else run_minibatch_kmeans
        print(json.dumps(runner(args.input)))
        return
    items = 10_000 if args.quick else args.items
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "embeddings.npy")
        np.save(path, synthetic_embeddings(items))
        ours = _child("recforge", path)
        base = _child("minibatch_kmeans", path)
    result = {
        "items": items,
        "dim": DIM,
        "levels": LEVELS,
        "codes_per_level": CODES,
        "threads": int(THREADS),
        "seconds": round(float(ours["seconds"]), 3),  # type: ignore[arg-type]
        "peak_rss_mb": round(float(ours["peak_rss_mb"]), 1),  # type: ignore[arg-type]
        "minibatch_kmeans_seconds": round(float(base["seconds"]), 3),  # type: ignore[arg-type]
        "minibatch_kmeans_peak_rss_mb": round(float(base["peak_rss_mb"]), 1),  # type: ignore[arg-type]
        "ratio_to_minibatch_kmeans": round(float(base["seconds"]) / float(ours["seconds"]), 3),  # type: ignore[arg-type]
        "cpu_seconds": round(float(ours["cpu_seconds"]), 3),  # type: ignore[arg-type]
        "minibatch_kmeans_cpu_seconds": round(float(base["cpu_seconds"]), 3),  # type: ignore[arg-type]
        "cpu_ratio_to_minibatch_kmeans": round(float(base["cpu_seconds"]) / float(ours["cpu_seconds"]), 3),  # type: ignore[arg-type]
        "memory_ratio_to_minibatch_kmeans": round(float(base["peak_rss_mb"]) / float(ours["peak_rss_mb"]), 3),  # type: ignore[arg-type]
        "full_id_collisions": ours["full_id_collisions"],
        "minibatch_kmeans_full_id_collisions": base["full_id_collisions"],
        "disambiguated_share": round(float(ours["disambiguated_share"]), 6),  # type: ignore[arg-type]
        "max_extra_code": ours["max_extra_code"],
        "reconstruction_mse": round(float(ours["reconstruction_mse"]), 6),  # type: ignore[arg-type]
        "minibatch_kmeans_reconstruction_mse": round(float(base["reconstruction_mse"]), 6),  # type: ignore[arg-type]
    }
    for level in range(1, LEVELS + 1):
        for name in ("utilization", "perplexity"):
            result[f"{name}_level_{level}"] = round(float(ours[f"{name}_level_{level}"]), 4)  # type: ignore[arg-type]
            result[f"minibatch_kmeans_{name}_level_{level}"] = round(float(base[f"{name}_level_{level}"]), 4)  # type: ignore[arg-type]
    print_table("recforge semantic IDs benchmark", list(result.items()))
    if result["full_id_collisions"] != 0:
        raise SystemExit("semantic IDs collided: full_id_collisions must be 0")
    write_results("semantic_ids_quick" if args.quick else "semantic_ids", result, sort_keys=False)  # quick never overwrites the 1M figures


if __name__ == "__main__":
    main()
