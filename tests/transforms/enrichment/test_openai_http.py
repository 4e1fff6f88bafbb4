"""The OpenAI-compatible client against a real loopback HTTP server that misbehaves on purpose."""

from __future__ import annotations

import json

import pytest

from tests.fakes.openai_server import Behavior, ServerScript, serve
from tests.transforms.enrichment.data import CUTOFF, items, reviews
from transforms.enrichment.inputs import build_item_tasks
from transforms.enrichment.openai_http import (
    AuthenticationError,
    MissingApiKeyError,
    OpenAIChatConfig,
    RateLimiter,
    retry_after_seconds,
)
from transforms.enrichment.types import FailureKind, GeneratorKind

KEY_ENV = "RECFORGE_TEST_LLM_KEY"


@pytest.fixture()
def tasks():  # type: ignore[no-untyped-def]
    return build_item_tasks(items(), reviews(), CUTOFF)  # i1..i4


def _config(base_url: str, **overrides: object) -> OpenAIChatConfig:
    settings: dict[str, object] = dict(
        base_url=base_url, model="test-model", api_key_env=None, max_retries=3, backoff_initial_s=0.01,
        backoff_max_s=0.05, timeout_s=2.0, requests_per_second=0, input_usd_per_mtok=2.0, output_usd_per_mtok=8.0,
    )
    settings.update(overrides)
    return OpenAIChatConfig(**settings)  # type: ignore[arg-type]


