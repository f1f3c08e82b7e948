"""The extraction flow: read the input folder, one task run per article, write the run's outputs.

Thin on purpose: every step is a plain function in `pipeline.run`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NONE as NO_CACHE

from pipeline.backends.model_store import DEFAULT_MODEL
from pipeline.ingest import Article
from pipeline.llm import EndpointConfig
from pipeline.run import ArticleOutcome, Rerun, RunConfig, finish_run, new_run_id, open_endpoint, plan_run, process_article


@task(name="extract-article", task_run_name="extract {article.source_file}", cache_policy=NO_CACHE)
def extract_article(article: Article, endpoint: EndpointConfig | None, output_dir: Path, model_label: str) -> ArticleOutcome:
    return process_article(article, endpoint, output_dir, model_label=model_label)


@flow(name="extract-articles", log_prints=True)
def extract_articles(
    input_dir: str = "seeds",
    output_dir: str = "outputs",
    base_url: str | None = None,
    model: str | None = None,
    embedded_model: str = DEFAULT_MODEL,
    rules_only: bool = False,
    rerun: Rerun = "missing",
) -> dict:
    """Extract quotes, organisations and CAP policy areas from every article in `input_dir`.

    Args:
        input_dir: Folder of articles (.txt, .html, .jsonl).
        output_dir: Where records/, failed/, the JSONL tables and manifest.json are written.
        base_url: OpenAI-compatible endpoint; empty means the embedded local model (or OpenAI if OPENAI_API_KEY is set).
        model: Model name at that endpoint.
        embedded_model: Which embedded model to run when no endpoint is configured.
        rules_only: Skip the LLM entirely (rule-based baseline).
        rerun: "missing" re-extracts only articles without a current record; "all" re-extracts everything.
    """
    started_at, t0, run_id = datetime.now(UTC).replace(microsecond=0), time.monotonic(), new_run_id()
    config = RunConfig(
        input_dir=Path(input_dir),
        output_dir=Path(output_dir),
        endpoint=EndpointConfig.from_env(base_url=base_url, model=model),
        embedded_model=embedded_model,
        rules_only=rules_only,
        rerun=rerun,
    )
    plan = plan_run(config)
    outcomes = list(plan.done)
    if plan.todo:
        with open_endpoint(config) as endpoint:
            # One article at a time: a local model serves one request at a time and keeps
            # the article's prompt prefix cached between its questions.
            outcomes += [extract_article(a, endpoint, config.output_dir, config.model_label) for a in plan.todo]
    manifest = finish_run(config, outcomes, run_id=run_id, started_at=started_at, seconds=time.monotonic() - t0)
    print(
        f"Run {run_id}: {manifest['records_written']} extracted, {manifest['records_cached']} up to date, "
        f"{len(manifest['failures'])} failed; records in {Path(output_dir) / 'records'}"
    )
    return manifest
