"""Benchmark extraction quality and speed on the dev set; append the figures to BENCHMARKS.md.

    .venv/bin/python scripts/bench_extraction.py                      # embedded default model
    .venv/bin/python scripts/bench_extraction.py --rules-only         # the rule-based baseline
    .venv/bin/python scripts/bench_extraction.py --embedded-model qwen2.5-coder-0.5b
    .venv/bin/python scripts/bench_extraction.py --strategy llm        # the embedded model extracts (slow)
    .venv/bin/python scripts/bench_extraction.py --strategy llm --base-url http://localhost:11434/v1 --model qwen2.5:7b

Runs the pipeline over ../shared/eval-dev/articles (every article re-extracted),
scores it with `pipeline.evaluate`, prints the report and appends one row to
the history table in BENCHMARKS.md (section "Extraction quality"). Run it
alone on the machine: other load inflates the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pipeline.evaluate import evaluate, render_report
from pipeline.llm import EndpointConfig
from pipeline.run import RunConfig, run_batch
from pipeline.strategy import STRATEGIES, prompt_version, resolve_strategy
from pipeline.version import extractor_version
from pipeline.write import iter_records

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "BENCHMARKS.md"
HEADER = (
    "| date (UTC) | commit | model | prompt | cores | quote F1 | quote+speaker F1 | org F1 | CAP F1 | main topic | exact spans "
    "| s/article median | s/article max | prompt tok/article median | completion tok/article median |\n"
    "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
)


def _commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _row(summary: dict, model: str, strategy: str) -> str:
    t = summary["total"]
    f = lambda key: f"{t[key]['f1']:.2f}"  # noqa: E731
    return (
        f"| {datetime.now(UTC):%Y-%m-%d %H:%M} | {_commit()} | {model} | {prompt_version(strategy)}, extractor {extractor_version()} | {os.cpu_count()} "
        f"| {f('quote_text')} | {f('quote_speaker')} | {f('organisations')} | {f('policy_areas')} "
        f"| {t['main_topic_accuracy']:.2f} | {t['exact_span_share']:.2f} "
        f"| {t['seconds']['median']:.1f} | {t['seconds']['max']:.1f} "
        f"| {t['prompt_tokens']['median']:.0f} | {t['completion_tokens']['median']:.0f} |\n"
    )


def append_row(row: str, section_name: str) -> None:
    SECTION = f"## Extraction quality: {section_name}"
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else "# Benchmarks\n"
    if SECTION not in text:
        text = text.rstrip("\n") + (
            f"\n\n{SECTION}\n\nProduced by `scripts/bench_extraction.py --articles {section_name}/articles`. Every article "
            "re-extracted; seconds are wall time per article including all LLM calls; tokens include retries. Newest row last.\n\n" + HEADER
        )
    # Insert the row at the end of this section's table (other sections belong to other benchmarks).
    head, section = text[: text.index(SECTION)], text[text.index(SECTION) :]
    before, after = section.split(HEADER, 1)
    rows_end = 0
    for line in after.splitlines(keepends=True):
        if not line.startswith("|"):
            break
        rows_end += len(line)
    BENCHMARKS.write_text(head + before + HEADER + after[:rows_end] + row + after[rows_end:], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=Path, default=REPO.parent / "shared/eval-dev/articles")
    parser.add_argument("--gold", type=Path, default=REPO.parent / "shared/eval-dev/gold")
    parser.add_argument("--embedded-model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--rules-only", action="store_true", help="the same as --strategy rules")
    parser.add_argument("--strategy", choices=STRATEGIES, help="rules, assist or llm (default: assist on the embedded model, llm on an endpoint)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint to measure instead of the embedded model")
    parser.add_argument("--model", help="model name at that endpoint")
    parser.add_argument("--no-write", action="store_true", help="print only; do not touch BENCHMARKS.md")
    args = parser.parse_args()

    # The operator named these folders: allow them (confinement guards parameters from the Prefect UI).
    os.environ["NEWS_RECORDS_ROOTS"] = os.pathsep.join([str(args.articles.resolve()), tempfile.gettempdir()])
    with tempfile.TemporaryDirectory(prefix="news-records-bench-") as tmp:
        out = Path(tmp)
        endpoint = EndpointConfig.from_env(base_url=args.base_url, model=args.model)
        config = RunConfig(args.articles, out, endpoint, args.embedded_model, args.rules_only, "all", strategy=args.strategy)
        run_batch(config)
        records = [json.loads(r.model_dump_json()) for r in iter_records(out)]
    report = evaluate(records, args.gold)
    print(render_report(report))
    summary = report.to_json()
    strategy = resolve_strategy(args.strategy, rules_only=args.rules_only, remote=endpoint is not None)
    model = "rules only" if strategy == "rules" else (endpoint.model if endpoint else args.embedded_model)
    row = _row(summary, model if strategy != "llm" else f"{model}, strategy llm", strategy)
    print(row)
    if not args.no_write:
        append_row(row, args.articles.resolve().parent.name)
        print(f"appended to {BENCHMARKS}")


if __name__ == "__main__":
    main()