def test_answers_well_with_usage_cost_key_and_json_mode(tasks, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(KEY_ENV, "sk-test")
    with serve(ServerScript(api_key="sk-test")) as server:
        gen = _config(server.base_url, api_key_env=KEY_ENV).build()
        outcomes = gen.generate(tasks)
    assert gen.kind is GeneratorKind.OPENAI_HTTP and gen.model == "test-model"
    assert [o.entity_id for o in outcomes] == ["i1", "i2", "i3", "i4"]
    assert all(o.ok and o.attempts == 1 for o in outcomes)
    assert outcomes[0].output is not None and "i1" in outcomes[0].output["description"]  # each answer is its own
    assert server.count() == 4
    (request,) = [r for r in server.requests if r.entity_id == "i1"]  # requests arrive in any order; i1 has reviews
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["response_format"] == {"type": "json_object"} and request.body["model"] == "test-model"
    assert request.body["messages"][0]["role"] == "system" and "<review" in request.body["messages"][1]["content"]
    o = outcomes[0]
    assert o.prompt_tokens > 100 and o.completion_tokens > 5
    assert o.cost_usd == pytest.approx((o.prompt_tokens * 2.0 + o.completion_tokens * 8.0) / 1e6)


def test_429_is_retried_after_the_retry_after_delay(tasks) -> None:  # type: ignore[no-untyped-def]
    script = ServerScript(per_entity={"i1": [Behavior.RATE_LIMIT, Behavior.RATE_LIMIT]}, retry_after="0.3")
    with serve(script) as server:
        outcomes = _config(server.base_url).build().generate(tasks[:2])
    assert all(o.ok for o in outcomes) and outcomes[0].attempts == 3
    times = [r.at for r in server.requests if r.entity_id == "i1"]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.29 and times[2] - times[1] >= 0.29  # honoured, although backoff is 0.01 s


def test_5xx_is_retried_with_backoff_then_recorded_as_failure(tasks) -> None:  # type: ignore[no-untyped-def]
    script = ServerScript(per_entity={"i1": [Behavior.SERVER_ERROR] * 2, "i2": [Behavior.SERVER_ERROR] * 10})
    with serve(script) as server:
        ok, failed = _config(server.base_url, max_retries=3).build().generate(tasks[:2])
    assert ok.ok and ok.attempts == 3
    assert not failed.ok and failed.failure_kind is FailureKind.HTTP_STATUS and failed.attempts == 4
    assert "HTTP 500" in (failed.error or "") and server.count(entity_id="i2") == 4


def test_slow_answers_time_out_and_are_retried(tasks) -> None:  # type: ignore[no-untyped-def]
    script = ServerScript(per_entity={"i1": [Behavior.SLOW], "i2": [Behavior.SLOW] * 5}, slow_seconds=1.5)
    with serve(script) as server:
        ok, failed = _config(server.base_url, timeout_s=0.5, max_retries=1).build().generate(tasks[:2])
    assert ok.ok and ok.attempts == 2
    assert failed.failure_kind is FailureKind.TIMEOUT and failed.attempts == 2


def test_malformed_bodies_are_retried_then_failed(tasks) -> None:  # type: ignore[no-untyped-def]
    script = ServerScript(per_entity={"i1": [Behavior.MALFORMED_BODY], "i2": [Behavior.MALFORMED_BODY] * 9})
    with serve(script) as server:
        ok, failed = _config(server.base_url, max_retries=2).build().generate(tasks[:2])
    assert ok.ok and ok.attempts == 2
    assert failed.failure_kind is FailureKind.MALFORMED_RESPONSE and failed.attempts == 3


@pytest.mark.parametrize(("behavior", "kind"), [(Behavior.OFF_SCHEMA, FailureKind.INVALID_OUTPUT), (Behavior.REFUSAL, FailureKind.REFUSAL)])
def test_off_schema_answers_and_refusals_are_failures_with_their_tokens(tasks, behavior, kind) -> None:  # type: ignore[no-untyped-def]
    with serve(ServerScript(default=behavior)) as server:
        (outcome,) = _config(server.base_url, max_invalid_retries=1).build().generate(tasks[:1])
    assert not outcome.ok and outcome.output is None and outcome.failure_kind is kind
    assert outcome.attempts == 2 and server.count() == 2  # asked again once, then given up
    assert outcome.prompt_tokens > 0 and outcome.cost_usd > 0  # failed calls still cost money


def test_client_errors_are_not_retried_and_an_echoed_key_is_redacted(tasks, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    key = "sk-proj-A1b2C3d4E5f6G7h8"
    monkeypatch.setenv(KEY_ENV, key)
    with serve(ServerScript(per_entity={"i1": [Behavior.ECHO_KEY_400]})) as server:
        (outcome,) = _config(server.base_url, api_key_env=KEY_ENV).build().generate(tasks[:1])
    assert outcome.failure_kind is FailureKind.HTTP_STATUS and "400" in (outcome.error or "")
    assert key not in (outcome.error or "") and "[REDACTED]" in (outcome.error or "")
    assert server.count() == 1


def test_an_authentication_refusal_stops_the_batch_without_sending_the_rest(tasks, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A 401 that echoes the key: one request is sent, the error names the status and not the key."""
    key = "sk-wrong-0123456789abcdef"
    monkeypatch.setenv(KEY_ENV, key)
    with serve(ServerScript(api_key="sk-right", echo_key=True)) as server:
        gen = _config(server.base_url, api_key_env=KEY_ENV, max_concurrency=1).build()
        with pytest.raises(AuthenticationError, match="401") as caught:
            gen.generate(tasks)
    assert key not in str(caught.value) and KEY_ENV in str(caught.value)
    assert server.count() == 1  # not one request after the refusal


def test_api_key_is_read_when_built_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    config = _config("http://127.0.0.1:9/v1", api_key_env=KEY_ENV)
    with pytest.raises(MissingApiKeyError, match=KEY_ENV):
        config.build()
    monkeypatch.setenv(KEY_ENV, "later")
    assert config.build().headers["Authorization"] == "Bearer later"


def test_concurrency_and_rate_limits_hold(tasks) -> None:  # type: ignore[no-untyped-def]
    many = tasks * 3  # 12 requests
    with serve(ServerScript(latency_s=0.15)) as server:
        _config(server.base_url, max_concurrency=2).build().generate(many)
    assert server.max_in_flight == 2
    with serve(ServerScript()) as server:
        _config(server.base_url, max_concurrency=8, requests_per_second=10).build().generate(many)
    starts = sorted(r.at for r in server.requests)
    # Client-side starts are exactly 0.1 s apart (see the schedule test below); arrivals at the server
    # carry connection set-up and scheduling jitter, so only check the limiter is in the request path:
    # unthrottled, 12 loopback requests arrive within a few milliseconds.
    assert starts[-1] - starts[0] >= 0.6


def test_rate_limiter_books_one_slot_per_interval() -> None:
    limiter = RateLimiter(20.0)
    delays = [limiter.reserve(now=100.0) for _ in range(12)]  # a burst of 12 at the same instant
    assert delays == pytest.approx([k / 20 for k in range(12)])
    assert limiter.reserve(now=100.0 + 11 / 20 + 0.01) == pytest.approx(0.04)  # still behind the burst
    assert limiter.reserve(now=200.0) == 0.0  # idle: no debt, no banked burst either
    assert limiter.reserve(now=200.0) == pytest.approx(1 / 20)


def test_retry_after_parses_seconds_and_dates() -> None:
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_request_body_is_plain_json_of_the_prompt(tasks) -> None:  # type: ignore[no-untyped-def]
    with serve() as server:
        _config(server.base_url).build().generate(tasks[:1])
    facts_line = server.requests[0].body["messages"][1]["content"].split("\n")[3]
    assert json.loads(facts_line)["item_id"] == "i1"
