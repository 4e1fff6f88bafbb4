"""A client for any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp server, hosted APIs).

One batch of tasks runs concurrently on one event loop: at most ``max_concurrency`` requests in
flight and at most ``requests_per_second`` started per second. Each request is retried with
exponential backoff and jitter on 429 (honouring ``Retry-After``), 5xx, timeouts, dropped
connections and malformed response bodies; an answer that is not valid JSON of the output schema (or
a refusal) is re-asked ``max_invalid_retries`` times and then recorded as a failure. Usage reported by
the server (``usage.prompt_tokens`` / ``completion_tokens``) is summed over every attempt and priced.

The API key is read from the environment variable named in the config when the generator is built,
never at import. A 401 or 403 stops the batch at once (:class:`AuthenticationError`): no request is
sent after it. Every error text is redacted (:func:`transforms.enrichment.redact.redact_secrets`): the
key itself and anything shaped like a key never reach a table or a log.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from transforms.enrichment.prompts import PROMPTS, OutputError, parse_output
from transforms.enrichment.redact import redact_secrets
from transforms.enrichment.types import (
    FailureKind,
    GenerationOutcome,
    GenerationTask,
    GeneratorKind,
    content_hash,
)

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class MissingApiKeyError(RuntimeError):
    """The configured API-key environment variable is not set."""


class AuthenticationError(RuntimeError):
    """The endpoint refused the credentials (HTTP 401 or 403): the run stops at the first one.

    Every other request would be refused the same way, so none is sent after it; the message names
    the status and the endpoint, with any key it echoed redacted.
    """


AUTH_STATUS = frozenset({401, 403})


@dataclass(frozen=True)
class OpenAIChatConfig:
    """Settings of the HTTP generator.

    Attributes:
        base_url: The API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
        model: Model name sent with every request and stored on every row.
        api_key_env: Environment variable holding the API key; ``None`` for servers without auth.
        max_concurrency: Requests in flight at once.
        requests_per_second: Start rate limit (a token bucket of capacity 1).
        max_retries: Retries after the first attempt for transient failures.
        max_invalid_retries: Re-asks after an off-schema answer or a refusal.
        backoff_initial_s: First backoff; doubles per retry, with jitter, capped at ``backoff_max_s``.
        retry_after_cap_s: A server's ``Retry-After`` is honoured up to this many seconds.
        timeout_s: Per-request timeout (connect, read and write).
        max_tokens: Completion limit sent with the request.
        temperature: Sampling temperature (0 for reproducible answers where the server allows it).
        json_mode: Send ``response_format={"type": "json_object"}``.
        input_usd_per_mtok: Price of a million prompt tokens.
        output_usd_per_mtok: Price of a million completion tokens.
        seed: Seed of the jitter and of the request's ``seed`` field.
    """

    base_url: str
    model: str
    api_key_env: str | None = "RECFORGE_LLM_API_KEY"
    max_concurrency: int = 8
    requests_per_second: float = 10.0
    max_retries: int = 4
    max_invalid_retries: int = 1
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_cap_s: float = 120.0
    timeout_s: float = 60.0
    max_tokens: int = 600
    temperature: float = 0.0
    json_mode: bool = True
    input_usd_per_mtok: float = 0.0
    output_usd_per_mtok: float = 0.0
    seed: int = 0

    kind: ClassVar[GeneratorKind] = GeneratorKind.OPENAI_HTTP

    @property
    def stored_model(self) -> str:
        """The model name written on rows (and part of the cache key)."""
        return self.model

    @property
    def fingerprint(self) -> str:
        """Kind and a hash of every setting that changes an answer (part of the cache key)."""
        return f"{self.kind.value}:" + content_hash(
            {
                "base_url": self.base_url.rstrip("/"),
                "model": self.model,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "json_mode": self.json_mode,
                "seed": self.seed,
                "max_invalid_retries": self.max_invalid_retries,
            }
        )[:24]

    def build(self) -> OpenAIChatGenerator:
        return OpenAIChatGenerator(self)


class RateLimiter:
    """Spaces request starts at least ``1 / rate`` seconds apart."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    def reserve(self, now: float) -> float:
        """Book the next start slot at or after ``now``; returns how long to wait for it."""
        start = max(now, self.next_at)
        self.next_at = start + self.interval
        return start - now

    async def wait(self) -> None:
        if self.interval == 0.0:
            return
        async with self.lock:
            delay = self.reserve(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)


