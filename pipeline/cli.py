"""`news-records`: run the pipeline, evaluate it, export the record schemas."""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="News articles in; validated quote/organisation/policy-area records out.")


class RerunPolicy(str, Enum):  # pipeline.run.Rerun
    changed = "changed"
    missing = "missing"
    all = "all"


class Engine(str, Enum):
    prefect = "prefect"
    plain = "plain"


def _allow_folders(*folders: Path) -> None:
    """Folders named on this command line are the operator's choice: allow them for this process.

    Confinement (pipeline/paths.py) guards folders that arrive as run parameters from the
    Prefect UI or a deployment; a person at a terminal can already read what they name.
    """
    from pipeline.paths import ROOTS_ENV, allowed_roots

    roots = [str(r) for r in allowed_roots()] + [str(f.resolve()) for f in folders]
    os.environ[ROOTS_ENV] = os.pathsep.join(dict.fromkeys(roots))


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "instructor"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


InputDir = Annotated[Path, typer.Option("--input", "-i", help="Folder of articles (.txt, .html, .jsonl).")]
OutputDir = Annotated[Path, typer.Option("--output", "-o", help="Folder for records/, failed/, JSONL tables and manifest.json.")]
BaseUrl = Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp...). Default: embedded local model, or OpenAI when OPENAI_API_KEY is set.")]
Model = Annotated[str | None, typer.Option(help="Model name at the endpoint (env NEWS_LLM_MODEL).")]
EmbeddedModel = Annotated[str, typer.Option(help="Embedded model used when no endpoint is configured.")]
RulesOnly = Annotated[bool, typer.Option("--rules-only", help="No LLM: the rule-based baseline (the same as --strategy rules).")]


class StrategyName(str, Enum):
    rules = "rules"
    assist = "assist"
    llm = "llm"


StrategyOption = Annotated[
    StrategyName | None,
    typer.Option(
        "--strategy",
        help="rules: no model; assist: rules + small model questions (default for the embedded model); "
        "llm: the model extracts, every item grounded (default with --base-url or an API key). Env NEWS_EXTRACTION_STRATEGY.",
    ),
]


def _value(strategy: StrategyName | None) -> str | None:
    return strategy.value if strategy is not None else None


