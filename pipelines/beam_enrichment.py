"""The enrichment pipelines on Apache Beam: read -> skip cached -> batch -> generate or embed -> write.

::

    requests.parquet ──ReadFromParquet──┐
    cached.parquet ───ReadFromParquet──AsDict──> SkipCached ──BatchElements(n)──> Generate / Embed
                                                                                      │  (per batch)
                                        <work>/checkpoints/<batch>.{out,fail}.parquet <┘
    driver: fold(table of record, checkpoints) -> write tables -> clear checkpoints

Each batch's results are written to the checkpoint area (under the data root) as soon as the batch
is done, atomically, so a run that dies loses nothing it generated: the next run reads the
checkpoints, counts matching rows as done, and generates only the rest. The driver folds kept rows
and checkpoints into the table of record, hands it to a sink (the Warehouse in the assets), and only
then clears the checkpoints.

Runners: ``DirectRunner`` (the default) runs on Beam's in-process FnApiRunner, the batch engine of the
DirectRunner. Beam's ``DirectRunner`` name would first try the Prism runner, which downloads a binary
at start-up; offline that hangs or fails, so it is never chosen: ``PrismRunner`` is refused outright.
Any other runner name (``FlinkRunner``, ``SparkRunner``, ``DataflowRunner``) is passed to Beam with
the extra pipeline arguments; the work directory must then be on storage every worker can reach.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics.metric import Metrics, MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.enrichment import GeneratorConfig
from transforms.enrichment.embedding import EmbedderConfig, SentenceTransformerEmbedder
from transforms.enrichment.prompts import PROMPTS
from transforms.enrichment.records import (
    FAILURE_CONTRACTS,
    OUTPUT_CONTRACTS,
    Provenance,
    cached_vectors,
    failure_row,
    fold_embeddings,
    fold_failures,
    fold_outputs,
    id_column,
    output_row,
    plan_generation,
    rows_table,
    task_cache_key,
)
from transforms.enrichment.types import EntityKind, GenerationTask, Generator
from warehouse.contracts import embedding_contract

LOG = logging.getLogger(__name__)
METRICS_NAMESPACE = "recforge.enrichment"
REFUSED_RUNNERS = frozenset({"prismrunner", "prism"})


class FailureShareExceeded(RuntimeError):
    """More tasks failed than the run allows (raised after everything generated was written)."""


# --- runners --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeamSettings:
    """How the Beam pipeline runs.

    Attributes:
        runner: ``DirectRunner`` (in-process FnApiRunner), ``BundleBasedDirectRunner``, or any Beam
            runner name for scale-out. ``PrismRunner`` is refused (it downloads a binary).
        batch_size: Elements per generate / embed call.
        pipeline_args: Extra Beam command-line options (e.g. ``--flink_master=...``).
    """

    runner: str = "DirectRunner"
    batch_size: int = 16
    pipeline_args: tuple[str, ...] = ()


def make_runner(name: str) -> Any:
    """A Beam runner for ``name`` that never falls through to the Prism runner."""
    if name.lower() in REFUSED_RUNNERS:
        raise ValueError("the Prism runner downloads a binary at start-up and is not used; choose DirectRunner")
    if name == "DirectRunner":
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    if name == "BundleBasedDirectRunner":
        from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

        return BundleBasedDirectRunner()
    return name


def make_pipeline(settings: BeamSettings) -> beam.Pipeline:
    """A pipeline on the configured runner (see :func:`make_runner`)."""
    for arg in settings.pipeline_args:
        if arg.startswith("--runner") and any(r in arg.lower() for r in REFUSED_RUNNERS):
            raise ValueError("the Prism runner is not used; drop --runner from pipeline_args")
    return beam.Pipeline(runner=make_runner(settings.runner), options=PipelineOptions(list(settings.pipeline_args)))


# --- process-wide model handles ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def shared_embedder(config: EmbedderConfig) -> SentenceTransformerEmbedder:
    """One loaded embedding model per config and process, shared by every DoFn instance and run."""
    return config.build()


@functools.lru_cache(maxsize=2)
def _shared_local_generator(config: GeneratorConfig) -> Generator:
    return config.build()


def build_generator(config: GeneratorConfig) -> Generator:
    """A generator for ``config``; local models are loaded once per process, HTTP clients per call."""
    from transforms.enrichment.local_transformers import LocalTransformersConfig

    if isinstance(config, LocalTransformersConfig):
        return _shared_local_generator(config)
    return config.build()


# --- checkpoints ----------------------------------------------------------------------------------------------


def _write_parquet_atomic(table: pa.Table, path: Path) -> None:
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _batch_name(keys: Iterable[str]) -> str:
    return hashlib.sha256("\x1f".join(sorted(keys)).encode()).hexdigest()[:24]


def read_checkpoints(directory: Path, suffix: str, schema: pa.Schema) -> list[pa.Table]:
    """Every checkpoint table ``*.{suffix}.parquet`` under ``directory``, in name order."""
    if not directory.is_dir():
        return []
    return [pq.read_table(p, schema=schema) for p in sorted(directory.glob(f"*.{suffix}.parquet"))]


# --- generation -------------------------------------------------------------------------------------------------

REQUEST_SCHEMA = pa.schema(
    [
        pa.field("entity_id", pa.string()),
        pa.field("input_hash", pa.string()),
        pa.field("cache_key", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("cutoff", pa.timestamp("ms", tz="UTC")),
    ]
)
KEY_SCHEMA = pa.schema([pa.field("key", pa.string())])


class GenerateBatchFn(beam.DoFn):
    """Generates one batch of requests, checkpoints the results, emits output and failure rows."""

    FAILURES = "failures"

    def __init__(
        self, entity: EntityKind, generator: GeneratorConfig, checkpoint_dir: str, generated_at: dt.datetime
    ) -> None:
        self.entity = entity
        self.generator_config = generator
        self.checkpoint_dir = checkpoint_dir
        self.generated_at = generated_at
        self.generated = Metrics.counter(METRICS_NAMESPACE, "generated")
        self.failed = Metrics.counter(METRICS_NAMESPACE, "failed")
        self.model_calls = Metrics.counter(METRICS_NAMESPACE, "model_calls")
        self.prompt_tokens = Metrics.counter(METRICS_NAMESPACE, "prompt_tokens")
        self.completion_tokens = Metrics.counter(METRICS_NAMESPACE, "completion_tokens")

    def setup(self) -> None:
        self.gen = build_generator(self.generator_config)
        self.prov = Provenance(self.gen.kind, self.gen.model, PROMPTS[self.entity].version)
        Path(self.checkpoint_dir).mkdir(parents=True, exist_ok=True)

    def process(self, batch: list[dict[str, Any]]) -> Iterator[Any]:
        tasks = [
            GenerationTask(self.entity, r["entity_id"], json.loads(r["payload"]), r["input_hash"], r.get("cutoff")) for r in batch
        ]
        outcomes = self.gen.generate(tasks)
        self.model_calls.inc(len(tasks))
        outputs, failures = [], []
        for task, outcome in zip(tasks, outcomes, strict=True):
            self.prompt_tokens.inc(outcome.prompt_tokens)
            self.completion_tokens.inc(outcome.completion_tokens)
            if outcome.ok:
                outputs.append(output_row(task, outcome, self.prov, self.generated_at))
            else:
                failures.append(failure_row(task, outcome, self.prov, self.generated_at))
        name = _batch_name(r["cache_key"] for r in batch)
        directory = Path(self.checkpoint_dir)
        # Failures first: the outputs file is the one that marks the batch's work as done.
        _write_parquet_atomic(rows_table(FAILURE_CONTRACTS[self.entity], failures), directory / f"{name}.fail.parquet")
        _write_parquet_atomic(rows_table(OUTPUT_CONTRACTS[self.entity], outputs), directory / f"{name}.out.parquet")
        self.generated.inc(len(outputs))
        self.failed.inc(len(failures))
        yield from outputs
        for row in failures:
            yield beam.pvalue.TaggedOutput(self.FAILURES, row)

    def teardown(self) -> None:
        from transforms.enrichment.local_transformers import LocalTransformersConfig

        # Local models are shared per process (see build_generator) and stay loaded for the next run.
        if hasattr(self, "gen") and not isinstance(self.generator_config, LocalTransformersConfig):
            self.gen.close()


def _not_cached(row: dict[str, Any], cached: dict[str, bool]) -> bool:
    return row["cache_key"] not in cached


class GenerateEnrichment(beam.PTransform):
    """requests -> skip cached -> fixed-size batches -> generate; outputs main, failures tagged."""

    def __init__(
        self,
        entity: EntityKind,
        generator: GeneratorConfig,
        checkpoint_dir: str,
        generated_at: dt.datetime,
        cached_keys: beam.PCollection,
        batch_size: int,
    ) -> None:
        super().__init__()
        self.entity, self.generator, self.checkpoint_dir = entity, generator, checkpoint_dir
        self.generated_at, self.cached_keys, self.batch_size = generated_at, cached_keys, batch_size

    def expand(self, requests: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return (
            requests
            | "SkipCached" >> beam.Filter(_not_cached, cached=beam.pvalue.AsDict(self.cached_keys))
            | "Batch" >> beam.BatchElements(min_batch_size=self.batch_size, max_batch_size=self.batch_size)
            | "Generate"
            >> beam.ParDo(
                GenerateBatchFn(self.entity, self.generator, self.checkpoint_dir, self.generated_at)
            ).with_outputs(GenerateBatchFn.FAILURES, main="outputs")
        )


@dataclass
class RunStats:
    """Run metadata: what was generated, kept from cache, resumed, failed, and what it cost."""

    tasks: int = 0
    cached: int = 0
    resumed: int = 0
    generated: int = 0
    failed: int = 0
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failure_share(self) -> float:
        attempted = self.tasks - self.cached - self.resumed
        return self.failed / attempted if attempted else 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "cached": self.cached,
            "resumed": self.resumed,
            "generated": self.generated,
            "failed": self.failed,
            "failure_share": round(self.failure_share, 6),
            "model_calls": self.model_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "seconds": round(self.seconds, 3),
            **self.extra,
        }


@dataclass(frozen=True)
class GenerationRun:
    """One generation run's settings.

    Attributes:
        entity: Items or users.
        generator: The generator config (built on the workers).
        work_dir: Checkpoint area of this table (under the data root, e.g. ``<root>/.work/enrichment/...``).
        generated_at: Timestamp written on rows generated by this run.
        max_failure_share: Failed / attempted above this fails the run (after writing what succeeded).
        beam: Runner and batch size.
    """

    entity: EntityKind
    generator: GeneratorConfig
    work_dir: Path
    generated_at: dt.datetime
    max_failure_share: float = 0.05
    beam: BeamSettings = BeamSettings()


@dataclass(frozen=True)
class GenerationResult:
    outputs: pa.Table
    failures: pa.Table
    stats: RunStats


def _counter(result: Any, name: str) -> int:
    try:
        found = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name))["counters"]
    except (AttributeError, NotImplementedError, KeyError):  # runners without metrics support
        return 0
    return int(sum(c.committed or 0 for c in found))


def _write_rows(path: Path, schema: pa.Schema, rows: Sequence[dict[str, Any]]) -> None:
    _write_parquet_atomic(pa.Table.from_pylist(list(rows), schema=schema), path)


def run_generation(
    tasks: Sequence[GenerationTask],
    stored: pa.Table,
    run: GenerationRun,
    sink: Callable[[pa.Table, pa.Table], None],
) -> GenerationResult:
    """Generate what is missing for ``tasks`` on Beam, fold, hand the tables to ``sink``, then clean up.

    Args:
        tasks: Current tasks, one per entity.
        stored: The table of record (empty on a first run).
        run: Settings.
        sink: Writes ``(outputs, failures)``; checkpoints are removed only after it returns.

    Raises:
        FailureShareExceeded: after the sink ran, when failed / attempted > ``max_failure_share``.
    """
    started = time.perf_counter()
    entity = run.entity
    out_schema, fail_schema = OUTPUT_CONTRACTS[entity].schema, FAILURE_CONTRACTS[entity].schema
    prov = provenance_of(run.generator, entity)
    checkpoint_dir = run.work_dir / "checkpoints"
    stats = RunStats(tasks=len(tasks))
    if not tasks:
        outputs, failures = out_schema.empty_table(), fail_schema.empty_table()
        sink(outputs, failures)
        shutil.rmtree(run.work_dir, ignore_errors=True)
        return GenerationResult(outputs, failures, stats)

    keys = {t.entity_id: task_cache_key(t, prov) for t in tasks}
    kept_from_table = plan_generation(tasks, [stored], prov).kept
    kept_all = plan_generation(tasks, [stored, *read_checkpoints(checkpoint_dir, "out", out_schema)], prov).kept
    stats.cached = kept_from_table.num_rows
    stats.resumed = kept_all.num_rows - kept_from_table.num_rows

    run.work_dir.mkdir(parents=True, exist_ok=True)
    requests_path, cached_path = run.work_dir / "requests.parquet", run.work_dir / "cached.parquet"
    _write_rows(
        requests_path,
        REQUEST_SCHEMA,
        [
            {"entity_id": t.entity_id, "input_hash": t.input_hash, "cache_key": keys[t.entity_id],
             "payload": json.dumps(t.payload, sort_keys=True, default=str), "cutoff": t.cutoff}
            for t in tasks
        ],
    )
    _write_rows(cached_path, KEY_SCHEMA, [{"key": k} for k in kept_all["cache_key"].to_pylist()])

    if kept_all.num_rows < len(tasks):  # a nightly run with nothing new starts no pipeline at all
        pipeline = make_pipeline(run.beam)
        requests = pipeline | "ReadRequests" >> beam.io.ReadFromParquet(str(requests_path))
        cached = (
            pipeline
            | "ReadCached" >> beam.io.ReadFromParquet(str(cached_path))
            | "KeyOf" >> beam.Map(lambda r: (r["key"], True))
        )
        _ = requests | "Enrich" >> GenerateEnrichment(
            entity, run.generator, str(checkpoint_dir), run.generated_at, cached, run.beam.batch_size
        )
        result = pipeline.run()
        result.wait_until_finish()
        stats.model_calls = _counter(result, "model_calls")

    new_outputs = read_checkpoints(checkpoint_dir, "out", out_schema)
    outputs = fold_outputs(entity, [stored, *new_outputs], keys)
    succeeded = set(outputs[id_column(entity)].to_pylist())
    failures = fold_failures(entity, read_checkpoints(checkpoint_dir, "fail", fail_schema), succeeded, set(keys))
    new_rows = [p for p in new_outputs if p.num_rows]
    fresh = pa.concat_tables(new_rows) if new_rows else out_schema.empty_table()
    stats.generated = outputs.num_rows - stats.cached - stats.resumed
    stats.failed = failures.num_rows
    # Usage of rows new to the table (generated now, or before an interruption) and of failures.
    fail_tokens = failures.select(["prompt_tokens", "completion_tokens", "cost_usd"]).to_pydict()
    in_run = (set(keys.values()) & set(fresh["cache_key"].to_pylist())) - set(kept_from_table["cache_key"].to_pylist())
    fresh = fresh.filter(pa.array([k in in_run for k in fresh["cache_key"].to_pylist()], pa.bool_()))
    stats.prompt_tokens = sum(fresh["prompt_tokens"].to_pylist()) + sum(fail_tokens["prompt_tokens"])
    stats.completion_tokens = sum(fresh["completion_tokens"].to_pylist()) + sum(fail_tokens["completion_tokens"])
    stats.cost_usd = float(sum(fresh["cost_usd"].to_pylist()) + sum(fail_tokens["cost_usd"]))

    sink(outputs, failures)
    shutil.rmtree(run.work_dir, ignore_errors=True)
    stats.seconds = time.perf_counter() - started
    if stats.failure_share > run.max_failure_share:
        raise FailureShareExceeded(
            f"{stats.failed} of {stats.tasks - stats.cached - stats.resumed} {entity.value} tasks failed "
            f"({stats.failure_share:.1%} > the allowed {run.max_failure_share:.1%}); "
            f"{outputs.num_rows} rows were written and failures are in {FAILURE_CONTRACTS[entity].view_name}"
        )
    return GenerationResult(outputs, failures, stats)


def provenance_of(config: GeneratorConfig, entity: EntityKind) -> Provenance:
    """Generator kind, model name and prompt version that ``config`` writes on its rows (no model is loaded)."""
    return Provenance(config.kind, config.stored_model, PROMPTS[entity].version)


# --- embeddings ---------------------------------------------------------------------------------------------------

TEXT_REQUEST_SCHEMA = pa.schema(
    [pa.field("entity_id", pa.string()), pa.field("text", pa.string()), pa.field("text_hash", pa.string())]
)


class EmbedBatchFn(beam.DoFn):
    """Embeds one batch of texts and checkpoints the vectors (keyed by text hash)."""

    def __init__(self, entity: EntityKind, embedder: EmbedderConfig, checkpoint_dir: str) -> None:
        self.entity, self.embedder_config, self.checkpoint_dir = entity, embedder, checkpoint_dir
        self.embedded = Metrics.counter(METRICS_NAMESPACE, "embedded")
        self.model_calls = Metrics.counter(METRICS_NAMESPACE, "model_calls")

    def setup(self) -> None:
        self.embedder = shared_embedder(self.embedder_config)
        Path(self.checkpoint_dir).mkdir(parents=True, exist_ok=True)

    def process(self, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        vectors = self.embedder.encode([r["text"] for r in batch])
        self.model_calls.inc(len(batch))
        from transforms.enrichment.embedding import embeddings_table

        table = embeddings_table(
            self.entity, [r["entity_id"] for r in batch], vectors, [r["text_hash"] for r in batch], self.embedder.model
        )
        _write_parquet_atomic(table, Path(self.checkpoint_dir) / f"{_batch_name(r['text_hash'] for r in batch)}.emb.parquet")
        self.embedded.inc(len(batch))
        for r, v in zip(batch, vectors, strict=True):
            yield {"entity_id": r["entity_id"], "text_hash": r["text_hash"], "embedding": v}


class EmbedTexts(beam.PTransform):
    """texts -> skip cached text hashes -> fixed-size batches -> embed."""

    def __init__(
        self, entity: EntityKind, embedder: EmbedderConfig, checkpoint_dir: str, cached_hashes: beam.PCollection, batch_size: int
    ) -> None:
        super().__init__()
        self.entity, self.embedder, self.checkpoint_dir = entity, embedder, checkpoint_dir
        self.cached_hashes, self.batch_size = cached_hashes, batch_size

    def expand(self, texts: beam.PCollection) -> beam.PCollection:
        return (
            texts
            | "SkipCached" >> beam.Filter(lambda r, cached: r["text_hash"] not in cached, cached=beam.pvalue.AsDict(self.cached_hashes))
            | "Batch" >> beam.BatchElements(min_batch_size=self.batch_size, max_batch_size=self.batch_size)
            | "Embed" >> beam.ParDo(EmbedBatchFn(self.entity, self.embedder, self.checkpoint_dir))
        )


@dataclass(frozen=True)
class EmbeddingRun:
    entity: EntityKind
    embedder: EmbedderConfig
    work_dir: Path
    beam: BeamSettings = BeamSettings(batch_size=256)


@dataclass(frozen=True)
class EmbeddingResult:
    embeddings: pa.Table
    stats: RunStats


def run_embedding(
    wanted: pa.Table, stored: pa.Table, run: EmbeddingRun, sink: Callable[[pa.Table], None]
) -> EmbeddingResult:
    """Embed the texts of ``wanted`` (``(<entity>_id, text, text_hash)``) that no stored row covers.

    Stored rows are reused by ``text_hash`` when their ``model`` is this run's model; checkpoints of an
    interrupted run are reused the same way. The folded table goes to ``sink``; checkpoints are
    cleared after it returns.
    """
    started = time.perf_counter()
    entity = run.entity
    model = run.embedder.name
    checkpoint_dir = run.work_dir / "checkpoints"
    resumed = [pq.read_table(p) for p in sorted(checkpoint_dir.glob("*.emb.parquet"))] if checkpoint_dir.is_dir() else []
    from_table = cached_vectors([stored], model)
    from_resume = cached_vectors(resumed, model)
    hashes = wanted["text_hash"].to_pylist()
    stats = RunStats(tasks=len(hashes))
    stats.cached = sum(h in from_table for h in hashes)
    stats.resumed = sum(h in from_resume and h not in from_table for h in hashes)
    known = {**from_resume, **from_table}

    run.work_dir.mkdir(parents=True, exist_ok=True)
    requests_path, cached_path = run.work_dir / "texts.parquet", run.work_dir / "cached.parquet"
    col = id_column(entity)
    _write_parquet_atomic(
        pa.Table.from_arrays([wanted[col], wanted["text"], wanted["text_hash"]], schema=TEXT_REQUEST_SCHEMA), requests_path
    )
    _write_rows(cached_path, KEY_SCHEMA, [{"key": h} for h in sorted(known)])
    if any(h not in known for h in hashes):  # nothing new: no pipeline, no model load
        pipeline = make_pipeline(run.beam)
        texts = pipeline | "ReadTexts" >> beam.io.ReadFromParquet(str(requests_path))
        cached = (
            pipeline
            | "ReadCached" >> beam.io.ReadFromParquet(str(cached_path))
            | "KeyOf" >> beam.Map(lambda r: (r["key"], True))
        )
        _ = texts | "Embed" >> EmbedTexts(entity, run.embedder, str(checkpoint_dir), cached, run.beam.batch_size)
        result = pipeline.run()
        result.wait_until_finish()
        stats.model_calls = _counter(result, "model_calls")

    fresh = cached_vectors([pq.read_table(p) for p in sorted(checkpoint_dir.glob("*.emb.parquet"))], model) if checkpoint_dir.is_dir() else {}
    vectors = {**fresh, **known}
    dim = _dim(vectors, run.embedder)
    table = fold_embeddings(entity, wanted, vectors, model, dim)
    stats.generated = len(hashes) - stats.cached - stats.resumed
    sink(table)
    shutil.rmtree(run.work_dir, ignore_errors=True)
    stats.seconds = time.perf_counter() - started
    return EmbeddingResult(table, stats)


def _dim(vectors: dict[str, np.ndarray], config: EmbedderConfig) -> int:
    for v in vectors.values():
        return int(v.shape[0])
    return shared_embedder(config).dim if config.model_path else embedding_contract("item").schema.field("embedding").type.list_size
