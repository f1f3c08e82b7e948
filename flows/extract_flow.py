"""The extraction flow: read the input folder, one task run per article, write the run's outputs.

Thin on purpose: planning, extraction, writing and the manifest are the plain
functions of `pipeline.run`, `pipeline.process` and `pipeline.write`; this
module adds only what Prefect is for:

* one task run per article (`extract-article`), retried with exponential
  backoff when the LLM endpoint fails transiently (connection errors,
  timeouts, 429, 5xx) and never for anything else;
* content-addressed caching: the cache key is the article's content hash plus
  model, prompt version and schema version (never a client object), and the
  cached value is the validated record, persisted in Prefect's result storage.
  A run over unchanged input makes no LLM calls; a failed run retried from the
  UI reuses every article that finished (with ``rerun="all"`` the key is also
  scoped to the flow run, so a new run re-extracts but its retry does not);
* per-endpoint global concurrency and rate limits on LLM calls
  (`flows.llm_limits`);
* a table artifact and a markdown summary per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import openai
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff
from pydantic import Field

from flows.llm_limits import NO_LIMITS, GovernedLLM, LlmLimits, configure_limits, endpoint_key, endpoint_slot
from pipeline.backends.model_store import DEFAULT_MODEL
from pipeline.extract import PROMPT_VERSION
from pipeline.ingest import Article
from pipeline.llm import EndpointConfig, EndpointUnavailable, LLMError, redact
from pipeline.process import RULES_BACKEND, extract_record
from pipeline.run import ArticleOutcome, Rerun, RunConfig, finish_run, new_run_id, open_endpoint, plan_run, safe_url
from pipeline.write import MANIFEST, RECORDS_DIR, TABLES, article_lock, load_record, record_path, write_failure, write_record
from schemas.records import SCHEMA_VERSION, ArticleRecord, FailureRecord

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


def cache_key(article: Article, model: str, scope: str = "") -> str:
    """Content hash + model + prompt version + schema version (+ flow run, for rerun="all")."""
    parts = [content_hash(article), model, PROMPT_VERSION, SCHEMA_VERSION, RESULT_FORMAT, scope]
    return "extract-" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def article_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return cache_key(parameters["article"], parameters["model_label"], parameters.get("cache_scope") or "")


# --------------------------------------------------------------------------- retries


class ArticleExtractionError(RuntimeError):
    """One article could not be extracted; carries what its failure record needs."""

    stage: str = "extract"
    attempts: int = 0
    last_model_output: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _error_chain(error: BaseException | None) -> list[BaseException]:
    chain: list[BaseException] = []
    while error is not None and all(error is not seen for seen in chain):
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def is_transient(error: BaseException | None) -> bool:
    """A failure worth retrying later: the endpoint was unreachable, slow, rate-limited or erroring (5xx).

    Never a bad answer (the model was asked again with the errors already), a spent token
    budget, or a bug: retrying those would only cost more.
    """
    for e in _error_chain(error):
        if isinstance(e, EndpointUnavailable):  # transport failures that outlasted the client's own retries
            return True
        if isinstance(e, openai.APIConnectionError | openai.RateLimitError | openai.InternalServerError):
            return True  # APITimeoutError is an APIConnectionError
        if isinstance(e, openai.APIStatusError) and (e.status_code in (408, 409, 429) or e.status_code >= 500):
            return True
        if isinstance(e, ConnectionError | TimeoutError):
            return True
    return False


def failure_stage_reason(error: BaseException) -> tuple[str, str]:
    """The failure record's stage and one readable, redacted line of why (as `pipeline.run` writes them)."""
    if isinstance(error, LLMError):
        stage, reason = error.stage, str(error)
    elif isinstance(error, ValueError) and "record is not grounded" in str(error):
        stage, reason = "validate", f"{type(error).__name__}: {error}"
    else:
        stage, reason = "extract", f"{type(error).__name__}: {error}"
    return stage, redact(reason) or type(error).__name__


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """`retry_condition_fn`: retry only transient endpoint errors, never a bad answer or a bug."""
    error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(error, BaseException) and is_transient(error)


# --------------------------------------------------------------------------- the task


