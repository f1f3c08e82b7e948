"""A batch run as plain functions: plan, process each article, finish.

The Prefect flow (flows/extract_flow.py) and the `--engine plain` CLI path call
exactly these functions; nothing here imports Prefect. What lives here, one
place per decision:

* `reuse_decision`: whether an article's stored record is reused, and why
  (re-run policy `changed`, `missing` or `all`; text, model, strategy and
  extractor version, `pipeline.version`). `plan_run` and the dry run
  (`plan_rows`) both ask it.
* `extract_and_write`: one article under its lock (the plain engine's
  `process_article` and the flow's task both call it).
* `classify_failure` / `is_transient`: what an article's failure was (stage,
  redacted reason) and whether it is worth retrying; the flow only adds
  Prefect's retry on top. `quarantine` writes the failure record.
* `finish_run`: tables, registry, manifest and the review page
  (`pipeline.review`); terminal output is `pipeline.terminal`, Prefect
  artifacts `flows.artifacts`.

Reliability contract:

* `RunConfig` resolves its folders and refuses any outside the allowed roots
  (`pipeline.paths`, env NEWS_RECORDS_ROOTS). Input links are not followed
  unless the operator allows it; links where the run's own output entries
  belong are moved aside and listed in the manifest (`output_links`).
* `process_article` never raises: an article that cannot be extracted gets a
  quarantine record in `failed/` (source file, article id, stage, reason, last
  raw model output, attempts, tokens) and a failed outcome; the batch goes on.
* Records are the cache: a later run skips every article with a current
  record, so it retries exactly what failed or was never reached; a record of
  another extractor version is re-extracted (or kept with rerun="missing").
* Crashes: all files are published atomically; `plan_run` removes temporary
  files left by killed writers; tables and registry are derived from records,
  never appended: incrementally from the records changed since the state in
  `.locks/state/` was written, from every record when that state is missing or
  does not match the files (a crash between the writes).
* Concurrent runs on the same folders: per-article and output-folder `flock`
  locks (see `pipeline.write`); an article extracted by another run while this
  one waited is reused, not redone.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import openai

from pipeline.backends.model_store import DEFAULT_MODEL
from pipeline.ingest import Article, IngestFailure, read_articles
from pipeline.llm import EndpointConfig, EndpointUnavailable, LLMError, StructuredLLM
from pipeline.paths import confine, links_allowed
from pipeline.registry import MERGES, ORGANISATIONS, SPEAKERS, update_registry
from pipeline.review import REVIEW_PAGE, write_review_page
from pipeline.process import RULES_BACKEND, extract_record
from pipeline.strategy import Strategy, prompt_version, resolve_strategy
from pipeline.version import UNVERSIONED, extractor_components, extractor_version
from pipeline.write import (
    FAILED_DIR,
    LOCKS_DIR,
    MANIFEST,
    RECORDS_DIR,
    RUNS_DIR,
    SUPERSEDED_DIR,
    TABLES,
    article_lock,
    load_record,
    move_aside_links,
    output_lock,
    record_catalogue,
    record_path,
    redact,
    remove_stale_temp_files,
    supersede_records,
    update_tables,
    write_failure,
    write_json_atomic,
    write_record,
)
from schemas.records import SCHEMA_VERSION, ArticleRecord, FailureRecord

log = logging.getLogger(__name__)

# changed: extract what has no record, or a record from other text, another model or another extractor
# version (the default); missing: extract only what has no record, keeping records of older extractors
# (large archives); all: extract everything again.
Rerun = Literal["changed", "missing", "all"]
RERUN_POLICIES: tuple[str, ...] = ("changed", "missing", "all")
Status = Literal["extracted", "cached", "failed"]


@dataclass(frozen=True)
class RunConfig:
    input_dir: Path
    output_dir: Path
    endpoint: EndpointConfig | None = None  # None: the embedded local model
    embedded_model: str = DEFAULT_MODEL
    rules_only: bool = False  # the rule-based baseline, no model at all
    rerun: Rerun = "changed"
    # Follow symbolic links in the input folder: an operator's choice only (--follow-links, or
    # NEWS_RECORDS_FOLLOW_LINKS=1 where the worker runs); None reads that environment variable.
    follow_links: bool | None = None
    # rules, assist or llm (pipeline/strategy.py); None: NEWS_EXTRACTION_STRATEGY, else the endpoint's default.
    strategy: Strategy | None = None

    def __post_init__(self) -> None:
        strategy = resolve_strategy(self.strategy, rules_only=self.rules_only, remote=self.endpoint is not None)
        object.__setattr__(self, "strategy", strategy)
        object.__setattr__(self, "rules_only", strategy == "rules")
        # Folders can come from the Prefect UI: resolve them and keep them inside the allowed roots.
        object.__setattr__(self, "input_dir", confine(self.input_dir, what="input folder"))
        object.__setattr__(self, "output_dir", confine(self.output_dir, what="output folder"))
        if self.follow_links is None:
            object.__setattr__(self, "follow_links", links_allowed())
        if self.rerun not in RERUN_POLICIES:
            raise ValueError(f"rerun must be one of {', '.join(RERUN_POLICIES)}, not {self.rerun!r}")

    @property
    def extractor_embedded_model(self) -> str | None:
        """The embedded model whose weights count in the extractor version (None: rules only or a remote endpoint)."""
        return self.embedded_model if not self.rules_only and self.endpoint is None else None

    @property
    def extractor_version(self) -> str:
        """The version of the code and resources this run extracts with (`pipeline.version`)."""
        return extractor_version(self.extractor_embedded_model)

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
    stage: str | None = None  # failed outcomes: ingest, extract, validate or write
    attempts: int = 0  # failed outcomes: HTTP attempts made for the article
    failure_file: str | None = None  # failed outcomes: the quarantine record, relative to the output folder
    why: str | None = None  # why the article was (re-)extracted or not: "up to date", "extractor changed (A -> B)"...
    model_items: dict | None = None  # llm strategy: model-proposed items kept, merged, dropped (record provenance)


@dataclass
class RunPlan:
    todo: list[Article]
    done: list[ArticleOutcome]  # cached records and ingest failures
    output_links: list[dict[str, str]] = field(default_factory=list)  # links moved aside in the output folder
    why: dict[str, str] = field(default_factory=dict)  # article id -> why it is to be extracted

    def decided(self, outcome: ArticleOutcome) -> ArticleOutcome:
        """`outcome` of an article of `todo`, with why it was extracted (unless it says already)."""
        if outcome.why is None and outcome.article_id in self.why:
            outcome.why = self.why[outcome.article_id]
        return outcome


# Every entry of the output folder that a run reads or writes: a link in their place is moved aside.
OUTPUT_ENTRIES = (RECORDS_DIR, FAILED_DIR, SUPERSEDED_DIR, RUNS_DIR, LOCKS_DIR, *TABLES, ORGANISATIONS, SPEAKERS, MERGES, MANIFEST, REVIEW_PAGE)


def safe_url(url: str | None) -> str | None:
    """An endpoint URL without credentials or query string, fit for logs and manifests."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def reuse_decision(
    output_dir: Path, article: Article, *, model_label: str, version: str, rerun: Rerun, strategy: str | None = None
) -> tuple[ArticleRecord | None, str]:
    """The one place that decides whether an article's stored record is reused: (record or None, why).

    `changed` (default) reuses a record of the same text, model, strategy and extractor version
    (which covers prompts and the record schema: they are part of the extraction code);
    `missing` reuses any record of the same text (keeping records of older extractors);
    `all` reuses nothing.
    """
    if rerun == "all":
        return None, "rerun all"
    record = load_record(record_path(output_dir, article.id))
    if record is None:
        return None, "new: no record yet"
    if record.article.text != article.text:
        return None, "text changed"
    made_by = record.provenance.extractor_version or UNVERSIONED
    if rerun == "missing":
        same = (made_by, record.provenance.model) == (version, model_label) and strategy in (None, record.provenance.strategy)
        return record, "up to date" if same else f"kept: made by extractor {made_by} (rerun=missing)"
    if record.provenance.model != model_label:
        return None, f"model changed ({record.provenance.model} -> {model_label})"
    if strategy is not None and record.provenance.strategy != strategy:
        return None, f"strategy changed ({record.provenance.strategy} -> {strategy})"
    if made_by != version:
        return None, f"extractor changed ({made_by} -> {version})"
    return record, "up to date"


