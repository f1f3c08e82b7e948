"""A batch run as plain functions: plan, process each article, finish.

The Prefect flow (flows/extract_flow.py) and the `--engine plain` CLI path call
exactly these functions; nothing here imports Prefect.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pipeline.backends.model_store import DEFAULT_MODEL
from pipeline.extract import PROMPT_VERSION
from pipeline.ingest import Article, IngestFailure, read_articles
from pipeline.llm import EndpointConfig, StructuredLLM
from pipeline.process import RULES_BACKEND, extract_record
from pipeline.write import MANIFEST, load_record, rebuild_tables, record_path, write_failure, write_json_atomic, write_record
from schemas.records import SCHEMA_VERSION, FailureRecord, TokenUsage

log = logging.getLogger(__name__)

Rerun = Literal["missing", "all"]
Status = Literal["extracted", "cached", "failed"]


@dataclass(frozen=True)
class RunConfig:
    input_dir: Path
    output_dir: Path
    endpoint: EndpointConfig | None = None  # None: the embedded local model
    embedded_model: str = DEFAULT_MODEL
    rules_only: bool = False  # the rule-based baseline, no model at all
    rerun: Rerun = "missing"

    @property
    def model_label(self) -> str:
        if self.rules_only:
            return "none"
        return self.endpoint.model if self.endpoint else self.embedded_model


@dataclass
class ArticleOutcome:
    source_file: str
    article_id: str | None
    status: Status
    quotes: int = 0
    organisations: int = 0
    cap_codes: list[int] = field(default_factory=list)
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reason: str | None = None


@dataclass
class RunPlan:
    todo: list[Article]
    done: list[ArticleOutcome]  # cached records and ingest failures


def safe_url(url: str | None) -> str | None:
    """An endpoint URL without credentials or query string, fit for logs and manifests."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_current(config: RunConfig, article: Article) -> ArticleOutcome | None:
    """The outcome of a stored record that this run can reuse: same text, model, prompt and schema."""
    record = load_record(record_path(config.output_dir, article.id))
    if record is None or record.article.text != article.text:
        return None
    p = record.provenance
    if (p.model, p.prompt_version, p.schema_version) != (config.model_label, PROMPT_VERSION, SCHEMA_VERSION):
        return None
    return _outcome(record, "cached")


def plan_run(config: RunConfig) -> RunPlan:
    articles, failures = read_articles(config.input_dir)
    done = [_ingest_failure(config, f) for f in failures]
    todo: list[Article] = []
    for article in articles:
        cached = is_current(config, article) if config.rerun == "missing" else None
        if cached is not None:
            done.append(cached)
        else:
            todo.append(article)
    log.info("%d articles in %s: %d to extract, %d up to date, %d unreadable", len(articles) + len(failures), config.input_dir, len(todo), len(articles) - len(todo), len(failures))
    return RunPlan(todo=todo, done=done)


def _ingest_failure(config: RunConfig, failure: IngestFailure) -> ArticleOutcome:
    write_failure(
        config.output_dir,
        FailureRecord(source_file=failure.source_file, stage="ingest", reason=failure.reason, failed_at=datetime.now(UTC).replace(microsecond=0)),
    )
    return ArticleOutcome(source_file=failure.source_file, article_id=None, status="failed", reason=failure.reason)


def _outcome(record, status: Status) -> ArticleOutcome:  # noqa: ANN001 - ArticleRecord
    return ArticleOutcome(
        source_file=record.article.source_file,
        article_id=record.article.id,
        status=status,
        quotes=len(record.quotes),
        organisations=len(record.organisations),
        cap_codes=[a.code for a in record.policy_areas],
        seconds=record.provenance.seconds if status == "extracted" else 0.0,
        prompt_tokens=record.provenance.usage.prompt_tokens if status == "extracted" else 0,
        completion_tokens=record.provenance.usage.completion_tokens if status == "extracted" else 0,
    )