def reusable_record(output_dir: Path, article: Article, model_label: str) -> ArticleRecord | None:
    """A record of this article that another run wrote while this one waited for the article's lock."""
    path = record_path(output_dir, article.id)
    record = load_record(path)
    if record is None or record.article.text != article.text:
        return None
    p = record.provenance
    if (p.model, p.prompt_version, p.schema_version) != (model_label, PROMPT_VERSION, SCHEMA_VERSION):
        return None
    try:
        return record if path.stat().st_mtime >= article.read_at else None
    except OSError:
        return None


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
) -> dict[str, Any]:
    """Extract one article and write its record.

    Returns the record as JSON and the article's outcome: the value Prefect persists and caches.

    Like `pipeline.run.process_article`, it holds the article's lock in the output folder, so a
    concurrent run never extracts the same article twice there: a record written meanwhile is reused.
    """
    logger = get_run_logger()
    out = Path(output_dir)
    with article_lock(out, article.id):
        done = reusable_record(out, article, model_label)
        if done is not None:
            logger.info("%s was extracted by another run meanwhile; reusing its record", article.source_file)
            return _handed_over({"record": done.model_dump_json(), "outcome": asdict(_outcome(done, "cached"))})
        logger.info("Extracting %s (%s, %d chars) with %s", article.source_file, article.id, len(article.text), model_label)
        llm = GovernedLLM(endpoint, limits) if endpoint is not None else None
        try:
            with endpoint_slot(limits):
                record = extract_record(article, llm, model=model_label, backend=endpoint.backend if endpoint else RULES_BACKEND)
        except Exception as error:
            stage, reason = failure_stage_reason(error)
            failure = ArticleExtractionError(reason[:2000])
            failure.stage = stage
            if llm is not None:
                failure.attempts = llm.http_attempts
                failure.last_model_output = (redact(llm.last_raw_output) or "")[:4000] or None
                failure.prompt_tokens = llm.meter.usage.prompt_tokens
                failure.completion_tokens = llm.meter.usage.completion_tokens
            transient = is_transient(error)
            logger.warning("Failed %s (%s): %s%s", article.source_file, stage, reason[:500], " - transient, will retry if attempts remain" if transient else "")
            raise failure from error
        finally:
            if llm is not None:
                llm.close()
        try:
            write_record(out, record)
        except OSError as error:
            failure = ArticleExtractionError(f"could not write the record: {error}")
            failure.stage = "write"
            raise failure from error
    logger.debug(  # the table artifact has these figures; one INFO line per article keeps logging cheap
        "Extracted %s: %d quotes, %d organisations, CAP %s in %.2f s",
        article.source_file, len(record.quotes), len(record.organisations), [a.code for a in record.policy_areas], record.provenance.seconds,
    )  # fmt: skip
    return _handed_over({"record": record.model_dump_json(), "outcome": asdict(_outcome(record, "extracted"))})


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


def _outcome(record: ArticleRecord, status: str) -> ArticleOutcome:
    fresh = status == "extracted"
    return ArticleOutcome(
        source_file=record.article.source_file,
        article_id=record.article.id,
        status=status,  # type: ignore[arg-type]
        quotes=len(record.quotes),
        organisations=len(record.organisations),
        cap_codes=[a.code for a in record.policy_areas],
        seconds=record.provenance.seconds if fresh else 0.0,
        prompt_tokens=record.provenance.usage.prompt_tokens if fresh else 0,
        completion_tokens=record.provenance.usage.completion_tokens if fresh else 0,
    )


def settle(future: PrefectFuture[dict[str, Any]], article: Article, output_dir: Path) -> ArticleOutcome:
    """The finished task's outcome; writes the record of a cache hit, or the failure record."""
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
        return _outcome(record, "cached")
    error = state.result(raise_on_failure=False)
    if isinstance(error, ArticleExtractionError):
        stage, reason = error.stage, str(error)
    elif isinstance(error, BaseException):
        stage, reason = failure_stage_reason(error)
    else:
        stage, reason = "extract", redact(state.message or state.name) or "failed"
    failure = FailureRecord(
        source_file=article.source_file,
        article_id=article.id,
        stage=stage,  # type: ignore[arg-type]
        reason=reason[:2000],
        attempts=getattr(error, "attempts", 0),
        last_model_output=getattr(error, "last_model_output", None),
        failed_at=datetime.now(UTC).replace(microsecond=0),
    )
    try:
        failure_file: str | None = write_failure(output_dir, failure).relative_to(output_dir).as_posix()
    except OSError as write_error:  # e.g. a full disk: report it in the manifest, keep the run going
        get_run_logger().error("Could not write the failure record for %s: %s", article.source_file, write_error)
        failure_file = None
    return ArticleOutcome(
        article.source_file, article.id, "failed", reason=reason[:500],
        prompt_tokens=getattr(error, "prompt_tokens", 0), completion_tokens=getattr(error, "completion_tokens", 0),
        stage=stage, attempts=getattr(error, "attempts", 0), failure_file=failure_file,
    )  # fmt: skip


