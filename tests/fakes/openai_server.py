"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions protocol, for tests.

It answers ``POST /v1/chat/completions`` like vLLM or a hosted API would: a JSON body with
``choices[0].message.content`` and ``usage``. What it answers is scripted per entity and attempt, so
a test can make one item hit a 429 (with ``Retry-After``), a 500, a slow response (client timeout),
a malformed body, an off-schema answer or a refusal, and the rest answer well. Every request is
recorded (arrival time, entity id, behaviour, headers, body) so tests can assert what the client did.

The entity is read from the prompt's facts JSON (``"item_id":"..."`` / ``"user_id":"..."``); a
well-behaved answer echoes it so tests can check that each row came from its own request.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Behavior(StrEnum):
    OK = "ok"
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    SLOW = "slow"
    MALFORMED_BODY = "malformed_body"
    OFF_SCHEMA = "off_schema"
    REFUSAL = "refusal"
    ECHO_KEY_400 = "echo_key_400"  # a 400 whose message quotes the caller's API key, as some APIs do


_ENTITY = re.compile(r'"(item_id|user_id)":"([^"]+)"')


@dataclass
class RecordedRequest:
    at: float
    entity_id: str | None
    behavior: Behavior
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ServerScript:
    """What to answer. ``per_entity[id]`` lists behaviours for that entity's 1st, 2nd, ... request;
    after the list runs out (or for unlisted entities) ``default`` applies."""

    per_entity: dict[str, list[Behavior]] = field(default_factory=dict)
    default: Behavior = Behavior.OK
    retry_after: str | None = "0.2"
    slow_seconds: float = 1.5
    latency_s: float = 0.0  # every answer waits this long (to observe concurrency)
    api_key: str | None = None
    echo_key: bool = False  # a 401 quotes the key it refused ("Incorrect API key provided: sk-...")

    def choose(self, entity_id: str | None, attempt: int) -> Behavior:
        plan = self.per_entity.get(entity_id or "", [])
        return plan[attempt] if attempt < len(plan) else self.default


def good_answer(entity: str, entity_id: str) -> dict[str, Any]:
    if entity == "item_id":
        return {
            "description": f"Item {entity_id}: a well-made product that reviewers praise for its quality.",
            "highlights": ["well made", f"id {entity_id}"],
        }
    return {
        "profile": f"User {entity_id} likes outdoor gear and prefers mid-range prices.",
        "likes": ["outdoor gear"],
        "dislikes": [],
        "intents": ["looking for a tent"],
    }


class FakeOpenAIServer:
    """Start with :func:`serve`; ``base_url`` ends in ``/v1``."""

    def __init__(self, script: ServerScript) -> None:
        self.script = script
        self.requests: list[RecordedRequest] = []
        self._attempts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def count(self, behavior: Behavior | None = None, entity_id: str | None = None) -> int:
        with self._lock:
            return sum(
                1 for r in self.requests
                if (behavior is None or r.behavior == behavior) and (entity_id is None or r.entity_id == entity_id)
            )

    def _record(self, entity_id: str | None, headers: dict[str, str], body: dict[str, Any]) -> Behavior:
        with self._lock:
            key = entity_id or ""
            behavior = self.script.choose(entity_id, self._attempts[key])
            self._attempts[key] += 1
            self.requests.append(RecordedRequest(time.monotonic(), entity_id, behavior, headers, body))
            return behavior

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return None

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): exactly what a slow server sees

            def do_POST(self) -> None:
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server.script.latency_s:
                        time.sleep(server.script.latency_s)
                    self._answer()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if not self.path.endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                body = json.loads(raw)
                prompt = "\n".join(m.get("content", "") for m in body.get("messages", []))
                match = _ENTITY.search(prompt)
                entity, entity_id = (match.group(1), match.group(2)) if match else ("item_id", None)
                headers = {k.lower(): v for k, v in self.headers.items()}
                key = server.script.api_key
                sent_key = headers.get("authorization", "").removeprefix("Bearer ")
                if key is not None and headers.get("authorization") != f"Bearer {key}":
                    server._record(entity_id, headers, body)
                    message = f"Incorrect API key provided: {sent_key}" if server.script.echo_key else "invalid api key"
                    self._send(401, json.dumps({"error": {"message": message}}).encode())
                    return
                behavior = server._record(entity_id, headers, body)
                if behavior is Behavior.ECHO_KEY_400:
                    message = f"bad request from key {sent_key}"
                    self._send(400, json.dumps({"error": {"message": message}}).encode())
                    return
                if behavior is Behavior.RATE_LIMIT:
                    extra = {"Retry-After": server.script.retry_after} if server.script.retry_after else {}
                    self._send(429, b'{"error": {"message": "rate limited"}}', extra)
                    return
                if behavior is Behavior.SERVER_ERROR:
                    self._send(500, b'{"error": {"message": "internal error"}}')
                    return
                if behavior is Behavior.SLOW:
                    time.sleep(server.script.slow_seconds)
                if behavior is Behavior.MALFORMED_BODY:
                    self._send(200, b'{"id": "chatcmpl-x", "choices": [{"message": ')
                    return
                if behavior is Behavior.OFF_SCHEMA:
                    content = "Sure! This is a lovely product that everyone enjoys."
                elif behavior is Behavior.REFUSAL:
                    content = "I'm sorry, but I can't help with that request."
                else:
                    content = json.dumps(good_answer(entity, entity_id or "unknown"))
                doc = {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {
                        "prompt_tokens": len(prompt.split()),
                        "completion_tokens": len(content.split()),
                        "total_tokens": len(prompt.split()) + len(content.split()),
                    },
                }
                self._send(200, json.dumps(doc).encode())

        return Handler


@contextmanager
def serve(script: ServerScript | None = None) -> Iterator[FakeOpenAIServer]:
    """Run a :class:`FakeOpenAIServer` on a free loopback port for the duration of the block."""
    server = FakeOpenAIServer(script or ServerScript())
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()

