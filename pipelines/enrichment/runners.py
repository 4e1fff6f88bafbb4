"""Beam runners for the enrichment pipelines, and the model handles every worker process shares.

Runners: ``DirectRunner`` (the default) runs on Beam's in-process FnApiRunner, the batch engine of the
DirectRunner. Beam's ``DirectRunner`` name would first try the Prism runner, which downloads a binary
at start-up; offline that hangs or fails, so it is never chosen: ``PrismRunner`` is refused outright.
Any other runner name (``FlinkRunner``, ``SparkRunner``, ``DataflowRunner``) is passed to Beam with
the extra pipeline arguments; the work directory must then be on storage every worker can reach.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.enrichment import GeneratorConfig
from transforms.enrichment.embedding import EmbedderConfig, SentenceTransformerEmbedder
from transforms.enrichment.types import Generator

REFUSED_RUNNERS = frozenset({"prismrunner", "prism"})


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


# Steps that cost little per element (extractive text, sentence embeddings) run in larger batches than
# steps that call a language model.
EXTRACTIVE_BEAM = BeamSettings(batch_size=256)
EMBEDDING_BEAM = BeamSettings(batch_size=256)


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
