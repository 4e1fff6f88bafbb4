"""Enrichment: item descriptions, user profiles and their text embeddings.

One generator interface (:class:`~transforms.enrichment.types.Generator`), three implementations:

* :class:`~transforms.enrichment.openai_http.OpenAIChatGenerator`: any OpenAI-compatible endpoint;
* :class:`~transforms.enrichment.local_transformers.LocalTransformersGenerator`: a local model directory;
* :class:`~transforms.enrichment.extractive.ExtractiveGenerator`: the offline, deterministic default.

Each is built from a small frozen config (``build()``), which is what travels to Beam workers.
Nothing heavy is imported here: torch, transformers and sentence-transformers load when a model is built.
"""

from transforms.enrichment.embedding import DEFAULT_EMBEDDING_DIM, DEFAULT_EMBEDDING_MODEL, EmbedderConfig
from transforms.enrichment.extractive import EXTRACTIVE_MODEL, ExtractiveConfig, ExtractiveGenerator
from transforms.enrichment.inputs import InputLimits, build_item_tasks, build_user_tasks
from transforms.enrichment.local_transformers import LocalTransformersConfig, LocalTransformersGenerator
from transforms.enrichment.openai_http import (
    AuthenticationError,
    MissingApiKeyError,
    OpenAIChatConfig,
    OpenAIChatGenerator,
)
from transforms.enrichment.prompts import ITEM_PROMPT, PROMPTS, USER_PROMPT, parse_output, sanitize_untrusted
from transforms.enrichment.types import (
    EntityKind,
    FailureKind,
    GenerationOutcome,
    GenerationTask,
    Generator,
    GeneratorKind,
    ItemDescription,
    UserProfile,
)

GeneratorConfig = OpenAIChatConfig | LocalTransformersConfig | ExtractiveConfig
"""Any of the three generator configs; ``config.build()`` gives the generator."""

__all__ = [
    "DEFAULT_EMBEDDING_DIM",
    "DEFAULT_EMBEDDING_MODEL",
    "EXTRACTIVE_MODEL",
    "ITEM_PROMPT",
    "PROMPTS",
    "USER_PROMPT",
    "AuthenticationError",
    "EmbedderConfig",
    "EntityKind",
    "ExtractiveConfig",
    "ExtractiveGenerator",
    "FailureKind",
    "GenerationOutcome",
    "GenerationTask",
    "Generator",
    "GeneratorConfig",
    "GeneratorKind",
    "InputLimits",
    "ItemDescription",
    "LocalTransformersConfig",
    "LocalTransformersGenerator",
    "MissingApiKeyError",
    "OpenAIChatConfig",
    "OpenAIChatGenerator",
    "UserProfile",
    "build_item_tasks",
    "build_user_tasks",
    "parse_output",
    "sanitize_untrusted",
]