def _decision_kind(why: str | None) -> str:
    """The category of a decision, for counts: "extractor changed", "kept", "up to date"..."""
    return (why or "").split(":")[0].split(" (")[0]


def is_current(config: RunConfig, article: Article) -> ArticleOutcome | None:
    """The outcome of a stored record that this run reuses (see `reuse_decision`), or None to extract."""
    record, why = reuse_decision(
        config.output_dir, article, model_label=config.model_label, version=config.extractor_version, rerun=config.rerun, strategy=config.strategy
    )
    return outcome_of(record, "cached", why=why) if record is not None else None


def plan_run(config: RunConfig) -> RunPlan:
    output_links = move_aside_links(config.output_dir, OUTPUT_ENTRIES, tag=_now().strftime("%Y%m%dT%H%M%SZ")) if config.output_dir.is_dir() else []
    remove_stale_temp_files(config.output_dir)
    articles, failures = read_articles(config.input_dir, follow_links=bool(config.follow_links))
    plan_why: dict[str, str] = {}
    done = [_ingest_failure(config, f) for f in failures]
    todo: list[Article] = []
    version = config.extractor_version
    for article in articles:
        record, why = reuse_decision(config.output_dir, article, model_label=config.model_label, version=version, rerun=config.rerun, strategy=config.strategy)
        if record is not None:
            done.append(outcome_of(record, "cached", why=why))
        else:
            todo.append(article)
            plan_why[article.id] = why
    log.info("%d articles in %s: %d to extract, %d up to date, %d unreadable", len(articles) + len(failures), config.input_dir, len(todo), len(articles) - len(todo), len(failures))
    return RunPlan(todo=todo, done=done, output_links=output_links, why=plan_why)


