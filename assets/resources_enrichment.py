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

import dagster as dg

from assets.resources import shared_fields
from pipelines.enrichment import BeamSettings
from transforms.enrichment import (
    EmbedderConfig,
    ExtractiveConfig,
    GeneratorConfig,
    LocalTransformersConfig,
    OpenAIChatConfig,
)


class GeneratorResource(dg.ConfigurableResource, abc.ABC):
    """Writes item descriptions and user profiles. Pick an implementation per deployment."""

    batch_size: int = 16
    runner: str = "DirectRunner"
    max_failure_share: float = 0.05

    @abc.abstractmethod
    def config(self) -> GeneratorConfig:
        """The generator config the Beam workers build their generator from."""

    def beam(self) -> BeamSettings:
        return BeamSettings(runner=self.runner, batch_size=self.batch_size)


class ExtractiveGeneratorResource(GeneratorResource):
    """The deterministic, offline default: text assembled from catalog fields, reviews and history."""

    batch_size: int = 256

    def config(self) -> GeneratorConfig:
        return ExtractiveConfig()


class OpenAIGeneratorResource(GeneratorResource):
    """Any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp server, hosted APIs)."""

    base_url: str
    model: str
    api_key_env: str | None = "RECFORGE_LLM_API_KEY"
    max_concurrency: int = 8
    requests_per_second: float = 10.0
    max_retries: int = 4
    timeout_s: float = 60.0
    max_tokens: int = 600
    input_usd_per_mtok: float = 0.0
    output_usd_per_mtok: float = 0.0

    def config(self) -> GeneratorConfig:
        return OpenAIChatConfig(**shared_fields(self, OpenAIChatConfig))


class LocalModelGeneratorResource(GeneratorResource):
    """A causal language model from a local transformers directory, on CPU or GPU."""

    model_dir: str
    model_name: str | None = None
    device: str = "cpu"
    generation_batch_size: int = 8
    max_new_tokens: int = 256

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

    model_path: str | None = None
    model_name: str | None = None
    device: str = "cpu"
    encode_batch_size: int = 64
    batch_size: int = 256
    runner: str = "DirectRunner"

    def config(self) -> EmbedderConfig:
        return EmbedderConfig(
            model_path=self.model_path, model_name=self.model_name, device=self.device, batch_size=self.encode_batch_size
        )

    def beam(self) -> BeamSettings:
        return BeamSettings(runner=self.runner, batch_size=self.batch_size)
