"""The extraction flow the Prefect way: cache keys, retries, limits, artifacts, the served schedule.

Fast tests (no server) check the pieces; `slow` tests run the flow against a
real local Prefect server (conftest `prefect_server`) and the fake
OpenAI-compatible server (`tests.support.fake_openai`), never a real model.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from flows import extract_flow, serve
from pipeline import strategy
from flows.extract_flow import article_cache_key, cache_key, content_hash, in_shard, is_transient, retry_if_transient
from flows.llm_limits import endpoint_key, rate_bucket
from pipeline.ingest import Article
from pipeline.llm import EndpointConfig, EndpointUnavailable, InvalidAnswer, TokenBudgetExhausted
from pipeline.run import ArticleFailure
from tests.conftest import REPO, SERVE_SCRIPT, free_port, quiet_env, start_background, wait_until
from tests.support import API_KEY, audit_outputs, write_articles
from tests.support.fake_openai import FakeOpenAI


def _article(**changes: object) -> Article:
    base = Article(id="art_1", source_file="a.txt", text="Some text.", title="T", published=None, source=None, url=None)
    return dataclasses.replace(base, **changes)


# --------------------------------------------------------------------------- fast


def test_cache_key_is_content_hash_model_prompt_and_schema_version(monkeypatch: pytest.MonkeyPatch) -> None:
    article = _article()
    key = cache_key(article, "m1")
    assert cache_key(dataclasses.replace(article, read_at=article.read_at + 100), "m1") == key, "when it was read must not matter"
    assert cache_key(_article(text="Other text."), "m1") != key
    assert cache_key(_article(title="Other title"), "m1") != key
    assert cache_key(_article(source_file="b.txt"), "m1") != key
    assert cache_key(article, "m2") != key
    assert cache_key(article, "m1", "run-123") != key
    assert cache_key(article, "m1", strategy="llm") != key
    assert cache_key(article, "m1", version="0.0.0+another-extractor") != key, "records of other extraction code are never served"
    monkeypatch.setattr(strategy, "PROMPT_VERSION", "p-next")
    assert cache_key(article, "m1") != key
    monkeypatch.undo()
    monkeypatch.setattr(extract_flow, "SCHEMA_VERSION", "9.9.9")
    assert cache_key(article, "m1") != key
    monkeypatch.undo()
    # Never a client object: the endpoint (and its key) and the limits are not part of it.
    a = {"article": article, "model_label": "m1", "endpoint": EndpointConfig("http://a/v1", "m1", api_key="sk-one"), "cache_scope": ""}
    b = {**a, "endpoint": EndpointConfig("http://b/v1", "m1", api_key="sk-two"), "limits": object()}
    assert article_cache_key(None, a) == article_cache_key(None, b) == key  # type: ignore[arg-type]
    assert len(content_hash(article)) == 64


def _status_error(cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    return cls("boom", response=httpx.Response(status, request=request), body=None)


def test_only_transient_endpoint_errors_are_retried() -> None:
    from prefect.states import Failed

    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    transient = [
        EndpointUnavailable("endpoint answered HTTP 503 after 4 HTTP attempt(s)"),
        openai.APIConnectionError(request=request),
        openai.APITimeoutError(request=request),
        _status_error(openai.RateLimitError, 429),
        _status_error(openai.InternalServerError, 503),
    ]
    permanent = [InvalidAnswer("failed validation"), TokenBudgetExhausted("budget"), ValueError("bug"), _status_error(openai.BadRequestError, 400)]
    for error in transient:
        assert is_transient(error), error
        wrapped = ArticleFailure("x")
        wrapped.__cause__ = error
        assert retry_if_transient(None, None, Failed(data=wrapped)), error
    for error in permanent:
        assert not is_transient(error), error
        assert not retry_if_transient(None, None, Failed(data=error)), error


def test_shards_split_articles_exactly_once() -> None:
    ids = [f"art_{i:04x}" for i in range(600)]
    for shards in (1, 2, 3, 7):
        owners = [[s for s in range(shards) if in_shard(i, s, shards)] for i in ids]
        assert all(len(o) == 1 for o in owners)
        sizes = [sum(o == [s] for o in owners) for s in range(shards)]
        assert min(sizes) > 600 / shards * 0.7, sizes


def test_flow_parameters_are_typed_and_described_as_the_ui_form_shows_them() -> None:
    from prefect.utilities.callables import parameter_schema, parameter_schema_from_entrypoint

    schema = parameter_schema(extract_flow.extract_articles.fn).model_dump_for_openapi()
    props = schema["properties"]
    for name in ("input_dir", "output_dir", "base_url", "model", "concurrency", "rerun", "llm_max_in_flight", "llm_requests_per_minute"):
        assert props[name].get("description"), f"{name} has no description"
    assert props["input_dir"]["type"] == "string" and props["output_dir"]["type"] == "string"
    assert props["rerun"]["enum"] == ["changed", "missing", "all"] and props["rerun"]["default"] == "changed"
    assert props["concurrency"]["type"] == "integer" and props["concurrency"]["minimum"] == 1
    assert not [name for name in props if "key" in name or "secret" in name], "an API key must never be a parameter"
    # `prefect deploy` reads the schema from source: it must be the same form.
    assert parameter_schema_from_entrypoint("flows/extract_flow.py:extract_articles").model_dump_for_openapi() == schema


def test_prefect_yaml_deploys_both_flows_on_a_process_work_pool() -> None:
    from prefect.utilities.callables import parameter_schema_from_entrypoint

    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert config["pull"] == [{"flows.deploy_steps.enter_project": {}}]
    names = {d["name"]: d for d in config["deployments"]}
    assert set(names) == {"daily-workers", "backfill-workers"}
    for deployment in names.values():
        assert deployment["work_pool"]["name"] == "news-records"
        schema = parameter_schema_from_entrypoint(deployment["entrypoint"])
        assert set(deployment.get("parameters", {})) <= set(schema.properties), deployment["name"]
    assert names["daily-workers"]["schedules"][0]["cron"] == "0 6 * * *"
    assert names["backfill-workers"]["parameters"]["deployment"] == "extract-articles/daily-workers"


def test_pull_step_enters_the_project_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from flows.deploy_steps import enter_project

    monkeypatch.chdir(tmp_path)
    assert enter_project() == {"directory": str(REPO)} and Path.cwd() == REPO
    monkeypatch.setenv("NEWS_RECORDS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a news-records checkout"):
        enter_project()


def test_serve_defaults_to_a_daily_cron_and_takes_options() -> None:
    args = serve.build_parser().parse_args([])
    assert args.cron == "0 6 * * *" and args.timezone == "UTC"
    (schedule,) = serve.schedule_options(args)["schedules"]
    assert schedule.cron == "0 6 * * *"
    assert serve.deployment_parameters(args) == {"fail_on_article_errors": True}
    args = serve.build_parser().parse_args(["--interval", "30", "--input", "seeds", "--base-url", "http://h:1/v1", "--concurrency", "4", "--rules-only"])
    assert serve.schedule_options(args) == {"interval": 30.0}
    params = serve.deployment_parameters(args)
    assert params["input_dir"] == str((Path.cwd() / "seeds").resolve())
    assert (params["base_url"], params["concurrency"], params["rules_only"]) == ("http://h:1/v1", 4, True)
    assert serve.deployment_parameters(serve.build_parser().parse_args(["--strategy", "llm"]))["strategy"] == "llm"
    with pytest.raises(SystemExit):
        serve.build_parser().parse_args(["--strategy", "everything"])


def test_limit_names_never_carry_credentials_and_rate_is_a_bucket() -> None:
    endpoint = EndpointConfig("https://user:secret@api.example.com/v1?key=abc", "m")
    assert endpoint_key(endpoint) == "api.example.com-443-v1"
    assert endpoint_key(EndpointConfig("http://127.0.0.1:8080/v1", "m")) == "127.0.0.1-8080-v1"
    assert endpoint_key(None, "qwen2.5-coder-1.5b") == "embedded-qwen2.5-coder-1.5b"
    assert rate_bucket(60) == (1, 1.0)
    assert rate_bucket(600) == (10, 10.0)
    assert rate_bucket(6) == (1, 0.1)


def test_benchmark_replaces_only_its_own_section(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import bench_overhead
    finally:
        sys.path.remove(str(REPO / "scripts"))
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Extraction quality: dev\n\nrow 1\n")
    bench_overhead.write_section(path, bench_overhead.SECTION + "\n\nfirst\n")
    bench_overhead.write_section(path, bench_overhead.SECTION + "\n\nsecond\n")
    text = path.read_text()
    assert text.count(bench_overhead.SECTION) == 1 and "second" in text and "first" not in text
    assert "## Extraction quality: dev\n\nrow 1\n" in text
    path.write_text(text + "\n## Later section\n\nkeep me\n")
    bench_overhead.write_section(path, bench_overhead.SECTION + "\n\nthird\n")
    assert "keep me" in path.read_text() and "third" in path.read_text()


# --------------------------------------------------------------------------- slow: the flow on a real server


def _task_states(server, flow_run_id: str) -> dict[str, str]:  # noqa: ANN001
    return {t["name"].removeprefix("extract "): t["state_name"] for t in server.task_runs([flow_run_id])}


@pytest.mark.slow
def test_unchanged_input_makes_zero_llm_calls_and_the_cache_outlives_the_output_folder(
    prefect_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    from prefect.client.orchestration import get_client

    monkeypatch.setenv("NEWS_LLM_API_KEY", API_KEY)
    articles, out, out2 = tmp_path / "articles", tmp_path / "out", tmp_path / "out2"
    names = write_articles(articles, 6)
    with FakeOpenAI() as fake:
        params = {"input_dir": str(articles), "base_url": fake.base_url, "model": "fake-cache", "concurrency": 3}

        first = extract_flow.extract_articles(output_dir=str(out), **params)
        assert first["records_written"] == 6 and not first["failures"]
        assert fake.requests_count > 0
        calls = fake.requests_count

        # The scheduled case: same folders, nothing changed -> no LLM call, every record reused.
        second = extract_flow.extract_articles(output_dir=str(out), **params)
        assert fake.requests_count == calls, "a run over unchanged input called the model"
        assert second["records_cached"] == 6 and second["records_written"] == 0

        # Records gone (new output folder): Prefect's content-addressed cache still answers.
        third = extract_flow.extract_articles(output_dir=str(out2), **params)
        assert fake.requests_count == calls, "the Prefect cache did not serve unchanged articles"
        assert third["records_cached"] == 6
        audit = audit_outputs(out2, names)
        assert not audit.lost and not audit.broken and set(audit.records) == set(names)

        # One article edited: only it is extracted again.
        edited = articles / names[0]
        edited.write_text(edited.read_text() + "\nThe vote was postponed.\n")
        fourth = extract_flow.extract_articles(output_dir=str(out), **params)
        assert fourth["records_written"] == 1 and fourth["records_cached"] == 5
        per_article = {json.loads(r.read_text())["article"]["source_file"]: json.loads(r.read_text())["provenance"]["usage"]["calls"] for r in (out / "records").glob("*.json")}
        assert fake.requests_count == calls + per_article[names[0]]

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=10, sort="START_TIME_DESC")
    latest = [r for r in runs if r.parameters.get("output_dir") in (str(out), str(out2))][:4]
    assert {r.state_name for r in latest} == {"Completed"}
    server = prefect_settings
    third_run = next(r for r in latest if r.parameters["output_dir"] == str(out2))
    assert "Extracting a_000.txt" in json.dumps(server.logs(str(latest[-1].id))), "logs say which article is processed"
    assert set(_task_states(server, str(third_run.id)).values()) == {"Cached"}
    # One table row per article and a summary, per run; no API key in logs, artifacts or parameters.
    for run in latest:
        artifacts = server.artifacts(str(run.id))
        table = next(a for a in artifacts if a["type"] == "table")
        rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
        assert {row["article"] for row in rows} == set(names)
        assert set(rows[0]) == {"article", "status", "quotes", "organisations", "cap_codes", "seconds", "tokens"}
        summary = next(a for a in artifacts if a["type"] == "markdown")["data"]
        assert str(Path(run.parameters["output_dir"]) / "records") in summary
        logs = json.dumps(server.logs(str(run.id)))
        for text in (json.dumps(artifacts), logs, json.dumps(run.parameters)):
            assert API_KEY not in text


@pytest.mark.slow
def test_transient_failures_are_retried_by_prefect_and_bad_answers_are_quarantined(prefect_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("NEWS_LLM_TRANSPORT_RETRIES", "1")  # the openai client's own retries: keep the test short
    monkeypatch.setattr(extract_flow, "extract_article", extract_flow.extract_article.with_options(retry_delay_seconds=0.2))
    articles, out = tmp_path / "articles", tmp_path / "out"
    names = write_articles(articles, 3, markers={0: "Flaky Borough", 1: "Garbled Borough"})
    with FakeOpenAI() as fake:
        fake.script(["503", "503", "503", "503"], match="Flaky Borough")  # 2 task attempts x 2 HTTP attempts
        fake.always("schema_violation", match="Garbled Borough")
        params = {"input_dir": str(articles), "output_dir": str(out), "base_url": fake.base_url, "model": "fake-retries"}
        manifest = extract_flow.extract_articles(**params)
        assert manifest["records_written"] == 2
        [failure] = manifest["failures"]
        assert failure["source_file"] == names[1] and failure["stage"] == "validate"
        assert (out / failure["failure_record"]).is_file()
        with pytest.raises(extract_flow.ArticleFailures):
            extract_flow.extract_articles(**params, fail_on_article_errors=True)

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        first = client.read_flow_runs(limit=2, sort="START_TIME_DESC")[-1]
    tasks = {t["name"].removeprefix("extract "): t for t in prefect_settings.task_runs([str(first.id)])}
    assert tasks[names[0]]["state_name"] == "Completed" and tasks[names[0]]["run_count"] == 3, "the transient failure was not retried by Prefect"
    assert tasks[names[1]]["state_name"] == "Failed" and tasks[names[1]]["run_count"] == 1, "a bad answer must not be retried"
    assert tasks[names[2]]["run_count"] == 1


def test_a_run_holds_at_most_a_window_of_unsettled_task_runs(prefect_settings) -> None:  # noqa: ANN001
    """A backfill of any size keeps only a window of finished-but-unsettled futures (and their records)."""
    import threading

    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner

    lock, live, peak = threading.Lock(), [0], [0]

    @task
    def work(article: str, pause: float) -> str:
        time.sleep(pause if article.endswith("3") else 0)
        return article.upper()

    @flow
    def backfill(articles: list[str]) -> list[str]:
        seen = []
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            original = runner.submit

            def counting_submit(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                with lock:
                    live[0] += 1
                    peak[0] = max(peak[0], live[0])
                return original(*args, **kwargs)

            runner.submit = counting_submit
            for future, article in extract_flow.submit_windowed(runner, work, articles, {"pause": 0.3}, window=extract_flow.submit_window(2)):
                assert future.result() == article.upper()
                seen.append(article)
                with lock:
                    live[0] -= 1
        return seen

    articles = [f"a{i}" for i in range(40)]
    seen = backfill(articles)
    assert sorted(seen) == sorted(articles), "every article exactly once"
    assert seen != articles, "yielded as they finish, not in submission order"
    assert peak[0] == extract_flow.submit_window(2) == 6


@pytest.mark.slow
def test_llm_calls_obey_the_endpoint_concurrency_and_rate_limits(prefect_settings, tmp_path: Path) -> None:  # noqa: ANN001
    from prefect.client.orchestration import get_client

    articles = tmp_path / "articles"
    write_articles(articles, 8)
    # Reached and never exceeded, whatever the thread timing: the fake holds every request until one more
    # than the limit are in flight at once (a broken limit) or none has come for 5 s (the limit held).
    with FakeOpenAI(latency=0.3) as fake:
        params = {"input_dir": str(articles), "base_url": fake.base_url, "model": "fake", "concurrency": 4, "rerun": "all"}
        fake.hold_until(in_flight=5, quiet_s=5.0)
        extract_flow.extract_articles(output_dir=str(tmp_path / "free"), **params)
        assert (fake.gate_opened, fake.max_in_flight) == ("quiet", 4), "concurrency=4 should keep 4 requests in flight, never more"

        fake.reset_counters()
        fake.hold_until(in_flight=3, quiet_s=5.0)
        extract_flow.extract_articles(output_dir=str(tmp_path / "capped"), llm_max_in_flight=2, **params)
        assert (fake.gate_opened, fake.max_in_flight) == ("quiet", 2), "the endpoint's global concurrency limit was not applied"
        key = endpoint_key(EndpointConfig(fake.base_url, "fake"))
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(f"llm:{key}")
        assert limit.limit == 2 and limit.active_slots == 0

        # Left empty, a later run keeps the limit configured on the server for this endpoint.
        fake.reset_counters()
        fake.hold_until(in_flight=3, quiet_s=5.0)
        extract_flow.extract_articles(output_dir=str(tmp_path / "capped-again"), **params)
        assert (fake.gate_opened, fake.max_in_flight) == ("quiet", 2)

    with FakeOpenAI() as fake:
        params = {"input_dir": str(articles), "base_url": fake.base_url, "model": "fake", "concurrency": 4, "rerun": "all"}
        extract_flow.extract_articles(output_dir=str(tmp_path / "rated"), llm_requests_per_minute=240, **params)
        # 4 requests per second, a burst of 4: n requests arrive over at least (n - 4) / 4 seconds (a lower
        # bound, which load can only lengthen; measured where the requests arrive, not around the flow).
        spread = fake.request_times[-1] - fake.request_times[0]
        assert fake.requests_count >= 8
        assert spread >= (fake.requests_count - 4) / 4 * 0.9, (fake.requests_count, spread)


@pytest.mark.slow
def test_overhead_benchmark_script_runs(tmp_path: Path) -> None:
    """The benchmark itself is not timed here: a tiny run proves the script works end to end."""
    markdown = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_overhead.py"), "--articles", "6", "--warmup", "2", "--repeat", "1",
         "--limits-articles", "3", "--concurrency", "2", "--slow-latency", "0.3", "--markdown", str(markdown)],
        cwd=REPO, env=quiet_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    text = markdown.read_text()
    assert "## Pipeline overhead (Prefect)" in text and "ms per article" in text
    assert "| `concurrency=2` | 2 | 2 |" in text, text


@pytest.mark.slow
def test_readme_command_serves_a_schedule_whose_second_run_makes_no_llm_calls(tmp_path: Path) -> None:
    """`scripts/serve.sh` from a cold start: it starts the server itself, scheduled runs every 20 s."""
    home, port = tmp_path / "prefect-home", free_port()
    articles, out = tmp_path / "inbox", tmp_path / "records"
    names = write_articles(articles, 4)
    api = f"http://127.0.0.1:{port}/api"
    env = quiet_env(NEWS_PREFECT_HOME=str(home), NEWS_PREFECT_PORT=str(port), PREFECT_RUNNER_POLL_FREQUENCY="2", NEWS_LLM_API_KEY=API_KEY)
    with FakeOpenAI() as fake:
        serve_proc = start_background(
            ["bash", str(SERVE_SCRIPT), "--interval", "20", "--input", str(articles), "--output", str(out), "--base-url", fake.base_url, "--model", "fake"],
            env=env, log=tmp_path / "serve.log",
        )  # fmt: skip
        try:

            def completed_runs() -> list[dict]:
                try:
                    runs = httpx.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_ASC", "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}}, timeout=10).json()
                except httpx.HTTPError:
                    return []
                return runs

            first = wait_until(lambda: completed_runs()[:1], timeout=150, what="the first scheduled run", proc=serve_proc, interval=1)[0]
            assert first["state_type"] == "COMPLETED", first["state"]
            assert "auto-scheduled" in first["tags"] and first["parameters"]["input_dir"] == str(articles)
            audit = audit_outputs(out, names)
            assert set(audit.records) == set(names) and not audit.lost and not audit.broken
            calls = fake.requests_count
            assert calls > 0

            second = wait_until(lambda: completed_runs()[1:2], timeout=90, what="the second scheduled run", proc=serve_proc, interval=1)[0]
            assert second["state_type"] == "COMPLETED"
            assert fake.requests_count == calls, "the second scheduled run over unchanged input called the model"
            manifest = json.loads((out / "manifest.json").read_text())
            assert manifest["records_cached"] == 4 and manifest["records_written"] == 0
        finally:
            serve_proc.stop()
    assert "Stopped Prefect server" in serve_proc.output(), serve_proc.output()[-2000:]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{api}/health", timeout=2)
    assert API_KEY not in serve_proc.output()
    assert (home / "prefect.db").is_file(), "the database lives under the project-chosen PREFECT_HOME"
