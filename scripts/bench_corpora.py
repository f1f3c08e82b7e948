"""Benchmark extraction on a converted corpus split; append the figures to BENCHMARKS.md.

One command per figure set (rules only unless a model is named):

    .venv/bin/python scripts/bench_corpora.py polnear-dev      # PolNeAR dev: quote and statement F1, named-speaker quote+speaker F1
    .venv/bin/python scripts/bench_corpora.py polnear-train
    .venv/bin/python scripts/bench_corpora.py conll-dev        # CoNLL++ dev: document-level organisation F1
    .venv/bin/python scripts/bench_corpora.py conll-train
    .venv/bin/python scripts/bench_corpora.py polnear-dev --embedded                  # embedded default model
    .venv/bin/python scripts/bench_corpora.py polnear-dev --embedded qwen2.5-coder-0.5b
    .venv/bin/python scripts/bench_corpora.py conll-dev --base-url http://host:port/v1 --model NAME
    .venv/bin/python scripts/bench_corpora.py polnear-train --every 10               # a fixed sample: every 10th article

The split is converted first (`scripts/prepare_corpora.py`, cached in ~/.cache/news-records/corpora),
every article is extracted with `run_batch`, scored with `pipeline.evaluate` (which honours the
converted gold's `"quotes_only": true` and `"speaker": null`), and one row is appended to the section
"Corpus quality: <split>" of BENCHMARKS.md. PolNeAR's quote+speaker figure counts only gold quotes
whose source is a proper name (the converter sets the others to null). CoNLL++ gold has organisations
only: its quote figures mean nothing and are not reported. CAP accuracy on the headlines is
`scripts/bench_cap.py`. Run it alone on the machine: other load inflates the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipeline.corpora import SPLITS, default_cache, prepare, sample
from pipeline.evaluate import Counts, EvaluationReport, evaluate, render_report
from pipeline.extract import PROMPT_VERSION
from pipeline.version import extractor_version
from pipeline.llm import EndpointConfig
from pipeline.run import RunConfig, run_batch
from pipeline.write import iter_records

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "BENCHMARKS.md"
DEFAULT_EMBEDDED = "qwen2.5-coder-1.5b"

Column = tuple[str, Callable[[EvaluationReport], str]]


def precision_recall_f1(label: str, pick: Callable[[EvaluationReport], Counts]) -> list[Column]:
    return [(f"{label} {name}", lambda r, attr=attr: f"{getattr(pick(r), attr):.2f}") for name, attr in (("P", "precision"), ("R", "recall"), ("F1", "f1"))]


QUOTE_COLUMNS: list[Column] = [
    *precision_recall_f1("quote", lambda r: r.quote_text),
    *precision_recall_f1("statement", lambda r: r.statement_text),  # quotes + unnamed-source quotes (pipeline.evaluate)
    *precision_recall_f1("quote+speaker (named)", lambda r: r.quote_speaker),
    ("exact spans", lambda r: f"{r.exact_span_share:.2f}"),
]
ORGANISATION_COLUMNS: list[Column] = precision_recall_f1("org", lambda r: r.organisations)


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()

    try:
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def columns_for(split: str) -> list[Column]:
    return QUOTE_COLUMNS if SPLITS[split].kind == "polnear" else ORGANISATION_COLUMNS


def table_header(split: str) -> str:
    names = ["date (UTC)", "commit", "model", "prompt", "cores", "articles", *(n for n, _ in columns_for(split)), "s/article median", "s/article max"]
    return "| " + " | ".join(names) + " |\n" + "|---|---|---|---|" + "---:|" * (len(names) - 4) + "\n"


def table_row(split: str, report: EvaluationReport, model: str) -> str:
    seconds = report.cost()["seconds"]
    cells = [
        f"{datetime.now(UTC):%Y-%m-%d %H:%M}", _commit(), model, f"{PROMPT_VERSION}, extractor {extractor_version()}", str(os.cpu_count()), str(len(report.articles)),
        *(cell(report) for _, cell in columns_for(split)),
        f"{seconds['median'] or 0:.2f}", f"{seconds['max'] or 0:.2f}",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |\n"


def append_row(markdown: Path, split: str, row: str, command: str) -> None:
    """Add `row` at the end of the split's table in `markdown`, creating the section the first time."""
    section, header = f"## Corpus quality: {split}", table_header(split)
    text = markdown.read_text(encoding="utf-8") if markdown.exists() else "# Benchmarks\n"
    if section not in text:
        text = text.rstrip("\n") + (
            f"\n\n{section}\n\nProduced by `{command}` (the model varies by row; `--every N` rows score every N-th "
            "article by name). Every article re-extracted and scored by `pipeline/evaluate.py`; seconds are wall time "
            "per article including all LLM calls. Newest row last.\n\n" + header
        )
    start = text.index(section)
    following = text.find("\n## ", start + len(section))
    end_of_section = len(text) if following < 0 else following + 1
    if header not in text[start:end_of_section]:
        # The columns changed: a new table under the old ones, which keep their own header.
        block = text[start:end_of_section].rstrip("\n") + "\n\nWith the columns of the current script:\n\n" + header
        text = text[:start] + block + ("\n" + text[end_of_section:] if following >= 0 else "")
    table = text.index(header, start) + len(header)
    end = table
    for line in text[table:].splitlines(keepends=True):
        if not line.startswith("|"):
            break
        end += len(line)
    markdown.write_text(text[:end] + row + text[end:], encoding="utf-8")


