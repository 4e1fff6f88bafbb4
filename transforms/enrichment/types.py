"""The shared vocabulary of enrichment: entities, generator kinds, tasks, outcomes and output schemas.

Every generator (OpenAI-compatible HTTP, local transformers, extractive) takes :class:`GenerationTask`
objects and returns one :class:`GenerationOutcome` per task, whose ``output`` (when it succeeded) is a
validated :class:`ItemDescription` or :class:`UserProfile` dumped to a dict. The schemas bound every
field's length, so a runaway answer is a failure, not a row.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class EntityKind(StrEnum):
    """What is being described."""

    ITEM = "item"
    USER = "user"


class GeneratorKind(StrEnum):
    """Which implementation wrote a row (stored on every row as provenance)."""

    OPENAI_HTTP = "openai_http"
    LOCAL_TRANSFORMERS = "local_transformers"
    EXTRACTIVE = "extractive"


class FailureKind(StrEnum):
    """Why a task failed after its retries."""

    HTTP_STATUS = "http_status"  # a non-retryable status, or retryable ones until retries ran out
    TIMEOUT = "timeout"
    TRANSPORT = "transport"  # connection refused / reset
    MALFORMED_RESPONSE = "malformed_response"  # the HTTP body is not a chat-completions JSON document
    INVALID_OUTPUT = "invalid_output"  # the model's answer is not JSON of the output schema
    REFUSAL = "refusal"  # the model declined instead of answering
    INPUT = "input"  # the task's own input could not be used


ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class ItemDescription(BaseModel):
    """A generated item description: one paragraph plus short highlights."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    description: str = Field(min_length=20, max_length=1500)
    highlights: list[ShortText] = Field(default_factory=list, max_length=8)


class UserProfile(BaseModel):
    """A generated user profile: a paragraph plus likes, dislikes and current intents."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    profile: str = Field(min_length=20, max_length=1500)
    likes: list[ShortText] = Field(default_factory=list, max_length=10)
    dislikes: list[ShortText] = Field(default_factory=list, max_length=10)
    intents: list[ShortText] = Field(default_factory=list, max_length=10)


OUTPUT_SCHEMAS: dict[EntityKind, type[BaseModel]] = {
    EntityKind.ITEM: ItemDescription,
    EntityKind.USER: UserProfile,
}

TEXT_FIELD: dict[EntityKind, str] = {EntityKind.ITEM: "description", EntityKind.USER: "profile"}
"""The output field that is embedded downstream."""


@dataclass(frozen=True)
class GenerationTask:
    """One entity to describe.

    Attributes:
        entity: Item or user.
        entity_id: External id (``i0000137`` / ``u0000042``).
        payload: The grounded input (see :mod:`transforms.enrichment.inputs`), JSON-serialisable.
        input_hash: Content hash of ``payload`` (:func:`content_hash`).
        cutoff: The run's training cut-off (user profiles), stored on the row but deliberately not
            part of the payload: a user with no activity between two cut-offs keeps the same input
            and is not regenerated just because the cut-off moved.
    """

    entity: EntityKind
    entity_id: str
    payload: Mapping[str, Any]
    input_hash: str
    cutoff: dt.datetime | None = None


@dataclass(frozen=True)
class GenerationOutcome:
    """What a generator made of one task: a validated output or a failure, plus usage."""

    entity_id: str
    output: dict[str, Any] | None
    failure_kind: FailureKind | None = None
    error: str | None = None
    attempts: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.output is not None


@runtime_checkable
class Generator(Protocol):
    """The one generator interface. Implementations differ in how, never in what they return."""

    kind: GeneratorKind
    model: str

    def generate(self, tasks: list[GenerationTask]) -> list[GenerationOutcome]:
        """One outcome per task, in task order. Never raises for a single task's failure."""
        ...

    def close(self) -> None:
        """Release connections or model memory."""
        ...


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no spaces: the byte form that content hashes are taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(value: object) -> str:
    """SHA-256 (hex) of :func:`canonical_json` of ``value``, or of a string as UTF-8."""
    text = value if isinstance(value, str) else canonical_json(value)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(input_hash: str, prompt_version: str, model: str, settings: str = "") -> str:
    """The cache key of an output: the same input, prompt, model and settings give the same answer.

    ``settings`` is the generator config's ``fingerprint``: its kind and a hash of every setting that
    changes the output (endpoint, sampling, limits, and for a local model the directory's content).
    """
    parts = [input_hash, prompt_version, model] + ([settings] if settings else [])
    return content_hash("\x1f".join(parts))


@functools.lru_cache(maxsize=64)
def _directory_digest(path: str, listing: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    root = Path(path)
    for rel, size, _mtime in listing:
        digest.update(f"{rel}\x1f{size}\x1f".encode())
        with open(root / rel, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def directory_fingerprint(path: str | Path) -> str:
    """A hash of every file under ``path`` (relative names and contents): a model directory's identity.

    Two checkpoints that share a directory name (``checkpoint-500``, ``model``) get different
    fingerprints unless their files are byte-identical. The digest is memoised per process on the
    files' names, sizes and modification times, so weights are read once per process.

    Raises:
        FileNotFoundError: ``path`` is not a directory.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"model directory {root} does not exist")
    listing = tuple(
        (p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".cache" not in p.relative_to(root).parts
    )
    return _directory_digest(str(root.resolve()), listing)
