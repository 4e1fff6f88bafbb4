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

Modules: ``runners`` (Beam runners, shared model handles), ``checkpoints`` (the work directory),
``beam_transforms`` (the DoFns and PTransforms), ``pipeline`` (building, running and folding the
item/user generation and embedding runs).
"""

from pipelines.enrichment.beam_transforms import (
    METRICS_NAMESPACE,
    EmbedBatchFn,
    EmbedTexts,
    GenerateBatchFn,
    GenerateEnrichment,
)
from pipelines.enrichment.checkpoints import read_checkpoints
from pipelines.enrichment.pipeline import (
    EmbeddingResult,
    EmbeddingRun,
    FailureShareExceeded,
    GenerationResult,
    GenerationRun,
    RunStats,
    provenance_of,
    run_embedding,
    run_generation,
)
from pipelines.enrichment.runners import (
    EMBEDDING_BEAM,
    EXTRACTIVE_BEAM,
    BeamSettings,
    build_generator,
    make_pipeline,
    make_runner,
    shared_embedder,
)

__all__ = [
    "EMBEDDING_BEAM",
    "EXTRACTIVE_BEAM",
    "METRICS_NAMESPACE",
    "BeamSettings",
    "EmbedBatchFn",
    "EmbedTexts",
    "EmbeddingResult",
    "EmbeddingRun",
    "FailureShareExceeded",
    "GenerateBatchFn",
    "GenerateEnrichment",
    "GenerationResult",
    "GenerationRun",
    "RunStats",
    "build_generator",
    "make_pipeline",
    "make_runner",
    "provenance_of",
    "read_checkpoints",
    "run_embedding",
    "run_generation",
    "shared_embedder",
]