def extract_and_score(converted: Path, config_for: Callable[[Path, Path], RunConfig], every: int) -> EvaluationReport:
    """Extract the split's articles (or every `every`-th) with `run_batch` and score them against their gold."""
    gold_dir = converted / "gold"
    with tempfile.TemporaryDirectory(prefix="news-records-corpus-") as tmp:
        articles, out = Path(tmp) / "articles", Path(tmp) / "out"
        articles.mkdir()
        out.mkdir()
        names = sample([p.name for p in (converted / "articles").glob("*.txt")], every)
        for name in names:
            shutil.copyfile(converted / "articles" / name, articles / name)  # a temporary copy: ingest follows no links
        manifest = run_batch(config_for(articles, out))
        # A corpus may hold the same text twice (PolNeAR train does): the second copy gets no record and scores as missed.
        failures = [f for f in manifest["failures"] if not f["reason"].startswith("duplicate of")]
        if failures:
            raise SystemExit(f"{len(failures)} articles failed, e.g. {failures[0]}")
        records = [json.loads(r.model_dump_json()) for r in iter_records(out)]
    report = evaluate(records, gold_dir)
    kept = {Path(n).stem for n in names}
    return EvaluationReport([a for a in report.articles if Path(a.source_file).stem in kept], report.ignored_records, report.duplicate_records)


def summary(rendered: str) -> str:
    """The report without its per-article rows: the header, the TOTAL row and the notes under it."""
    lines = rendered.splitlines()
    last_rule = max(i for i, line in enumerate(lines) if line and set(line) == {"-"})
    return "\n".join([lines[0], *lines[last_rule:]])


def _ordinal(n: int) -> str:
    """2 -> "2nd", 3 -> "3rd", 4 -> "4th", 11 -> "11th", 22 -> "22nd"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("split", choices=sorted(SPLITS))
    parser.add_argument("--embedded", nargs="?", const=DEFAULT_EMBEDDED, metavar="MODEL", help=f"run with the embedded model (default {DEFAULT_EMBEDDED})")
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint (NEWS_LLM_API_KEY for its key)")
    parser.add_argument("--model", help="the endpoint's model name (with --base-url)")
    parser.add_argument("--every", type=int, default=1, help="score every N-th article by name (default: all)")
    parser.add_argument("--cache", type=Path, default=default_cache(), help="where converted corpora are kept")
    parser.add_argument("--per-article", action="store_true", help="print a row per article")
    parser.add_argument("--no-write", action="store_true", help="print only; do not touch BENCHMARKS.md")
    parser.add_argument("--markdown", type=Path, default=BENCHMARKS, help="the file to append to")
    args = parser.parse_args()
    if args.embedded and args.base_url:
        parser.error("--embedded and --base-url exclude each other")

    conversion = prepare(args.split, args.cache / args.split)
    converted = Path(conversion.out)
    if conversion.dropped:
        print(f"{args.split}: annotation files the converter rejected and that were left out: {', '.join(conversion.dropped)}")
    endpoint = EndpointConfig.from_env(base_url=args.base_url, model=args.model) if args.base_url else None
    rules_only = not (args.embedded or args.base_url)
    model = "rules only" if rules_only else (endpoint.model if endpoint else args.embedded)
    # The operator named these folders: allow them (confinement guards parameters from the Prefect UI).
    os.environ["NEWS_RECORDS_ROOTS"] = os.pathsep.join([str(converted.resolve()), tempfile.gettempdir()])

    def config_for(articles: Path, out: Path) -> RunConfig:
        return RunConfig(articles, out, endpoint, args.embedded or DEFAULT_EMBEDDED, rules_only, "all")

    report = extract_and_score(converted, config_for, args.every)
    print(render_report(report) if args.per_article else summary(render_report(report)))
    row = table_row(args.split, report, model + (f", every {_ordinal(args.every)}" if args.every > 1 else ""))
    print(table_header(args.split) + row, end="")
    if not args.no_write:
        append_row(args.markdown, args.split, row, f"scripts/bench_corpora.py {args.split}")
        print(f"appended to {args.markdown}")


if __name__ == "__main__":
    main()
