"""Every LLM-service fault against a real misbehaving HTTP server, through openai + instructor.

Each fault is injected into a batch run (`run_batch`) and the outcome asserted:
retried then succeeded, or quarantined with a reason while the rest of the
batch completes; a later run retries only what failed. The module prints a
summary line: faults injected, articles lost (must be 0), broken files (must be 0).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, Field

from pipeline.extract import TopicsAnswer
from pipeline.llm import EndpointUnavailable, InvalidAnswer, StructuredLLM, TokenBudgetExhausted, TruncatedAnswer
from pipeline.run import RunConfig, run_batch
from schemas.records import ArticleMeta, ArticleRecord, FailureRecord, Quote
from tests.support import API_KEY, Audit, audit_outputs, write_articles
from tests.support.fake_openai import FAULT_KINDS, Fault, FakeOpenAI, messages_text, minimal_instance

TALLY = {"faults": 0, "lost": 0, "broken": 0, "articles": 0}
TIMEOUT_S = 0.5
MARKER = "Zebulon Quartermaine"  # only in the faulty article of a batch


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(hang_s=2.0) as fake:
        yield fake
    capture = request.config.pluginmanager.getplugin("capturemanager")
    line = (
        f"\nFAULT SUMMARY: faults injected {TALLY['faults']}, articles processed {TALLY['articles']}, "
        f"articles lost {TALLY['lost']} (must be 0), broken files {TALLY['broken']} (must be 0)"
    )
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(line, flush=True)
    else:  # pragma: no cover
        print(line)


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.clear()
    server.reset_counters()
    return server


def endpoint(fake: FakeOpenAI, **overrides: object):  # noqa: ANN201
    options = {"timeout_s": TIMEOUT_S, "transport_retries": 2, "max_retries": 2, **overrides}
    return fake.endpoint_config(api_key=API_KEY, **options)


def tally(fake: FakeOpenAI, audit: Audit, articles: int) -> None:
    TALLY["faults"] += fake.faults_injected
    TALLY["lost"] += len(audit.lost)
    TALLY["broken"] += len(audit.broken) + audit.duplicate_rows + len(audit.duplicate_records)
    TALLY["articles"] += articles


def check_clean(audit: Audit) -> None:
    assert audit.lost == [], f"articles lost: {audit.lost}"
    assert audit.broken == [], f"broken files: {audit.broken}"
    assert audit.duplicate_rows == 0
    assert audit.duplicate_records == []


def test_every_test_article_reaches_the_model(fake: FakeOpenAI, tmp_path: Path) -> None:
    # Guard for the tests below: they inject faults into model calls, so each article must make one.
    write_articles(tmp_path / "in", 3, markers={1: MARKER})
    manifest = run_batch(RunConfig(tmp_path / "in", tmp_path / "out", endpoint=endpoint(fake)))
    assert manifest["records_written"] == 3
    assert all(a["prompt_tokens"] > 0 for a in manifest["articles"]), "tests.support.news_article no longer triggers an LLM call"
    assert any(MARKER in messages_text(r) for r in fake.requests)


# --- transient transport faults: retried (with backoff, Retry-After), never fed back to the model


TRANSPORT = [Fault("500"), Fault("503"), Fault("429", retry_after=1.0), Fault("hang", hang_s=1.0), Fault("drop"), Fault("invalid_body")]


@pytest.mark.parametrize("fault", TRANSPORT, ids=[f.kind for f in TRANSPORT])
def test_transport_fault_is_retried_unchanged_then_succeeds(fake: FakeOpenAI, tmp_path: Path, fault: Fault) -> None:
    names = write_articles(tmp_path / "in", 1)
    fake.script([fault])

    manifest = run_batch(RunConfig(tmp_path / "in", tmp_path / "out", endpoint=endpoint(fake)))

    assert manifest["failures"] == []
    assert manifest["records_written"] == 1
    assert fake.served.count(fault.kind) == 1
    first, retry = fake.requests[0], fake.requests[1]
    assert retry == first, "a transport error must be retried with the same request, not shown to the model"
    assert "Validation Error" not in messages_text(retry)
    gap = fake.request_times[1] - fake.request_times[0]
    if fault.kind == "429":
        assert gap >= 0.95, f"Retry-After: 1 was not honoured (retried after {gap:.2f} s)"
    elif fault.kind in ("500", "503", "drop"):
        assert gap >= 0.3, f"no backoff before the retry ({gap:.2f} s)"
    elif fault.kind == "hang":
        assert gap >= TIMEOUT_S, "the hung request was not given up at the client timeout"
    audit = audit_outputs(tmp_path / "out", names)
    check_clean(audit)
    tally(fake, audit, 1)


def test_backoff_has_jitter_and_grows() -> None:
    # The openai client's own schedule, which our transport retries rely on.
    from openai._models import FinalRequestOptions

    llm = StructuredLLM(_dummy_endpoint())
    client = llm._client.client  # the openai client inside instructor

    options = FinalRequestOptions(method="post", url="/x", max_retries=3)
    first = {round(client._calculate_retry_timeout(3, options, None), 4) for _ in range(50)}
    third = [client._calculate_retry_timeout(1, options, None) for _ in range(50)]
    assert len(first) > 10, "no jitter"
    assert all(0.3 <= t <= 0.5 for t in first)
    assert min(third) > max(first), "backoff does not grow"
    assert client._calculate_retry_timeout(3, options, {"retry-after": "7"}) == 7
    llm.close()


def _dummy_endpoint():  # noqa: ANN202
    from pipeline.llm import EndpointConfig

    return EndpointConfig(base_url="http://127.0.0.1:9/v1", model="fake", api_key=API_KEY)


# --- bad answers: re-asked with the validation errors (bounded), truncation re-asked with more room


@pytest.mark.parametrize("kind", ["invalid_json", "schema_violation", "not_in_article"])
def test_invalid_answer_is_reasked_with_the_errors_then_succeeds(fake: FakeOpenAI, tmp_path: Path, kind: str) -> None:
    names = write_articles(tmp_path / "in", 1)
    fake.script([kind])

    manifest = run_batch(RunConfig(tmp_path / "in", tmp_path / "out", endpoint=endpoint(fake)))

    assert manifest["failures"] == [] and manifest["records_written"] == 1
    first, reask = fake.requests[0], fake.requests[1]
    assert len(reask["messages"]) > len(first["messages"])
    feedback = messages_text(reask)[len(messages_text(first)) :]
    assert "Validation Error" in feedback or "validation error" in feedback
    [record_file] = (tmp_path / "out" / "records").glob("*.json")
    usage = ArticleRecord.model_validate_json(record_file.read_bytes()).provenance.usage
    assert usage.retries == 1
    assert usage.calls == fake.requests_count, "tokens of the failed answer were not counted"
    audit = audit_outputs(tmp_path / "out", names)
    check_clean(audit)
    tally(fake, audit, 1)


def test_truncated_answer_is_asked_again_with_more_tokens(fake: FakeOpenAI, tmp_path: Path) -> None:
    names = write_articles(tmp_path / "in", 1)
    fake.script(["length"])

    manifest = run_batch(RunConfig(tmp_path / "in", tmp_path / "out", endpoint=endpoint(fake)))

    assert manifest["failures"] == [] and manifest["records_written"] == 1
    assert fake.requests[1]["max_tokens"] == 2 * fake.requests[0]["max_tokens"]
    audit = audit_outputs(tmp_path / "out", names)
    check_clean(audit)
    tally(fake, audit, 1)


# --- persistent faults: the article is quarantined with a reason, the batch completes, a re-run retries it

PERSISTENT = [
    (Fault("500"), "extract", "HTTP 500"),
    (Fault("503"), "extract", "HTTP 503"),
    (Fault("429", retry_after=0.2), "extract", "HTTP 429"),
    (Fault("hang", hang_s=1.0), "extract", "timed out"),
    (Fault("drop"), "extract", "connection was dropped"),
    (Fault("invalid_body"), "extract", "not valid JSON"),
    (Fault("invalid_json"), "validate", "not valid JSON"),
    (Fault("schema_violation"), "validate", "failed validation"),
    (Fault("length"), "validate", "truncated"),
    (Fault("not_in_article"), "validate", "Input should be"),
]


@pytest.mark.parametrize(("fault", "stage", "reason"), PERSISTENT, ids=[f.kind for f, _, _ in PERSISTENT])
def test_persistent_fault_quarantines_one_article_and_a_rerun_retries_only_it(fake: FakeOpenAI, tmp_path: Path, fault: Fault, stage: str, reason: str) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    names = write_articles(inp, 3, markers={1: MARKER})
    fake.always(fault, match=MARKER)

    manifest = run_batch(RunConfig(inp, out, endpoint=endpoint(fake)))

    assert manifest["records_written"] == 2
    [failure] = manifest["failures"]
    assert failure["source_file"] == "a_001.txt"
    assert failure["stage"] == stage
    assert reason in failure["reason"]
    quarantined = FailureRecord.model_validate_json((out / failure["failure_record"]).read_bytes())
    assert quarantined.source_file == "a_001.txt" and quarantined.article_id == failure["article_id"]
    assert quarantined.stage == stage and reason in quarantined.reason
    assert quarantined.attempts >= 3, "attempts must count every HTTP try"
    if stage == "validate":
        assert quarantined.last_model_output, "the last raw model output must be kept"
    if fault.kind == "not_in_article":
        assert re.search(r"\b1\d{3}\b|P999", quarantined.last_model_output), "an option that does not exist"
    if fault.kind == "invalid_json":
        assert quarantined.last_model_output == '{"answer": tru, '
    audit = audit_outputs(out, names)
    check_clean(audit)
    assert set(audit.records) == {"a_000.txt", "a_002.txt"}
    tally(fake, audit, 3)

    # The service recovers: the next run asks only about the quarantined article.
    fake.clear()
    before = fake.requests_count
    again = run_batch(RunConfig(inp, out, endpoint=endpoint(fake)))

    assert again["failures"] == []
    assert (again["records_written"], again["records_cached"]) == (1, 2)
    new_requests = fake.requests[before:]
    assert new_requests and all(MARKER in messages_text(r) for r in new_requests)
    assert not (out / failure["failure_record"]).exists(), "the quarantine record of a recovered article must go"
    audit = audit_outputs(out, names)
    check_clean(audit)
    assert audit.records == {name: 1 for name in names}
    tally(fake, audit, 3)


def test_validation_reasks_are_bounded(fake: FakeOpenAI, tmp_path: Path) -> None:
    names = write_articles(tmp_path / "in", 1)
    fake.always("schema_violation")

    manifest = run_batch(RunConfig(tmp_path / "in", tmp_path / "out", endpoint=endpoint(fake, max_retries=3)))

    [failure] = manifest["failures"]
    assert fake.requests_count == 4, "1 question + max_retries re-asks, then stop"
    assert failure["attempts"] == 4
    audit = audit_outputs(tmp_path / "out", names)
    check_clean(audit)
    tally(fake, audit, 1)


# --- token budget


def test_token_budget_stops_reasks_and_counts_every_retry(tmp_path: Path) -> None:
    names = write_articles(tmp_path / "in", 1)
    with FakeOpenAI(prompt_tokens=1000, completion_tokens=10) as fake:
        fake.always("schema_violation")
        ep = fake.endpoint_config(api_key=API_KEY, timeout_s=TIMEOUT_S, max_retries=10, token_budget=2500)

        manifest = run_batch(RunConfig(tmp_path / "in", tmp_path / "out", endpoint=ep))

        [failure] = manifest["failures"]
        assert fake.requests_count == 3, "re-asks must stop once 2500 tokens are spent (3 x 1010)"
        assert "token budget exhausted" in failure["reason"] and "2,500" in failure["reason"]
        [outcome] = manifest["articles"]
        assert (outcome["prompt_tokens"], outcome["completion_tokens"]) == (3000, 30)
        assert manifest["usage"]["prompt_tokens"] == 3000
        audit = audit_outputs(tmp_path / "out", names)
        check_clean(audit)
        tally(fake, audit, 1)


def test_token_usage_of_retries_is_in_the_record(tmp_path: Path) -> None:
    names = write_articles(tmp_path / "in", 1)
    with FakeOpenAI(prompt_tokens=100, completion_tokens=5) as fake:
        fake.script(["schema_violation", "not_in_article"])
        ep = fake.endpoint_config(api_key=API_KEY, timeout_s=TIMEOUT_S)

        run_batch(RunConfig(tmp_path / "in", tmp_path / "out", endpoint=ep))

        [path] = (tmp_path / "out" / "records").glob("*.json")
        usage = ArticleRecord.model_validate_json(path.read_bytes()).provenance.usage
        assert usage.calls == fake.requests_count >= 3
        assert usage.retries == 2
        assert (usage.prompt_tokens, usage.completion_tokens) == (100 * usage.calls, 5 * usage.calls)
        audit = audit_outputs(tmp_path / "out", names)
        check_clean(audit)
        tally(fake, audit, 1)


def test_structured_llm_errors_are_typed(fake: FakeOpenAI) -> None:
    llm = StructuredLLM(endpoint(fake, transport_retries=0, max_retries=1))
    cases = [
        ("503", EndpointUnavailable),
        ("schema_violation", InvalidAnswer),
        ("length", TruncatedAnswer),
    ]
    for kind, error in cases:
        fake.clear()
        fake.always(kind)
        with pytest.raises(error):
            llm.ask("system", "question", TopicsAnswer, max_tokens=10)
    fake.clear()
    budgeted = StructuredLLM(endpoint(fake, token_budget=1))
    budgeted.ask("system", "question", TopicsAnswer)
    with pytest.raises(TokenBudgetExhausted):
        budgeted.ask("system", "question", TopicsAnswer)
    llm.close()
    budgeted.close()


# --- the fake server itself


class _Nested(BaseModel):
    label: str = Field(min_length=3)
    count: int = Field(gt=4)
    optional: str | None = None


class _Outer(BaseModel):
    items: list[_Nested] = Field(min_length=2)
    choice: _Nested | None
    flag: bool


@pytest.mark.parametrize("model", [Quote, ArticleMeta, _Outer, TopicsAnswer])
def test_minimal_instance_is_valid(model: type[BaseModel]) -> None:
    model.model_validate(minimal_instance(model.model_json_schema()))


def test_not_in_article_breaks_validation() -> None:
    with pytest.raises(ValueError):
        TopicsAnswer.model_validate(minimal_instance(TopicsAnswer.model_json_schema(), not_in_article=True))
    assert "moon is made of cheese" in json.dumps(minimal_instance(ArticleMeta.model_json_schema(), not_in_article=True))


def test_fake_serves_concurrently_and_lists_models() -> None:
    # Concurrency without a clock: the gate answers nothing until all 8 requests are in flight at once
    # (a server that served one connection at a time would hold the first until the quiet timeout).
    with FakeOpenAI() as fake:
        assert httpx.get(f"{fake.base_url}/models").json()["data"][0]["id"] == "fake"
        body = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "Answer", "parameters": TopicsAnswer.model_json_schema()}}]}
        answers: list[dict] = []
        fake.hold_until(in_flight=8, quiet_s=30)

        def call() -> None:
            answers.append(httpx.post(f"{fake.base_url}/chat/completions", json=body, timeout=60).json())

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert len(answers) == 8 and fake.requests_count == 8
        assert fake.gate_opened == "reached" and fake.max_in_flight == 8, "requests were not served concurrently"
        arguments = answers[0]["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        TopicsAnswer.model_validate_json(arguments)
        assert answers[0]["usage"]["total_tokens"] > 0


def test_gate_opens_when_no_more_requests_come() -> None:
    with FakeOpenAI() as fake:
        fake.hold_until(in_flight=3, quiet_s=0.2)
        body = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(f"{fake.base_url}/chat/completions", json=body, timeout=30).status_code == 200
        assert fake.gate_opened == "quiet" and fake.max_in_flight == 1


def test_every_fault_kind_is_exercised() -> None:
    used = {f.kind for f in TRANSPORT} | {"invalid_json", "schema_violation", "not_in_article", "length"} | {f.kind for f, _, _ in PERSISTENT} | {"400", "401"}  # 400/401: test_secrets
    assert used | {"good"} == set(FAULT_KINDS)