def _artifact_key(*parts: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:100]


def publish_artifacts(manifest: dict[str, Any], limits: LlmLimits, *, shard: int, shards: int) -> None:
    """A table (one row per article) and a markdown summary; keyed per deployment, so each run adds a version."""
    from prefect.runtime import deployment

    scope = deployment.name or "local"
    rows = [
        {
            "article": a["source_file"],
            "status": a["status"],
            "quotes": a["quotes"],
            "organisations": a["organisations"],
            "cap_codes": ", ".join(str(c) for c in a["cap_codes"]),
            "seconds": round(a["seconds"], 2),
            "tokens": a["prompt_tokens"] + a["completion_tokens"],
        }
        for a in manifest["articles"]
    ]
    create_table_artifact(
        table=rows,
        key=_artifact_key("extraction-articles", scope),
        description=f"Run {manifest['run_id']}: one row per article (status, quotes, organisations, CAP codes, seconds, tokens).",
    )
    create_markdown_artifact(
        markdown=summary_markdown(manifest, limits, shard=shard, shards=shards),
        key=_artifact_key("extraction-summary", scope),
        description=f"Run {manifest['run_id']}: totals, failures, where the records are.",
    )


def summary_markdown(manifest: dict[str, Any], limits: LlmLimits, *, shard: int = 0, shards: int = 1) -> str:
    out = Path(manifest["output_dir"]).resolve()
    failures = manifest["failures"]
    usage = manifest["usage"]
    lines = [
        f"# Extraction run `{manifest['run_id']}`",
        "",
        "| Run | |",
        "|---|---|",
        f"| Input | `{Path(manifest['input_dir']).resolve()}`" + (f" (shard {shard + 1} of {shards})" if shards > 1 else "") + " |",
        f"| Articles | {manifest['inputs_seen']} seen: **{manifest['records_written']} extracted**, {manifest['records_cached']} up to date or cached, **{len(failures)} failed** |",
        f"| Model | `{manifest['model']}` ({manifest['backend']}" + (f", `{manifest['endpoint']}`" if manifest.get("endpoint") else "") + ") |",
        f"| Prompt / schema | `{manifest['prompt_version']}` / `{manifest['schema_version']}` |",
        f"| Tokens | {usage['prompt_tokens']:,} prompt + {usage['completion_tokens']:,} completion |",
        f"| Seconds | {manifest['seconds']:.1f} |",
        f"| LLM limits | {limits.describe()} |",
        "",
        "## Failures",
        "",
    ]
    if failures:
        lines += [
            f"- `{f['source_file']}`" + (f" ({f['stage']})" if f.get("stage") else "") + f": {str(f['reason']).replace(chr(10), ' ')[:300]}"
            for f in failures
        ]
        lines += ["", f"Failure records (with the model's last output) are in `{out / 'failed'}`."]
    else:
        lines.append("None.")
    lines += [
        "",
        "## Where the records are",
        "",
        f"- one JSON record per article: `{out / RECORDS_DIR}/<article id>.json`",
        *[f"- table: `{out / name}` ({manifest['tables'].get(name, 0)} rows)" for name in TABLES],
        f"- this run's manifest: `{out / 'runs' / (manifest['run_id'] + '.json')}` (latest: `{out / MANIFEST}`)",
    ]
    return "\n".join(lines) + "\n"


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
    rerun: Rerun = "missing",
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
        rules_only: Skip the LLM entirely (rule-based baseline, no model calls).
        rerun: Re-run policy. "missing" extracts only articles without a current record (same text, model, prompt and schema); "all" re-extracts everything.
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
            with ThreadPoolTaskRunner(max_workers=concurrency) as runner:
                submitted = {}
                for article in todo:
                    params = {
                        "article": article, "endpoint": endpoint, "model_label": config.model_label,
                        "output_dir": str(config.output_dir), "limits": limits, "cache_scope": scope,
                    }  # fmt: skip
                    future = runner.submit(extract_article, params)
                    submitted[future.task_run_id] = (future, article)
                for future in as_completed([f for f, _ in submitted.values()]):
                    outcomes.append(settle(future, submitted[future.task_run_id][1], config.output_dir))
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