def plan_rows(config: RunConfig) -> list[dict[str, Any]]:
    """What a run with `config` would do, per input, without writing anything (`--dry-run`)."""
    articles, failures = read_articles(config.input_dir, follow_links=bool(config.follow_links))
    rows = []
    version = config.extractor_version
    for article in articles:
        record, why = reuse_decision(config.output_dir, article, model_label=config.model_label, version=version, rerun=config.rerun, strategy=config.strategy)
        rows.append({"source_file": article.source_file, "article_id": article.id, "chars": len(article.text), "action": "up to date" if record else "extract", "reason": None if why == "up to date" else why})
    rows += [{"source_file": f.source_file, "article_id": None, "chars": None, "action": "unreadable", "reason": f.reason} for f in failures]
    return sorted(rows, key=lambda r: r["source_file"])


def _ingest_failure(config: RunConfig, failure: IngestFailure) -> ArticleOutcome:
    record = FailureRecord(source_file=failure.source_file, stage="ingest", reason=failure.reason, failed_at=_now())
    return ArticleOutcome(
        source_file=failure.source_file, article_id=None, status="failed", reason=failure.reason,
        stage="ingest", failure_file=_quarantine(config.output_dir, record),
    )  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _quarantine(output_dir: Path, failure: FailureRecord) -> str | None:
    """Write a failure record; returns its path relative to the output folder (None if it could not be written)."""
    try:
        path = write_failure(output_dir, failure)
    except OSError as error:  # e.g. a full disk: report in the manifest, keep the batch going
        log.error("Could not write the failure record for %s: %s", failure.source_file, error.strerror or error)
        return None
    return path.relative_to(output_dir).as_posix()


def outcome_of(record: ArticleRecord, status: Status, *, why: str | None = None) -> ArticleOutcome:
    """An extracted or reused record summed up as the run's outcome for its article."""
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
        model_items=record.provenance.model_items.model_dump() if record.provenance.model_items else None,
        why=why,
    )


# --------------------------------------------------------------------------- failures: one classifier


@dataclass(frozen=True)
class FailureClass:
    """What an article's exception means: the failure record's stage and reason, and whether to retry."""

    stage: str  # extract, validate or write
    reason: str  # one readable line, credentials redacted
    transient: bool  # the endpoint was unreachable, slow, rate-limited or erroring: worth retrying later


