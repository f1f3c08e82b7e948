"""A misbehaving OpenAI-compatible server for tests and benchmarks.

A real HTTP server (stdlib `ThreadingHTTPServer`, one thread per connection)
on 127.0.0.1 that the pipeline reaches through its production path (`openai`
client + `instructor`). It implements `POST /v1/chat/completions` and
`GET /v1/models`.

Good answers are schema-driven: the server reads the JSON Schema instructor
sends (`tools[0].function.parameters` in TOOLS mode, or the `json_schema` in
the system message in JSON mode) and answers with a minimal valid instance
(first enum/const value, required properties only, `[]`/`minItems` items for
arrays, 0 / "" / false otherwise, following `$ref`/`$defs`/`anyOf`), with
`usage` token counts. So it answers validly whatever the prompts are. A test
that needs a particular valid answer scripts `Fault("good", answer={...})`.

Faults are scripted per request, first in first out; when the queue is empty
every request gets a good answer::

    with FakeOpenAI(latency=0.0) as server:
        server.script(["429", "500", "schema_violation"])       # next three requests
        server.script(["hang"], match="Budget hearing")           # next request whose messages contain this text
        server.always("503", match="Flaky article")              # every such request until clear()
        server.always(Fault("good", answer={"o1": "media"}), match="type of each")  # a chosen valid answer
        server.hold_until(in_flight=4, quiet_s=5.0)              # hold the next requests until 4 are in flight at once
        endpoint = server.endpoint_config(api_key="sk-test-...", timeout_s=1.0)
        ...
        server.requests_count, server.max_in_flight, server.served, server.faults_injected

Fault kinds (`FAULT_KINDS`): "400", "401" (`echo_key=True`: the error message
quotes the API key the request carried, as real servers do), "500", "503", "429" (with `Retry-After`), "hang"
(no answer for `hang_s` seconds, longer than the client timeout), "drop"
(connection closed without a response), "invalid_body" (HTTP 200 whose body
is not JSON), "invalid_json" (tool-call arguments that are not JSON),
"schema_violation" (JSON of the wrong shape), "length" (truncated arguments,
`finish_reason: "length"`), "not_in_article" (an option that does not exist:
an enum value outside the enum, or for free-text fields a sentence that is
not in the article), and "good". Use `Fault(kind, retry_after=..., hang_s=..., echo_key=...)`
for parameters.

Requests in flight without timing assumptions: `hold_until(in_flight=K, quiet_s=T)` holds
every request unanswered until K requests are in flight at once (`gate_opened == "reached"`)
or no new request has arrived for T seconds (`gate_opened == "quiet"`); then the gate opens
for good. Holding K+1 shows that a limit of K is reached and never exceeded: with a
correct limit the gate opens by quiet with exactly K held, with a broken one K+1 arrive.

Standalone, for benchmarks::

    python -m tests.support.fake_openai --port 8099 --latency 1.0

The server never logs requests and never echoes request headers (so an API
key sent to it cannot leak through it), except in a fault built with
`echo_key=True`, which plays the usual real leak: a 401/400 body quoting the key.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS = (
    "400",
    "401",
    "500",
    "503",
    "429",
    "hang",
    "drop",
    "invalid_body",
    "invalid_json",
    "schema_violation",
    "length",
    "not_in_article",
    "good",
)

NOT_IN_ARTICLE_TEXT = "The minister announced that the moon is made of cheese."


@dataclass(frozen=True)
class Fault:
    """One scripted answer. `retry_after` is for "429" (seconds, sent as `Retry-After`);
    `hang_s` is for "hang" (default: the server's `hang_s`); `echo_key` for "400" and "401";
    `answer` for "good"."""

    kind: str
    retry_after: float = 1.0
    hang_s: float | None = None
    echo_key: bool = False  # "400"/"401": the error message quotes the request's API key
    answer: dict[str, Any] | None = None  # "good": answer exactly this (e.g. a chosen option) instead of the minimal instance

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULT_KINDS)}")


def as_fault(fault: str | Fault) -> Fault:
    return fault if isinstance(fault, Fault) else Fault(str(fault))


# --------------------------------------------------------------------------- schema-driven answers


class _Builder:
    """Minimal instances of a JSON Schema; optionally with one deliberate 'not in the article' value."""

    def __init__(self, root: dict[str, Any], *, corrupt: bool = False) -> None:
        self.root = root
        self.corrupt_pending = corrupt

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 50:
            ref = schema["$ref"]
            target: Any = self.root
            if not ref.startswith("#"):
                return {}
            for part in ref.lstrip("#/").split("/"):
                if part:
                    target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra}
            seen += 1
        return schema

    def build(self, schema: dict[str, Any], depth: int = 0) -> Any:
        schema = self.resolve(schema)
        if depth > 30 or not isinstance(schema, dict):
            return None
        if "const" in schema:
            return schema["const"]
        if "enum" in schema and schema["enum"]:
            if self.corrupt_pending:
                self.corrupt_pending = False
                return _outside_enum(schema["enum"])
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                options = [self.resolve(o) for o in schema[key]]
                non_null = [o for o in options if o.get("type") != "null"]
                return self.build((non_null or options)[0], depth + 1)
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged.update(self.resolve(part))
            merged.update({k: v for k, v in schema.items() if k != "allOf"})
            return self.build(merged, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else ("array" if "items" in schema else "string")
        if kind == "object":
            props = schema.get("properties", {})
            return {name: self.build(props.get(name, {}), depth + 1) for name in schema.get("required", [])}
        if kind == "array":
            count = int(schema.get("minItems", 0))
            return [self.build(schema.get("items", {}), depth + 1) for _ in range(count)]
        if kind == "string":
            if self.corrupt_pending:
                self.corrupt_pending = False
                return NOT_IN_ARTICLE_TEXT
            if schema.get("format") == "date":
                return "1970-01-01"
            if schema.get("format") == "date-time":
                return "1970-01-01T00:00:00Z"
            return "x" * int(schema.get("minLength", 0))
        if kind in ("integer", "number"):
            low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1 if "exclusiveMinimum" in schema else 0)
            high = schema.get("maximum")
            value = max(0, low) if high is None or high >= max(0, low) else low
            return int(value) if kind == "integer" else float(value)
        if kind == "boolean":
            return False
        return None


def _outside_enum(values: list[Any]) -> Any:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return int(max(values)) + 1000
    candidate = "P999"
    while candidate in values:
        candidate += "9"
    return candidate


def minimal_instance(schema: dict[str, Any], *, not_in_article: bool = False) -> Any:
    """A minimal instance valid against `schema` (or, with `not_in_article`, one with a value outside its options)."""
    builder = _Builder(schema, corrupt=not_in_article)
    value = builder.build(schema)
    if not_in_article and builder.corrupt_pending and isinstance(value, dict):
        # No enum or required string: add an unknown field carrying foreign text.
        value["source_text"] = NOT_IN_ARTICLE_TEXT
    return value


def schema_violation(schema: dict[str, Any]) -> Any:
    """JSON of the wrong shape: every required property gets a value of the wrong type."""
    resolved = _Builder(schema).resolve(schema)
    names = resolved.get("required") or list(resolved.get("properties", {})) or ["unexpected"]
    return {name: {"wrong": ["type"]} for name in names}


def _request_schema(body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The response JSON Schema and tool name of a chat request (TOOLS or JSON mode)."""
    tools = body.get("tools") or []
    if tools:
        function = tools[0].get("function", {})
        return function.get("parameters") or {}, function.get("name") or "answer"
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        if isinstance(content, str) and "json_schema" in content:
            start = content.find("{", content.find("json_schema"))
            if start >= 0:
                try:
                    schema, _ = json.JSONDecoder().raw_decode(content[start:])
                    return schema, None
                except ValueError:
                    pass
    return {}, None


def _messages_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "\n".join(parts)


def messages_text(body: dict[str, Any]) -> str:
    """All message text of a recorded request body (for assertions)."""
    return _messages_text(body)


# --------------------------------------------------------------------------- the server


class FakeOpenAI:
    """A scripted OpenAI-compatible server on 127.0.0.1; use as a context manager."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        hang_s: float = 30.0,
        port: int = 0,
        host: str = "127.0.0.1",
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        model: str = "fake",
    ) -> None:
        self.latency = latency
        self.hang_s = hang_s
        self.model = model
        self.prompt_tokens = prompt_tokens  # fixed usage per answer; None: about 4 characters a token
        self.completion_tokens = completion_tokens
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified when a request arrives or the gate opens
        self._gate: tuple[int, float] | None = None  # hold_until(in_flight, quiet_s), until it opens
        self._last_arrival = 0.0
        self.gate_opened: str | None = None  # "reached" or "quiet", once the gate has opened
        self._stop = threading.Event()
        self._queue: deque[Fault] = deque()
        self._matched: list[tuple[str, deque[Fault]]] = []
        self._always: list[tuple[str | None, Fault]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset_counters()

    # ---- lifecycle

    def start(self) -> FakeOpenAI:
        handler = type("_Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes hanging and slow handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until stopped (standalone use)."""
        while not self._stop.wait(0.2):
            pass

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    # ---- scripting

    def script(self, faults: Iterable[str | Fault], *, match: str | None = None) -> None:
        """Queue answers for the next requests (for `match`: the next requests whose messages contain it)."""
        items = [as_fault(f) for f in faults]
        with self._lock:
            if match is None:
                self._queue.extend(items)
                return
            for key, queue in self._matched:
                if key == match:
                    queue.extend(items)
                    return
            self._matched.append((match, deque(items)))

    def always(self, fault: str | Fault, *, match: str | None = None) -> None:
        """Answer every request (or every request containing `match`) with this fault until `clear()`."""
        with self._lock:
            self._always.append((match, as_fault(fault)))

    def hold_until(self, *, in_flight: int, quiet_s: float) -> None:
        """Hold the next requests unanswered until `in_flight` of them are in flight at once, or no new
        request has arrived for `quiet_s` seconds; then answer them and every later one as usual."""
        with self._lock:
            self._gate, self.gate_opened = (in_flight, quiet_s), None

    def clear(self) -> None:
        """Forget every scripted and persistent fault (counters are kept)."""
        with self._lock:
            self._queue.clear()
            self._matched.clear()
            self._always.clear()

    def pending(self) -> int:
        """Scripted faults not served yet."""
        with self._lock:
            return len(self._queue) + sum(len(q) for _, q in self._matched)

    def reset_counters(self) -> None:
        self.requests_count = 0  # POST /v1/chat/completions received
        self.models_count = 0  # GET /v1/models received
        self.in_flight = 0
        self.max_in_flight = 0
        self.served: list[str] = []  # fault kind chosen for each chat request, in arrival order
        self.requests: list[dict[str, Any]] = []  # request JSON bodies in arrival order (never headers; last 2000)
        self.request_times: list[float] = []  # time.monotonic() of each arrival

    @property
    def faults_injected(self) -> int:
        return sum(kind != "good" for kind in self.served)

    def endpoint_config(self, *, api_key: str = "sk-test-fake", model: str | None = None, **overrides: Any) -> Any:
        """A pipeline `EndpointConfig` pointing at this server (extra fields: timeout_s, max_retries, ...)."""
        from pipeline.llm import EndpointConfig

        return EndpointConfig(base_url=self.base_url, model=model or self.model, api_key=api_key, **overrides)

    # ---- used by the handler

    def _next_fault(self, text: str) -> Fault:
        with self._lock:
            fault = self._pick(text)
            self.served.append(fault.kind)
            return fault

    def _pick(self, text: str) -> Fault:
        for key, queue in self._matched:
            if queue and key in text:
                return queue.popleft()
        if self._queue:
            return self._queue.popleft()
        for key, fault in self._always:
            if key is None or key in text:
                return fault
        return Fault("good")

    def _enter(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests_count += 1
            self.requests.append(body)
            self.request_times.append(time.monotonic())
            if len(self.requests) > 2000:
                del self.requests[:1000], self.request_times[:1000]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._last_arrival = time.monotonic()
            self._changed.notify_all()

    def _wait_at_gate(self) -> None:
        """Block while `hold_until` holds requests (see the module docstring)."""
        with self._lock:
            while self._gate is not None and not self._stop.is_set():
                target, quiet_s = self._gate
                if self.in_flight >= target:
                    self._gate, self.gate_opened = None, "reached"
                elif (left := self._last_arrival + quiet_s - time.monotonic()) <= 0:
                    self._gate, self.gate_opened = None, "quiet"
                else:
                    self._changed.wait(min(left, 0.5))
                    continue
                self._changed.notify_all()

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _usage(self, body: dict[str, Any], completion: str) -> dict[str, int]:
        prompt = self.prompt_tokens if self.prompt_tokens is not None else max(1, len(_messages_text(body)) // 4)
        done = self.completion_tokens if self.completion_tokens is not None else max(1, len(completion) // 4)
        return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence: never log requests
        pass

    # ---- helpers

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self._send_bytes(status, data, headers)

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}}, headers)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- routes

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            with self.fake._lock:
                self.fake.models_count += 1
            self._send_json(200, {"object": "list", "data": [{"id": self.fake.model, "object": "model", "created": 0, "owned_by": "fake"}]})
        else:
            self._error(404, "not found", "invalid_request_error")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, "not found", "invalid_request_error")
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._error(400, "request body is not JSON", "invalid_request_error")
            return
        fake = self.fake
        fake._enter(body)
        try:
            fake._wait_at_gate()
            fault = fake._next_fault(_messages_text(body))
            if fake.latency > 0 and fake._stop.wait(fake.latency):
                self._drop()
                return
            self._answer(body, fault)
        finally:
            fake._leave()

    def _answer(self, body: dict[str, Any], fault: Fault) -> None:
        fake = self.fake
        kind = fault.kind
        if kind in ("400", "401"):
            key = self.headers.get("Authorization", "").removeprefix("Bearer ").strip() if fault.echo_key else "sk-...."
            if kind == "401":
                self._error(401, f"Incorrect API key provided: {key}. You can find your API key at https://platform.example/keys.", "invalid_request_error")
            else:
                self._error(400, f"Invalid request for key {key}: 'messages' could not be processed.", "invalid_request_error")
            return
        if kind == "500":
            self._error(500, "The server had an error while processing your request.", "server_error")
            return
        if kind == "503":
            self._error(503, "The server is overloaded, please try again later.", "server_error")
            return
        if kind == "429":
            self._error(429, "Rate limit reached, please retry.", "rate_limit_exceeded", {"Retry-After": f"{fault.retry_after:g}"})
            return
        if kind == "hang":
            fake._stop.wait(fault.hang_s if fault.hang_s is not None else fake.hang_s)
            self._drop()
            return
        if kind == "drop":
            self._drop()
            return
        if kind == "invalid_body":
            self._send_bytes(200, b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "mess')
            return

        schema, tool_name = _request_schema(body)
        finish = "tool_calls" if tool_name else "stop"
        if kind == "invalid_json":
            arguments = '{"answer": tru, '
        elif kind == "schema_violation":
            arguments = json.dumps(schema_violation(schema))
        elif kind == "length":
            full = json.dumps(minimal_instance(schema)) or "{}"
            arguments = (full + " " * 40)[: max(1, len(full) // 2)]
            finish = "length"
        elif kind == "not_in_article":
            arguments = json.dumps(minimal_instance(schema, not_in_article=True))
        elif fault.answer is not None:
            arguments = json.dumps(fault.answer)
        else:
            arguments = json.dumps(minimal_instance(schema))
        self._send_json(200, self._completion(body, arguments, tool_name, finish))

    def _completion(self, body: dict[str, Any], arguments: str, tool_name: str | None, finish: str) -> dict[str, Any]:
        if tool_name:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function", "function": {"name": tool_name, "arguments": arguments}}],
            }
        else:
            message = {"role": "assistant", "content": arguments}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.fake.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": self.fake._usage(body, arguments),
        }


# --------------------------------------------------------------------------- pytest and CLI


def fake_openai_server(**options: Any) -> Iterator[FakeOpenAI]:
    """Generator for a pytest fixture: `fake = pytest.fixture(fake_openai_server)` or wrap with options."""
    with FakeOpenAI(**options) as server:
        yield server


try:  # a ready-made fixture: `from tests.support.fake_openai import fake_openai` in a test module
    import pytest

    @pytest.fixture
    def fake_openai() -> Iterator[FakeOpenAI]:
        with FakeOpenAI() as server:
            yield server

except ImportError:  # pragma: no cover - standalone use without pytest
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_openai", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--hang-s", type=float, default=30.0)
    parser.add_argument("--script", default="", help="comma-separated faults served first, e.g. 429,500,good")
    parser.add_argument("--model", default="fake")
    args = parser.parse_args(argv)
    server = FakeOpenAI(latency=args.latency, hang_s=args.hang_s, port=args.port, host=args.host, model=args.model)
    if args.script:
        server.script([s.strip() for s in args.script.split(",") if s.strip()])
    server.start()

    def stop(signum: int, frame: Any) -> None:
        server._stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"fake-openai listening on {server.base_url} (latency {args.latency:g} s)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.stop()
        print(f"fake-openai stopped after {server.requests_count} requests (max in flight {server.max_in_flight})", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