class _Transient(Exception):
    def __init__(self, kind: FailureKind, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIChatGenerator:
    """The HTTP implementation of :class:`transforms.enrichment.types.Generator`."""

    kind = GeneratorKind.OPENAI_HTTP

    def __init__(self, config: OpenAIChatConfig) -> None:
        self.config = config
        self.model = config.model
        self.headers = {"Content-Type": "application/json"}
        self._secret: str | None = None
        self._auth_failure: str | None = None
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise MissingApiKeyError(
                    f"the LLM API key is read from ${config.api_key_env}, which is not set "
                    "(set it, or configure api_key_env=None for a server without authentication)"
                )
            self.headers["Authorization"] = f"Bearer {key}"
            self._secret = key
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self._rng = random.Random(config.seed)
        self.requests_sent = 0

    def generate(self, tasks: list[GenerationTask]) -> list[GenerationOutcome]:
        if not tasks:
            return []
        return asyncio.run(self._generate(tasks))

    def close(self) -> None:
        return None

    async def _generate(self, tasks: list[GenerationTask]) -> list[GenerationOutcome]:
        cfg = self.config
        limits = httpx.Limits(max_connections=cfg.max_concurrency, max_keepalive_connections=cfg.max_concurrency)
        semaphore = asyncio.Semaphore(cfg.max_concurrency)
        limiter = RateLimiter(cfg.requests_per_second)
        async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s), limits=limits, headers=self.headers) as client:
            jobs = [asyncio.ensure_future(self._one(client, semaphore, limiter, t)) for t in tasks]
            try:
                return list(await asyncio.gather(*jobs))
            except _Unauthorized as exc:
                for job in jobs:  # the queued requests are never sent
                    job.cancel()
                await asyncio.gather(*jobs, return_exceptions=True)
                advice = f"check ${cfg.api_key_env}" if cfg.api_key_env else "set api_key_env to the variable that holds the API key"
                raise AuthenticationError(
                    f"{self.url} refused the credentials ({exc}); the run stopped at the first refusal "
                    f"without sending the other requests: {advice}"
                ) from None

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        cfg = self.config
        base = min(cfg.backoff_max_s, cfg.backoff_initial_s * (2**retry))
        delay = base / 2 + self._rng.uniform(0, base / 2)  # "equal jitter": never zero, never synchronized
        if retry_after is not None:
            delay = max(delay, min(retry_after, cfg.retry_after_cap_s))
        return delay

    async def _one(
        self, client: httpx.AsyncClient, semaphore: asyncio.Semaphore, limiter: RateLimiter, task: GenerationTask
    ) -> GenerationOutcome:
        cfg = self.config
        body: dict[str, Any] = {
            "model": cfg.model,
            "messages": PROMPTS[task.entity].messages(task.payload),
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens,
            "seed": cfg.seed,
        }
        if cfg.json_mode:
            body["response_format"] = {"type": "json_object"}
        prompt_tokens = completion_tokens = attempts = 0
        transient_retries = invalid_retries = 0
        while True:
            attempts += 1
            try:
                async with semaphore:
                    await limiter.wait()
                    if self._auth_failure is not None:
                        raise _Unauthorized(self._auth_failure)
                    content, usage = await self._post(client, body)
                prompt_tokens += usage[0]
                completion_tokens += usage[1]
                output = parse_output(task.entity, content)
                return self._outcome(task, output, None, None, attempts, prompt_tokens, completion_tokens)
            except _Transient as exc:
                if transient_retries >= cfg.max_retries:
                    return self._outcome(task, None, exc.kind, f"{exc} (after {attempts} attempts)", attempts, prompt_tokens, completion_tokens)
                await asyncio.sleep(self._backoff(transient_retries, exc.retry_after))
                transient_retries += 1
            except OutputError as exc:
                if invalid_retries >= cfg.max_invalid_retries:
                    return self._outcome(task, None, exc.kind, str(exc), attempts, prompt_tokens, completion_tokens)
                invalid_retries += 1
            except _Permanent as exc:
                return self._outcome(task, None, FailureKind.HTTP_STATUS, str(exc), attempts, prompt_tokens, completion_tokens)

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[str, tuple[int, int]]:
        self.requests_sent += 1
        try:
            response = await client.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            raise _Transient(FailureKind.TIMEOUT, f"request timed out after {self.config.timeout_s}s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Transient(FailureKind.TRANSPORT, f"transport error: {type(exc).__name__}: {exc}") from exc
        if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
            raise _Transient(
                FailureKind.HTTP_STATUS,
                f"HTTP {response.status_code}: {response.text[:200]!r}",
                retry_after_seconds(response.headers.get("retry-after")),
            )
        if response.status_code in AUTH_STATUS:
            self._auth_failure = self._redact(f"HTTP {response.status_code}: {response.text[:300]!r}")
            raise _Unauthorized(self._auth_failure)
        if response.status_code >= 400:
            raise _Permanent(f"HTTP {response.status_code}: {response.text[:300]!r}")
        try:
            doc = response.json()
            content = doc["choices"][0]["message"]["content"]
            usage = doc.get("usage") or {}
            tokens = (int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _Transient(FailureKind.MALFORMED_RESPONSE, f"malformed chat-completions body: {response.text[:200]!r}") from exc
        if not isinstance(content, str):
            raise _Transient(FailureKind.MALFORMED_RESPONSE, f"message content is not text: {content!r:.200}")
        return content, tokens

    def _outcome(
        self,
        task: GenerationTask,
        output: dict[str, Any] | None,
        kind: FailureKind | None,
        error: str | None,
        attempts: int,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> GenerationOutcome:
        error = self._redact(error)
        cost = (prompt_tokens * self.config.input_usd_per_mtok + completion_tokens * self.config.output_usd_per_mtok) / 1e6
        return GenerationOutcome(task.entity_id, output, kind, error, attempts, prompt_tokens, completion_tokens, cost)


    def _redact(self, text: str | None) -> str | None:
        return redact_secrets(text, [self._secret])


class _Permanent(Exception):
    """A response that retrying cannot fix (400, 404, 422, ...)."""


class _Unauthorized(Exception):
    """HTTP 401 or 403: the credentials are refused, for this request and every other."""
