"""Typed Dagster resources for enrichment: a text generator and an embedder, each interchangeable.

An asset asks for ``generator: GeneratorResource`` and gets whichever implementation the deployment
configured: :class:`ExtractiveGeneratorResource` (the offline default), :class:`OpenAIGeneratorResource`
(any OpenAI-compatible endpoint) or :class:`LocalModelGeneratorResource` (a transformers directory).
Each resolves to a small frozen config (:meth:`GeneratorResource.config`) that Beam ships to its
workers; every implementation's generator returns the same outcome type. Nothing is read from the
environment until a run asks (the API key is read when the HTTP generator is built).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import dagster as dg

from assets.resources import shared_fields
from pipelines.enrichment import EMBEDDING_BEAM, EXTRACTIVE_BEAM, BeamSettings, GenerationRun
from transforms.enrichment import (
    EmbedderConfig,
    ExtractiveConfig,
    GeneratorConfig,
    LocalTransformersConfig,
    OpenAIChatConfig,
)


class GeneratorResource(dg.ConfigurableResource, abc.ABC):
    """Writes item descriptions and user profiles. Pick an implementation per deployment."""

    builds: ClassVar[tuple[type, ...]] = (BeamSettings, GenerationRun)
    batch_size: int = BeamSettings.batch_size
    runner: str = BeamSettings.runner
    max_failure_share: float = GenerationRun.max_failure_share

    @abc.abstractmethod
    def config(self) -> GeneratorConfig:
        """The generator config the Beam workers build their generator from."""

    def beam(self) -> BeamSettings:
        return BeamSettings(runner=self.runner, batch_size=self.batch_size)


class ExtractiveGeneratorResource(GeneratorResource):
    """The deterministic, offline default: text assembled from catalog fields, reviews and history."""

    builds: ClassVar[tuple[type, ...]] = (BeamSettings, GenerationRun, ExtractiveConfig)
    own_fields: ClassVar[tuple[str, ...]] = ("batch_size",)  # EXTRACTIVE_BEAM's, not BeamSettings' default
    batch_size: int = EXTRACTIVE_BEAM.batch_size

    def config(self) -> GeneratorConfig:
        return ExtractiveConfig()


class OpenAIGeneratorResource(GeneratorResource):
    """Any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp server, hosted APIs)."""

    builds: ClassVar[tuple[type, ...]] = (BeamSettings, GenerationRun, OpenAIChatConfig)
    base_url: str
    model: str
    api_key_env: str | None = OpenAIChatConfig.api_key_env
    max_concurrency: int = OpenAIChatConfig.max_concurrency
    requests_per_second: float = OpenAIChatConfig.requests_per_second
    max_retries: int = OpenAIChatConfig.max_retries
    timeout_s: float = OpenAIChatConfig.timeout_s
    max_tokens: int = OpenAIChatConfig.max_tokens
    input_usd_per_mtok: float = OpenAIChatConfig.input_usd_per_mtok
    output_usd_per_mtok: float = OpenAIChatConfig.output_usd_per_mtok

    def config(self) -> GeneratorConfig:
        return OpenAIChatConfig(**shared_fields(self, OpenAIChatConfig))


class LocalModelGeneratorResource(GeneratorResource):
    """A causal language model from a local transformers directory, on CPU or GPU."""

    # BeamSettings last: its batch_size is the one this resource's batch_size sets.
    builds: ClassVar[tuple[type, ...]] = (LocalTransformersConfig, GenerationRun, BeamSettings)
    own_fields: ClassVar[tuple[str, ...]] = ("generation_batch_size",)  # LocalTransformersConfig.batch_size
    model_dir: str
    model_name: str | None = LocalTransformersConfig.model_name
    device: str = LocalTransformersConfig.device
    generation_batch_size: int = LocalTransformersConfig.batch_size
    max_new_tokens: int = LocalTransformersConfig.max_new_tokens

    def config(self) -> GeneratorConfig:
        return LocalTransformersConfig(
            model_dir=self.model_dir,
            model_name=self.model_name,
            device=self.device,
            batch_size=self.generation_batch_size,
            max_new_tokens=self.max_new_tokens,
        )


class EmbedderResource(dg.ConfigurableResource):
    """Sentence embeddings: the bundled all-MiniLM-L6-v2 by default, or any local model directory."""

    builds: ClassVar[tuple[type, ...]] = (EmbedderConfig, BeamSettings)
    # The Beam batch (EMBEDDING_BEAM's) and the model's forward-pass batch (EmbedderConfig.batch_size).
    own_fields: ClassVar[tuple[str, ...]] = ("batch_size", "encode_batch_size")
    model_path: str | None = EmbedderConfig.model_path
    model_name: str | None = EmbedderConfig.model_name
    device: str = EmbedderConfig.device
    encode_batch_size: int = EmbedderConfig.batch_size
    batch_size: int = EMBEDDING_BEAM.batch_size
    runner: str = EMBEDDING_BEAM.runner

    def config(self) -> EmbedderConfig:
        return EmbedderConfig(
            model_path=self.model_path, model_name=self.model_name, device=self.device, batch_size=self.encode_batch_size
        )

    def beam(self) -> BeamSettings:
        return BeamSettings(runner=self.runner, batch_size=self.batch_size)
