"""The API key never appears in any file written, any log line, any error or any repr."""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pipeline.llm import EndpointConfig, StructuredLLM, redact
from pipeline.run import RunConfig, run_batch, safe_url
from pipeline.write import write_failure
from schemas.records import FailureRecord
from tests.support import API_KEY, write_articles
from tests.support.fake_openai import FAULT_KINDS, Fault, FakeOpenAI

KEY_PARTS = (API_KEY, API_KEY[3:], "NEVER-LOG-ME")


def leaks(text: str) -> list[str]:
    return [part for part in KEY_PARTS if part in text]


def test_key_is_absent_from_every_file_and_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    names = write_articles(inp, 6, markers={1: "Marker-One", 2: "Marker-Two", 3: "Marker-Three", 4: "Marker-Four", 5: "Marker-Five"})
    caplog.set_level(logging.DEBUG)  # everything, from every library (openai, httpx, instructor, ours)
    with FakeOpenAI() as fake:
        fake.always("500", match="Marker-One")
        fake.always("schema_violation", match="Marker-Two")
        fake.script([Fault("429", retry_after=0.1), "drop", "invalid_body"], match="Marker-Three")
        # The usual real leak: an error body that quotes the key the request carried.
        fake.always(Fault("401", echo_key=True), match="Marker-Four")
        fake.always(Fault("400", echo_key=True), match="Marker-Five")
        endpoint = fake.endpoint_config(api_key=API_KEY, timeout_s=1.0, transport_retries=2)

        manifest = run_batch(RunConfig(inp, out, endpoint=endpoint))

        assert fake.requests_count >= 6
        assert {"401", "400"} <= set(fake.served)
    assert {f["source_file"]: f["reason"][:29] for f in manifest["failures"] if f["source_file"] in (names[4], names[5])} == {
        names[4]: "endpoint answered HTTP 401 af",
        names[5]: "endpoint answered HTTP 400 af",
    }, manifest["failures"]
    assert {f["source_file"] for f in manifest["failures"]} == {names[1], names[2], names[4], names[5]}

    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 10
    for path in files:
        found = leaks(path.read_bytes().decode("utf-8", "replace"))
        assert not found, f"API key in {path.relative_to(out)}"
    assert caplog.records, "nothing was logged: the check would prove nothing"
    for record in caplog.records:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        assert not leaks(text), f"API key in a log line from {record.name}: {text[:200]}"
    assert not leaks(caplog.text)


def test_key_is_absent_from_reprs_errors_and_serialisations(tmp_path: Path) -> None:
    endpoint = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m", api_key=API_KEY)
    config = RunConfig(tmp_path, tmp_path / "out", endpoint=endpoint)
    for text in (repr(endpoint), str(endpoint), repr(config), str(asdict(endpoint)), json.dumps(asdict(config), default=str)):
        assert not leaks(text)
    assert endpoint.secret_key() == API_KEY  # still usable by the client
    assert pickle.loads(pickle.dumps(endpoint)).secret_key() == API_KEY  # survives process-based runners

    with FakeOpenAI() as fake:
        fake.always("503")
        llm = StructuredLLM(fake.endpoint_config(api_key=API_KEY, timeout_s=1.0, transport_retries=0, max_retries=0))
        from pipeline.extract import TopicsAnswer

        with pytest.raises(Exception) as raised:
            llm.ask("system", "question", TopicsAnswer)
        llm.close()
    chain, error = [], raised.value
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    for e in chain:
        assert not leaks(str(e)) and not leaks(repr(e))


def test_failure_text_is_redacted_before_it_is_written(tmp_path: Path) -> None:
    EndpointConfig(base_url=None, model="m", api_key=API_KEY)  # registers the key
    echoed = f"Error code: 401 - Incorrect API key provided: {API_KEY}. Header was 'Authorization: Bearer {API_KEY}'"
    path = write_failure(
        tmp_path,
        FailureRecord(source_file="x.txt", stage="extract", reason=echoed, last_model_output=f"my key is {API_KEY}", failed_at=datetime.now(UTC)),
    )
    text = path.read_text()
    assert not leaks(text) and "[REDACTED]" in text
    assert redact("key sk-other-abcdef123456 and Bearer abc.def-ghi") == "key [REDACTED] and [REDACTED]"
    assert redact("no secrets here") == "no secrets here"


def test_manifest_endpoint_has_no_credentials() -> None:
    assert safe_url(f"https://user:{API_KEY}@llm.example.com:8443/v1?api_key={API_KEY}") == "https://llm.example.com:8443/v1"


@pytest.mark.parametrize("kind", ["400", "401"])
def test_an_echoing_fault_does_quote_the_key(kind: str) -> None:
    # What makes the file and log checks above able to fail: the key really is in these answers.
    with FakeOpenAI() as fake:
        fake.script([Fault(kind, echo_key=True)])
        response = httpx.post(f"{fake.base_url}/chat/completions", json={"model": "fake", "messages": []}, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
    assert response.status_code == int(kind) and API_KEY in response.json()["error"]["message"]


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k not in ("hang", "drop")])
def test_fake_server_never_echoes_the_key(kind: str) -> None:
    with FakeOpenAI() as fake:
        fake.script([kind])
        body = {"model": "fake", "messages": [{"role": "user", "content": "hello"}], "tools": [{"type": "function", "function": {"name": "A", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}]}
        response = httpx.post(f"{fake.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
    assert not leaks(response.text) and not leaks(str(response.headers))
