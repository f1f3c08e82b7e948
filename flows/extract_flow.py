"""The extraction flow: read the input folder, one task run per article, write the run's outputs.

Thin on purpose: planning, extraction, writing, failure classification and
the manifest are the plain functions of `pipeline.run` (which calls
`pipeline.process` and `pipeline.write`); this module adds only what Prefect
is for:

* one task run per article (`extract-article`), retried with exponential
  backoff when `pipeline.run.is_transient` says the endpoint failed
  transiently (connection errors, timeouts, 429, 5xx), never for anything else;
* content-addressed caching: the cache key is the article's content hash plus
  model, strategy, prompt version, schema version and extractor version (the
  digest of the extraction code and resources, `pipeline.version`; never a
  client object), and the
  cached value is the validated record, persisted in Prefect's result storage.
  A run over unchanged input makes no LLM calls; a failed run retried from the
  UI reuses every article that finished (with ``rerun="all"`` the key is also
  scoped to the flow run, so a new run re-extracts but its retry does not);
* per-endpoint global concurrency and rate limits on LLM calls
  (`flows.llm_limits`);
* a table artifact and a markdown summary per run (`flows.artifacts`).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger, task
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff
from pydantic import Field

from flows.artifacts import publish_artifacts
from flows.llm_limits import NO_LIMITS, GovernedLLM, LlmLimits, configure_limits, endpoint_key, endpoint_slot, release_held_slots
from pipeline.backends.model_store import DEFAULT_MODEL
from pipeline.ingest import Article
from pipeline.llm import EndpointConfig
from pipeline.process import RULES_BACKEND
from pipeline.strategy import Strategy, prompt_version
from pipeline.run import (
    ArticleFailure,
    ArticleOutcome,
    Rerun,
    RunConfig,
    extract_and_write,
    finish_run,
    is_transient,
    new_run_id,
    open_endpoint,
    outcome_of,
    plan_run,
    quarantine,
    safe_url,
)
from pipeline.version import extractor_version
from pipeline.write import RECORDS_DIR, redact, write_record
from schemas.records import SCHEMA_VERSION, ArticleRecord

FLOW_NAME = "extract-articles"
TASK_NAME = "extract-article"
MAX_CONCURRENCY = 32
TASK_RETRIES = 3  # on top of the openai client's own transport retries (EndpointConfig.transport_retries)
RESULT_FORMAT = "record-json-v2"  # shape of the cached value; part of the cache key
RETRY_BACKOFF_S = float(os.environ.get("NEWS_TASK_RETRY_BACKOFF_S") or 2.0)  # 2, 4, 8 s (+/- 50 % jitter)


# --------------------------------------------------------------------------- cache key


def content_hash(article: Article) -> str:
    """SHA-256 of everything a record is computed from: the text and the file's metadata.

    Only the article's identity fields count (`compare=True`), not bookkeeping such as when it was read.
    """
    values = {f.name: getattr(article, f.name) for f in fields(article) if f.compare}
    canonical = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def cache_key(article: Article, model: str, scope: str = "", strategy: str = "", version: str | None = None) -> str:
    """Content hash + model + strategy + its prompt version + schema version + extractor version (+ flow run, for rerun="all").

    The extractor version (`pipeline.version`) changes with any rule, lexicon, learned artifact or
    prompt, so Prefect's result storage never serves a record made by other code. None: the
    version of the rules or a remote endpoint's run (no embedded model weights).
    """
    parts = [content_hash(article), model, prompt_version(strategy), SCHEMA_VERSION, version or extractor_version(), RESULT_FORMAT, scope, strategy]
    return "extract-" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def article_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return cache_key(
        parameters["article"], parameters["model_label"], parameters.get("cache_scope") or "", parameters.get("strategy") or "", parameters.get("version") or None
    )


# --------------------------------------------------------------------------- retries


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """`retry_condition_fn`: retry only what `pipeline.run.is_transient` calls transient, never a bad answer or a bug."""
    error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(error, BaseException) and is_transient(error)


# --------------------------------------------------------------------------- the task


@task(
    name=TASK_NAME,
    task_run_name="extract {article.source_file}",
    cache_key_fn=article_cache_key,
    persist_result=True,
    result_serializer="json",
    retries=TASK_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=RETRY_BACKOFF_S),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
)
def extract_article(
    article: Article,
    endpoint: EndpointConfig | None,
    model_label: str,
    output_dir: str,
    limits: LlmLimits = NO_LIMITS,
    cache_scope: str = "",
    strategy: Strategy | None = None,
    version: str = "",
) -> dict[str, Any]:
    """Extract one article and write its record (`pipeline.run.extract_and_write`, under the article's lock).

    Returns the record as JSON and the article's outcome: the value Prefect persists and caches.
    A failure raises `pipeline.run.ArticleFailure`, so Prefect can retry it when it is transient.
    """
    llm = GovernedLLM(endpoint, limits) if endpoint is not None else None
    try:
        record, outcome = extract_and_write(
            article, llm, Path(output_dir), model_label=model_label, backend=endpoint.backend if endpoint else RULES_BACKEND,
            slot=lambda: endpoint_slot(limits), logger=get_run_logger(), strategy=strategy, version=version or extractor_version(),
        )  # fmt: skip
    finally:
        if llm is not None:
            llm.close()
    return _handed_over({"record": record.model_dump_json(), "outcome": asdict(outcome)})


# The value a task run just returned, kept in memory for this process's flow: reading it back from
# result storage would cost a file read and a JSON decode per article (the persisted copy is for
# cache hits and for retries of the run).
_HANDOVER: dict[Any, dict[str, Any]] = {}


def _handed_over(value: dict[str, Any]) -> dict[str, Any]:
    context = TaskRunContext.get()
    if context is not None and context.task_run is not None:
        _HANDOVER[context.task_run.id] = value
    return value


# --------------------------------------------------------------------------- helpers


def in_shard(key: str, shard: int, shards: int) -> bool:
    """Stable split of articles across the runs of a backfill: each key belongs to exactly one shard."""
    if shards <= 1:
        return True
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % shards == shard


def settle(future: PrefectFuture[dict[str, Any]], article: Article, output_dir: Path, why: str | None = None) -> ArticleOutcome:
    """The finished task's outcome; writes the record of a cache hit, or the failure record.

    `why`: why the plan sent the article to extraction (`pipeline.run.reuse_decision`).
    """
    future.wait()  # sets the final state locally; no API round trip
    state = future.state
    handed_over = _HANDOVER.pop(future.task_run_id, None)
    if state.is_completed():
        if state.name != "Cached":  # the task wrote the record and summed it up
            value = handed_over if handed_over is not None else state.result()
            return ArticleOutcome(**value["outcome"])
        value = state.result()
        # Served from Prefect's result storage: the task did not run, so the record is written here.
        record = ArticleRecord.model_validate_json(value["record"])
        write_record(output_dir, record)
        return outcome_of(record, "cached", why=f"{why}; result from the Prefect cache" if why else "result from the Prefect cache")
    error = state.result(raise_on_failure=False)
    if isinstance(error, ArticleFailure):
        failure = error
    elif isinstance(error, BaseException):
        failure = ArticleFailure.from_error(error)
    else:
        failure = ArticleFailure(redact(state.message or state.name) or "failed")
    return quarantine(output_dir, article, failure)


def submit_window(concurrency: int) -> int:
    """Task runs submitted and not yet settled at any time: enough that no thread waits for work."""
    return 2 * concurrency + 2


def submit_windowed(
    runner: ThreadPoolTaskRunner, task: Any, articles: Iterable[Article], params: dict[str, Any], *, window: int
) -> Iterator[tuple[PrefectFuture[Any], Article]]:
    """Submit one run of `task` per article (`params` plus the article), at most `window` unsettled at
    a time, and yield each (future, article) as it finishes.

    A finished future holds its state and the record it returned; submitting a whole backfill at once
    would keep every one of them until the run ends (the flow-run process grew by about 20 % between
    1,000 and 10,000 articles). Here the caller settles a future and drops it before the next is
    submitted, so memory stays flat however many articles a run has.
    """
    finished: queue.Queue[PrefectFuture[Any]] = queue.Queue()
    pending: dict[Any, Article] = {}
    remaining = iter(articles)
    while True:
        while len(pending) < window and (article := next(remaining, None)) is not None:
            future = runner.submit(task, {**params, "article": article})
            pending[future.task_run_id] = article
            future.add_done_callback(finished.put)
        if not pending:
            return
        future = finished.get()
        yield future, pending.pop(future.task_run_id)


class ArticleFailures(RuntimeError):
    """Raised at the end of a run (after everything is written) so the run shows as Failed and can be retried."""


# --------------------------------------------------------------------------- the flow


@flow(name=FLOW_NAME, log_prints=True)
def extract_articles(
    input_dir: str = "seeds",
    output_dir: str = "outputs",
    base_url: str | None = None,
    model: str | None = None,
    embedded_model: str = DEFAULT_MODEL,
    rules_only: bool = False,
    strategy: Strategy | None = None,
    rerun: Rerun = "changed",
    concurrency: Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)] = 1,
    llm_max_in_flight: Annotated[int | None, Field(ge=1)] = None,
    llm_requests_per_minute: Annotated[float | None, Field(gt=0)] = None,
    shard: Annotated[int, Field(ge=0)] = 0,
    shards: Annotated[int, Field(ge=1)] = 1,
    fail_on_article_errors: bool = False,
) -> dict:
    """Extract quotes, organisations and CAP policy areas from every article in `input_dir`.

    Args:
        input_dir: Folder of articles (.txt, .md, .html, .jsonl), read recursively. A relative path is relative to the folder the worker or `serve` process runs in.
        output_dir: Where records/, failed/, the JSONL tables and manifest.json are written.
        base_url: OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp, OpenAI...). Empty: the embedded local model, or OpenAI if OPENAI_API_KEY is set. The API key is never a parameter: set NEWS_LLM_API_KEY where the flow runs.
        model: Model name at that endpoint (empty: NEWS_LLM_MODEL, else gpt-4o-mini).
        embedded_model: Which embedded model to run when no endpoint is configured.
        rules_only: Skip the LLM entirely (rule-based baseline, no model calls); the same as strategy "rules".
        strategy: Who extracts. "rules": the rules alone, no model. "assist": the rules extract and the model answers small questions (organisation types, close CAP calls); best for the embedded model. "llm": the model extracts quotes, organisations and policy areas chunk by chunk, and every item is aligned to the text and checked; for capable endpoints. Empty: NEWS_EXTRACTION_STRATEGY where the flow runs, else "llm" with a configured endpoint and "assist" with the embedded model.
        rerun: Re-run policy. "changed" (default) extracts articles with no record, or a record of other text, model, strategy or extractor version (the extraction code and resources, prompts included); "missing" extracts only articles with no record, keeping records of older extractors (for large archives); "all" re-extracts everything.
        concurrency: Articles processed at the same time by this run, so at most this many LLM requests in flight from it. Keep 1 for the embedded model.
        llm_max_in_flight: Cap on LLM requests in flight to this endpoint across all runs and workers (Prefect global concurrency limit `llm:<endpoint>`; set here it is created or updated). Empty: keep what is configured on the server.
        llm_requests_per_minute: Rate limit on LLM requests to this endpoint across all runs and workers (global limit `llm-rate:<endpoint>`). Empty: keep what is configured on the server.
        shard: This run's share of the input when a backfill splits it (0-based).
        shards: How many runs the input is split across (1: no split).
        fail_on_article_errors: Finish the run as Failed when any article failed to extract (after writing everything), so it can be retried from the UI; finished articles are not redone.
    """
    started_at, t0, run_id = datetime.now(UTC).replace(microsecond=0), time.monotonic(), new_run_id()
    logger = get_run_logger()
    if not 0 <= shard < shards:
        raise ValueError(f"shard must be in 0..{shards - 1}, got {shard}")
    config = RunConfig(
        input_dir=Path(input_dir),
        output_dir=Path(output_dir),
        endpoint=EndpointConfig.from_env(base_url=base_url, model=model),
        embedded_model=embedded_model,
        rules_only=rules_only,
        rerun=rerun,
        strategy=strategy,
    )
    plan = plan_run(config)
    todo = [a for a in plan.todo if in_shard(a.id, shard, shards)]
    outcomes = [o for o in plan.done if in_shard(o.article_id or o.source_file, shard, shards)]
    logger.info(
        "%s: %d to extract, %d up to date, %d unreadable%s (model %s, concurrency %d)",
        input_dir, len(todo), sum(o.status == "cached" for o in outcomes), sum(o.status == "failed" for o in outcomes),
        f", shard {shard + 1}/{shards}" if shards > 1 else "", config.model_label, concurrency,
    )  # fmt: skip
    limits = NO_LIMITS
    if todo:
        with open_endpoint(config) as endpoint:
            if endpoint is not None:
                key = endpoint_key(endpoint, config.embedded_model)
                limits = configure_limits(key, max_in_flight=llm_max_in_flight, requests_per_minute=llm_requests_per_minute)
                logger.info("Endpoint %s (%s); LLM limits: %s", safe_url(endpoint.base_url) or "default", key, limits.describe())
            scope = _flow_run_scope() if rerun == "all" else ""
            try:
                with ThreadPoolTaskRunner(max_workers=concurrency) as runner:
                    params = {
                        "endpoint": endpoint, "model_label": config.model_label, "output_dir": str(config.output_dir),
                        "limits": limits, "cache_scope": scope, "strategy": config.strategy, "version": config.extractor_version,
                    }  # fmt: skip
                    for future, article in submit_windowed(runner, extract_article, todo, params, window=submit_window(concurrency)):
                        outcomes.append(plan.decided(settle(future, article, config.output_dir, plan.why.get(article.id))))
            finally:
                if limits.concurrency:
                    release_held_slots()  # the in-flight slots the process kept for its next article go back to the server
    manifest = finish_run(config, outcomes, run_id=run_id, started_at=started_at, seconds=time.monotonic() - t0, output_links=plan.output_links)
    publish_artifacts(manifest, limits, shard=shard, shards=shards)
    failed = [o for o in outcomes if o.status == "failed" and o.article_id is not None]
    print(
        f"Run {run_id}: {manifest['records_written']} extracted, {manifest['records_cached']} up to date, "
        f"{len(manifest['failures'])} failed; records in {config.output_dir / RECORDS_DIR}"
    )
    if failed and fail_on_article_errors:
        raise ArticleFailures(
            f"{len(failed)} of {len(outcomes)} articles failed to extract (first: {failed[0].source_file}: {failed[0].reason}); "
            "everything else is written; retry the run to redo only the failed articles"
        )
    return manifest


def _flow_run_scope() -> str:
    from prefect.runtime import flow_run

    return f"run-{flow_run.id}"
