"""Serve the extraction flow as a scheduled deployment from this process (`scripts/serve.sh` runs it).

    python -m flows.serve [--cron "0 6 * * *" | --interval 3600] [--input DIR] [--output DIR] ...

Creates (or updates) two deployments on the Prefect server in PREFECT_API_URL and
runs their flow runs - scheduled ones, and the ones started from the UI - in
subprocesses of this process until it is stopped:

* ``extract-articles/<name>`` (default ``daily``) on the schedule; the options
  below become its default parameters, which the UI's "Custom run" form shows
  and lets a person change for one run;
* ``backfill-articles/backfill``, which splits a folder into shard runs of the
  first deployment.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pipeline.run import RERUN_POLICIES
from pipeline.strategy import STRATEGIES

DEFAULT_CRON = "0 6 * * *"  # daily, 06:00 in --timezone


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/serve.sh", description="Serve the extract-articles deployment on a schedule.")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--cron", default=os.environ.get("NEWS_SCHEDULE_CRON", DEFAULT_CRON), help=f"cron schedule (env NEWS_SCHEDULE_CRON; default {DEFAULT_CRON!r}: daily)")
    when.add_argument("--interval", type=float, default=None, help="run every N seconds instead of a cron schedule")
    when.add_argument("--no-schedule", action="store_true", help="no schedule: runs only when started from the UI or API")
    p.add_argument("--timezone", default=os.environ.get("NEWS_SCHEDULE_TZ", "UTC"), help="time zone of the cron schedule (default UTC)")
    p.add_argument("--name", default="daily", help="deployment name (default: daily)")
    p.add_argument("--input", dest="input_dir", default=None, help="default input folder (default: the flow's, seeds/)")
    p.add_argument("--output", dest="output_dir", default=None, help="default output folder (default: the flow's, outputs/)")
    p.add_argument("--base-url", default=None, help="default OpenAI-compatible endpoint (default: embedded local model)")
    p.add_argument("--model", default=None, help="default model name at the endpoint")
    p.add_argument("--rules-only", action="store_true", default=None, help="default to the rule-based baseline (no LLM)")
    p.add_argument("--strategy", choices=list(STRATEGIES), default=None, help="default extraction strategy: rules, assist or llm (default: llm with --base-url, else assist)")
    p.add_argument("--concurrency", type=int, default=None, help="default articles at a time per run")
    p.add_argument("--rerun", choices=list(RERUN_POLICIES), default=None, help="default re-run policy (changed, missing or all)")
    p.add_argument("--llm-max-in-flight", type=int, default=None, help="default cap on requests in flight to the endpoint (global limit)")
    p.add_argument("--llm-requests-per-minute", type=float, default=None, help="default requests per minute to the endpoint (global limit)")
    p.add_argument("--limit", type=int, default=4, help="flow runs this process runs at the same time (default 4)")
    return p


def deployment_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The deployment's default parameters: only what was given, folders made absolute."""
    params: dict[str, Any] = {"fail_on_article_errors": True}
    for key in ("input_dir", "output_dir"):
        if getattr(args, key):
            params[key] = str(Path(getattr(args, key)).expanduser().resolve())
    for key in ("base_url", "model", "rules_only", "strategy", "concurrency", "rerun", "llm_max_in_flight", "llm_requests_per_minute"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    return params


def schedule_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.no_schedule:
        return {}
    if args.interval:
        return {"interval": args.interval}
    from prefect.schedules import Cron

    return {"schedules": [Cron(args.cron, timezone=args.timezone)]}


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from prefect import serve

    from flows.backfill import backfill_articles
    from flows.extract_flow import extract_articles

    params = deployment_parameters(args)
    extract = extract_articles.to_deployment(
        name=args.name,
        parameters=params,
        description="Extract quotes, organisations and CAP policy areas from a folder of news articles (served by scripts/serve.sh).",
        tags=["news-records"],
        **schedule_options(args),
    )
    backfill = backfill_articles.to_deployment(
        name="backfill",
        parameters={"deployment": f"extract-articles/{args.name}"},
        description="Split a folder into shard runs of the served extraction deployment.",
        tags=["news-records"],
    )
    when = "no schedule" if args.no_schedule else (f"every {args.interval:g} s" if args.interval else f"cron {args.cron!r} ({args.timezone})")
    print(f"Serving extract-articles/{args.name} ({when}) and backfill-articles/backfill; parameters {params}", flush=True)
    serve(extract, backfill, limit=args.limit)


if __name__ == "__main__":
    main()