@app.command()
def run(
    input_dir: InputDir = Path("seeds"),
    output_dir: OutputDir = Path("outputs"),
    base_url: BaseUrl = None,
    model: Model = None,
    embedded_model: EmbeddedModel = "qwen2.5-coder-1.5b",
    rules_only: RulesOnly = False,
    strategy: StrategyOption = None,
    rerun: Annotated[
        RerunPolicy,
        typer.Option(
            "--rerun",
            help="changed: extract what has no record, or a record of other text, model or extractor version (code, rules, resources, prompts); "
            "missing: only what has no record, keeping records of older extractors (large archives); all: everything.",
        ),
    ] = RerunPolicy.changed,
    rerun_all: Annotated[bool, typer.Option("--rerun-all", help="Re-extract every article, whatever records and caches hold (the same as --rerun all).")] = False,
    engine: Annotated[Engine, typer.Option(help="prefect: run as a Prefect flow (default); plain: the same functions without Prefect, with a progress bar.")] = Engine.prefect,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be processed and why; write nothing.")] = False,
    follow_links: Annotated[bool, typer.Option("--follow-links", help="Read symbolic links in the input folder, wherever they lead (by default they are skipped with a reason).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Extract records from every article in the input folder. Exit code 1 if any article failed."""
    _logging(verbose)
    _allow_folders(input_dir, output_dir)
    if follow_links:  # the operator's choice for this process; the flow reads it too (never a flow parameter)
        from pipeline.paths import FOLLOW_LINKS_ENV

        os.environ[FOLLOW_LINKS_ENV] = "1"
    rerun = "all" if rerun_all else rerun.value
    if dry_run:
        from pipeline.llm import EndpointConfig
        from pipeline.run import RunConfig, plan_rows
        from pipeline.terminal import print_plan

        rows = plan_rows(RunConfig(input_dir, output_dir, EndpointConfig.from_env(base_url=base_url, model=model), embedded_model, rules_only, rerun, strategy=_value(strategy)))
        print_plan(rows)
        raise typer.Exit(code=1 if any(r["action"] == "unreadable" for r in rows) else 0)
    if engine is Engine.prefect:
        os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "pipeline")
        from flows.extract_flow import extract_articles

        manifest = extract_articles(
            input_dir=str(input_dir), output_dir=str(output_dir), base_url=base_url, model=model,
            embedded_model=embedded_model, rules_only=rules_only, rerun=rerun, strategy=_value(strategy),
        )  # fmt: skip
    else:
        from pipeline.llm import EndpointConfig
        from pipeline.run import RunConfig, plan_rows, run_batch
        from pipeline.terminal import progress_reporter

        config = RunConfig(input_dir, output_dir, EndpointConfig.from_env(base_url=base_url, model=model), embedded_model, rules_only, rerun, strategy=_value(strategy))
        with progress_reporter(sum(r["action"] == "extract" for r in plan_rows(config))) as on_article:
            manifest = run_batch(config, on_article=on_article)
    from pipeline.terminal import print_summary

    print_summary(manifest)
    raise typer.Exit(code=1 if manifest["failures"] else 0)


@app.command()
def evaluate(
    articles: Annotated[Path, typer.Option(help="Folder of articles.")] = Path("../shared/eval-dev/articles"),
    gold: Annotated[Path, typer.Option(help="Folder of gold JSON files (eval-dev format).")] = Path("../shared/eval-dev/gold"),
    records: Annotated[Path | None, typer.Option(help="Score existing records in this output folder instead of running the pipeline.")] = None,
    output_dir: Annotated[Path, typer.Option("--output", "-o", help="Where the pipeline writes when it runs.")] = Path("outputs/eval"),
    base_url: BaseUrl = None,
    model: Model = None,
    embedded_model: EmbeddedModel = "qwen2.5-coder-1.5b",
    rules_only: RulesOnly = False,
    strategy: StrategyOption = None,
    summary_json: Annotated[Path | None, typer.Option("--json", help="Also write the JSON summary here.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Score records against gold annotations: quotes, speakers, organisations, CAP codes, spans, cost."""
    from pipeline.evaluate import evaluate as score
    from pipeline.evaluate import render_report
    from pipeline.write import iter_records

    _logging(verbose)
    _allow_folders(articles, output_dir, *([records] if records else []))
    gold = _gold_folder(gold)  # before the pipeline runs: a wrong folder should not cost a run
    if records is None:
        from pipeline.llm import EndpointConfig
        from pipeline.run import RunConfig, run_batch

        config = RunConfig(articles, output_dir, EndpointConfig.from_env(base_url=base_url, model=model), embedded_model, rules_only, "all", strategy=_value(strategy))
        run_batch(config)
        records = output_dir
    record_dicts = [json.loads(r.model_dump_json()) for r in iter_records(records)]
    report = score(record_dicts, gold)
    typer.echo(render_report(report))
    if summary_json is not None:
        from pipeline.write import write_json_atomic

        write_json_atomic(summary_json, report.to_json())
        typer.echo(f"summary: {summary_json}")


def _gold_folder(gold: Path) -> Path:
    """The folder of gold annotations to score against, checked before anything runs.

    A converted corpus or the eval-dev set keeps its gold files in a `gold/` subfolder beside
    `articles/`: given the set's own folder, its `gold/` is used (and said). Stops with a reason
    (exit 2) when neither holds readable gold annotations.
    """
    from pipeline.evaluate import load_gold

    try:
        load_gold(gold)
        return gold
    except (OSError, ValueError) as error:
        if (gold / "gold").is_dir():
            try:
                load_gold(gold / "gold")
            except (OSError, ValueError) as inner:
                error = inner
            else:
                typer.echo(f"gold annotations: {gold / 'gold'} (the gold/ folder of {gold})", err=True)
                return gold / "gold"
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None


@app.command("export-schemas")
def export_schemas_command(
    folder: Annotated[Path, typer.Option(help="Where to write the JSON Schema files.")] = Path(__file__).resolve().parent.parent / "schemas",
) -> None:
    """Write the JSON Schemas of the record and its tables (schemas/*.schema.json)."""
    from schemas.export import export_schemas

    for path in export_schemas(folder):
        typer.echo(path)


@app.command("fetch-model")
def fetch_model(name: Annotated[str, typer.Argument(help="Embedded model name.")] = "qwen2.5-coder-1.5b") -> None:
    """Download, assemble and verify the embedded model (done automatically on first run)."""
    from pipeline.backends.model_store import ModelUnavailable, ensure_model

    _logging(False)
    try:
        typer.echo(ensure_model(name))
    except ModelUnavailable as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