def _error_chain(error: BaseException | None) -> list[BaseException]:
    chain: list[BaseException] = []
    while error is not None and all(error is not seen for seen in chain):
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def is_transient(error: BaseException | None) -> bool:
    """A failure worth retrying later: the endpoint was unreachable, slow, rate-limited or erroring (5xx).

    Never a bad answer (the model was asked again with the errors already), a spent token
    budget, or a bug: retrying those would only cost more. Looks through wrapped causes.
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


def classify_failure(error: BaseException, *, stage: str = "extract") -> FailureClass:
    """The one place that decides what an article's failure was: stage, readable redacted reason, transient or not.

    `stage` is where it happened as far as the caller knows (extract or write); an LLM error
    knows its own stage, and a record that failed its grounding check is a `validate` failure.
    """
    if isinstance(error, ArticleFailure):
        return FailureClass(error.stage, str(error), error.transient or is_transient(error))
    if isinstance(error, LLMError):
        stage, reason = error.stage, str(error)
    elif isinstance(error, ValueError) and stage == "extract" and "record is not grounded" in str(error):
        stage, reason = "validate", f"{type(error).__name__}: {error}"
    else:
        reason = f"{type(error).__name__}: {error}"
    return FailureClass(stage, redact(reason) or type(error).__name__, is_transient(error))


class ArticleFailure(RuntimeError):
    """One article could not be extracted; carries what its failure record needs (raised from the cause)."""

    stage: str = "extract"
    transient: bool = False
    attempts: int = 0
    last_model_output: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @classmethod
    def from_error(cls, error: BaseException, llm: StructuredLLM | None = None, *, stage: str = "extract") -> ArticleFailure:
        kind = classify_failure(error, stage=stage)
        failure = cls(kind.reason[:2000])
        failure.stage, failure.transient = kind.stage, kind.transient
        if llm is not None:
            failure.attempts = llm.http_attempts
            failure.last_model_output = (redact(llm.last_raw_output) or "")[:4000] or None
            failure.prompt_tokens = llm.meter.usage.prompt_tokens
            failure.completion_tokens = llm.meter.usage.completion_tokens
        return failure


def quarantine(output_dir: Path, article: Article, failure: ArticleFailure) -> ArticleOutcome:
    """Write the article's failure record to `failed/` and return its failed outcome (never raises)."""
    record = FailureRecord(
        source_file=article.source_file, article_id=article.id, stage=failure.stage,  # type: ignore[arg-type]
        reason=str(failure)[:2000], attempts=failure.attempts, last_model_output=failure.last_model_output, failed_at=_now(),
    )  # fmt: skip
    return ArticleOutcome(
        article.source_file, article.id, "failed", reason=str(failure)[:500], prompt_tokens=failure.prompt_tokens,
        completion_tokens=failure.completion_tokens, stage=failure.stage, attempts=failure.attempts,
        failure_file=_quarantine(output_dir, record),
    )  # fmt: skip


# --------------------------------------------------------------------------- one article


def extract_and_write(
    article: Article,
    llm: StructuredLLM | None,
    output_dir: Path,
    *,
    model_label: str,
    backend: str,
    version: str,
    slot: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    logger: logging.Logger | logging.LoggerAdapter = log,
    strategy: Strategy | None = None,
) -> tuple[ArticleRecord, ArticleOutcome]:
    """Extract one article and write its record, under the article's lock; raises `ArticleFailure`.

    If another run held the lock and wrote a current record meanwhile, that record is reused
    (status "cached"). `slot` wraps the extraction (the flow holds an endpoint slot there).
    """
    output_dir = Path(output_dir)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(article_lock(output_dir, article.id))
        except OSError as error:  # e.g. a link put in place of .locks/ mid-run
            raise ArticleFailure.from_error(OSError(f"could not lock the article in the output folder: {error}"), stage="write") from error
        done, _ = reuse_decision(output_dir, article, model_label=model_label, version=version, rerun="changed", strategy=strategy)
        if done is not None and _written_after(output_dir, article):
            logger.info("%s was extracted by another run meanwhile; reusing its record", article.source_file)
            return done, outcome_of(done, "cached", why="extracted by another run meanwhile")
        logger.info("Extracting %s (%s, %d chars) with %s", article.source_file, article.id, len(article.text), model_label)
        stage = "extract"
        try:
            with slot():
                record = extract_record(article, llm, model=model_label, backend=backend, strategy=strategy)
            record.provenance.extractor_version = version
            stage = "write"
            write_record(output_dir, record)
        except Exception as error:  # noqa: BLE001 - any failure of one article is recorded, the batch goes on
            failure = ArticleFailure.from_error(error, llm, stage=stage)
            logger.warning("Failed %s (%s): %s%s", article.source_file, failure.stage, str(failure)[:500], " - transient" if failure.transient else "")
            raise failure from error
    logger.info("Wrote %s: %d quotes, %d organisations, CAP %s in %.1f s", article.source_file, len(record.quotes), len(record.organisations), [a.code for a in record.policy_areas], record.provenance.seconds)
    return record, outcome_of(record, "extracted")