def process_article(article: Article, endpoint: EndpointConfig | None, output_dir: Path, *, model_label: str) -> ArticleOutcome:
    """Extract, validate and write one article; a failure is written, never raised."""
    log.info("Extracting %s (%s, %d chars)", article.source_file, article.id, len(article.text))
    llm = StructuredLLM(endpoint) if endpoint is not None else None
    try:
        record = extract_record(article, llm, model=model_label, backend=endpoint.backend if endpoint else RULES_BACKEND)
        write_record(output_dir, record)
    except Exception as error:  # noqa: BLE001 - any failure of one article is recorded, the batch goes on
        reason = f"{type(error).__name__}: {error}"
        log.warning("Failed %s: %s", article.source_file, reason)
        usage = llm.meter.usage if llm else TokenUsage()
        write_failure(
            output_dir,
            FailureRecord(
                source_file=article.source_file,
                article_id=article.id,
                stage="extract",
                reason=reason[:2000],
                attempts=usage.calls,
                last_model_output=llm.last_raw_output if llm else None,
                failed_at=datetime.now(UTC).replace(microsecond=0),
            ),
        )
        return ArticleOutcome(article.source_file, article.id, "failed", reason=reason[:500], prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
    log.info("Wrote %s: %d quotes, %d organisations, CAP %s in %.1f s", article.source_file, len(record.quotes), len(record.organisations), [a.code for a in record.policy_areas], record.provenance.seconds)
    return _outcome(record, "extracted")


@contextlib.contextmanager
def open_endpoint(config: RunConfig) -> Iterator[EndpointConfig | None]:
    """The configured remote endpoint, the embedded server (started here), or None for rules only."""
    if config.rules_only:
        yield None
    elif config.endpoint is not None:
        yield config.endpoint
    else:
        from pipeline.backends.llama_server import embedded_endpoint  # heavy: only when used

        with embedded_endpoint(config.embedded_model) as endpoint:
            yield endpoint


def finish_run(config: RunConfig, outcomes: list[ArticleOutcome], *, run_id: str, started_at: datetime, seconds: float) -> dict:
    tables = rebuild_tables(config.output_dir)
    endpoint = config.endpoint
    manifest = {
        "run_id": run_id,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "seconds": round(seconds, 2),
        "input_dir": str(config.input_dir),
        "output_dir": str(config.output_dir),
        "model": config.model_label,
        "backend": RULES_BACKEND if config.rules_only else (endpoint.backend if endpoint else "embedded-llama.cpp"),
        "endpoint": safe_url(endpoint.base_url) if endpoint else None,
        "prompt_version": PROMPT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "inputs_seen": len(outcomes),
        "records_written": sum(o.status == "extracted" for o in outcomes),
        "records_cached": sum(o.status == "cached" for o in outcomes),
        "failures": [{"source_file": o.source_file, "article_id": o.article_id, "reason": o.reason} for o in outcomes if o.status == "failed"],
        "usage": {
            "prompt_tokens": sum(o.prompt_tokens for o in outcomes),
            "completion_tokens": sum(o.completion_tokens for o in outcomes),
        },
        "tables": tables,
        "articles": [asdict(o) for o in sorted(outcomes, key=lambda o: o.source_file)],
    }
    write_json_atomic(config.output_dir / "runs" / f"{run_id}.json", manifest)
    write_json_atomic(config.output_dir / MANIFEST, manifest)
    return manifest


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def run_batch(config: RunConfig, *, on_article: callable | None = None) -> dict:  # type: ignore[valid-type]
    """The whole run without Prefect: used by `--engine plain`, tests and benchmarks."""
    started_at, t0, run_id = datetime.now(UTC).replace(microsecond=0), time.monotonic(), new_run_id()
    plan = plan_run(config)
    outcomes = list(plan.done)
    if plan.todo:
        with open_endpoint(config) as endpoint:
            for article in plan.todo:
                outcome = process_article(article, endpoint, config.output_dir, model_label=config.model_label)
                outcomes.append(outcome)
                if on_article is not None:
                    on_article(outcome)
    return finish_run(config, outcomes, run_id=run_id, started_at=started_at, seconds=time.monotonic() - t0)
