"""The Beam steps of the enrichment pipelines: skip cached -> batch -> generate or embed -> checkpoint."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import Metrics

from pipelines.enrichment.checkpoints import batch_name
from pipelines.enrichment.runners import build_generator, shared_embedder
from transforms.enrichment import GeneratorConfig
from transforms.enrichment.embedding import EmbedderConfig
from transforms.enrichment.prompts import PROMPTS
from transforms.enrichment.records import (
    FAILURE_CONTRACTS,
    OUTPUT_CONTRACTS,
    Provenance,
    failure_row,
    output_row,
    rows_table,
)
from transforms.enrichment.types import EntityKind, GenerationTask
from warehouse.atomic import write_parquet

METRICS_NAMESPACE = "recforge.enrichment"


# --- generation -------------------------------------------------------------------------------------------------


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
        self.prov = Provenance(self.gen.kind, self.gen.model, PROMPTS[self.entity].version, self.generator_config.fingerprint)
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
        name = batch_name(r["cache_key"] for r in batch)
        directory = Path(self.checkpoint_dir)
        # Failures first: the outputs file is the one that marks the batch's work as done.
        write_parquet(rows_table(FAILURE_CONTRACTS[self.entity], failures), directory / f"{name}.fail.parquet")
        write_parquet(rows_table(OUTPUT_CONTRACTS[self.entity], outputs), directory / f"{name}.out.parquet")
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


# --- embeddings ---------------------------------------------------------------------------------------------------


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
        write_parquet(table, Path(self.checkpoint_dir) / f"{batch_name(r['text_hash'] for r in batch)}.emb.parquet")
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