def process_article(
    article: Article, endpoint: EndpointConfig | None, output_dir: Path, *, model_label: str, version: str, strategy: Strategy | None = None
) -> ArticleOutcome:
    """Extract, validate and write one article; a failure is quarantined and returned, never raised."""
    llm = StructuredLLM(endpoint) if endpoint is not None else None
    try:
        backend = endpoint.backend if endpoint else RULES_BACKEND
        _, outcome = extract_and_write(article, llm, output_dir, model_label=model_label, backend=backend, version=version, strategy=strategy)
        return outcome
    except ArticleFailure as failure:
        return quarantine(Path(output_dir), article, failure)
    finally:
        if llm is not None:
            llm.close()


def _written_after(output_dir: Path, article: Article) -> bool:
    try:
        return record_path(output_dir, article.id).stat().st_mtime >= article.read_at
    except OSError:
        return False


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


def finish_run(
    config: RunConfig,
    outcomes: list[ArticleOutcome],
    *,
    run_id: str,
    started_at: datetime,
    seconds: float,
    output_links: list[dict[str, str]] | None = None,
    full: bool = False,
) -> dict:
    """Bring tables and registry up to date, write the manifest and the review page, under the output-folder lock.

    Incremental: only records new or changed since the last finish are read (`pipeline.write`,
    `pipeline.registry`); `full=True` rebuilds tables and registry from every record, which is
    also what happens by itself when the stored state is missing or does not match the files.
    """
    with output_lock(config.output_dir):
        current = {o.source_file: o.article_id for o in outcomes if o.article_id}
        # Only the records new or changed since the last finish are read (once, shared by the steps below).
        catalogue = record_catalogue(config.output_dir, full=full)
        superseded = supersede_records(config.output_dir, current, catalogue)
        if superseded:
            log.info("Moved %d record(s) of since-edited inputs to superseded/", len(superseded))
        tables = update_tables(config.output_dir, full=full, catalogue=catalogue)
        by_extractor = Counter((entry["extractor"] or UNVERSIONED) for _, entry in catalogue.records())
        run_articles = {o.article_id for o in outcomes if o.article_id and o.status != "failed"}
        registry = update_registry(config.output_dir, full=full, cache=catalogue.cache, links_for=run_articles, scan=catalogue.scan)
        catalogue.cache.clear()
        manifest = _manifest(config, outcomes, run_id=run_id, started_at=started_at, seconds=seconds, tables=tables)
        manifest["registry"] = registry.as_dict()
        manifest["review_page"] = REVIEW_PAGE
        manifest["output_links"] = output_links or []
        manifest["records_by_extractor"] = dict(sorted(by_extractor.items()))
        write_json_atomic(config.output_dir / RUNS_DIR / f"{run_id}.json", manifest, root=config.output_dir)
        write_json_atomic(config.output_dir / MANIFEST, manifest, root=config.output_dir)
        write_review_page(config.output_dir, manifest, links=registry.links)
    return manifest


def _manifest(config: RunConfig, outcomes: list[ArticleOutcome], *, run_id: str, started_at: datetime, seconds: float, tables: dict[str, int]) -> dict:
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
        "strategy": config.strategy,
        "prompt_version": prompt_version(config.strategy or ""),
        "schema_version": SCHEMA_VERSION,
        "extractor_version": config.extractor_version,
        "extractor": extractor_components(config.extractor_embedded_model),
        "rerun": config.rerun,
        "decisions": dict(Counter(_decision_kind(o.why) for o in outcomes if o.why)),
        "inputs_seen": len(outcomes),
        "records_written": sum(o.status == "extracted" for o in outcomes),
        "records_cached": sum(o.status == "cached" for o in outcomes),
        "failures": [
            {
                "source_file": o.source_file,
                "article_id": o.article_id,
                "stage": o.stage,
                "reason": redact(o.reason),
                "attempts": o.attempts,
                "failure_record": o.failure_file,
            }
            for o in sorted(outcomes, key=lambda o: o.source_file)
            if o.status == "failed"
        ],
        "usage": {
            "prompt_tokens": sum(o.prompt_tokens for o in outcomes),
            "completion_tokens": sum(o.completion_tokens for o in outcomes),
        },
        "tables": tables,
        "articles": [{**asdict(o), "reason": redact(o.reason)} for o in sorted(outcomes, key=lambda o: o.source_file)],
    }
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
                outcome = process_article(article, endpoint, config.output_dir, model_label=config.model_label, version=config.extractor_version, strategy=config.strategy)
                outcome = plan.decided(outcome)
                outcomes.append(outcome)
                if on_article is not None:
                    on_article(outcome)
    return finish_run(config, outcomes, run_id=run_id, started_at=started_at, seconds=time.monotonic() - t0, output_links=plan.output_links)
