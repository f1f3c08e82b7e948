"""The command line's terminal output: the dry-run table, the progress bar, the run summary.

Only `pipeline.cli` uses these; they format what `pipeline.run` decided and never decide
anything themselves.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from pipeline.run import ArticleOutcome


def print_plan(rows: list[dict[str, Any]], console: Any = None) -> None:
    """The dry-run plan (`pipeline.run.plan_rows`) as a table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title="Dry run: nothing is written")
    for column in ("file", "article id", "chars", "action", "reason"):
        table.add_column(column, overflow="fold")
    styles = {"extract": "cyan", "up to date": "green", "unreadable": "red"}  # reason: why (pipeline.run.reuse_decision)
    for r in rows:
        table.add_row(r["source_file"], r["article_id"] or "", "" if r["chars"] is None else str(r["chars"]), f"[{styles[r['action']]}]{r['action']}[/]", r["reason"] or "")
    console.print(table)
    counts = {a: sum(r["action"] == a for r in rows) for a in styles}
    console.print(f"{counts['extract']} to extract, {counts['up to date']} up to date, {counts['unreadable']} unreadable")


@contextlib.contextmanager
def progress_reporter(total: int, console: Any = None) -> Iterator[Callable[[ArticleOutcome], None]]:
    """A rich progress bar over the articles to extract; yields the `on_article` callback for `run_batch`.

        with progress_reporter(n_to_extract) as on_article:
            manifest = run_batch(config, on_article=on_article)
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]extracting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"), console=console, transient=False,
    )  # fmt: skip
    started = time.monotonic()
    with progress:
        task = progress.add_task("articles", total=total or None, last="")

        def on_article(outcome: ArticleOutcome) -> None:
            if outcome.status == "failed":
                line = f"[red]FAILED[/] {outcome.source_file}: {outcome.reason}"
            else:
                line = f"[green]{outcome.status}[/] {outcome.source_file}: {outcome.quotes} quotes, {outcome.organisations} orgs, CAP {outcome.cap_codes} ({outcome.seconds:.1f} s)"
            progress.console.print(line, markup=True, highlight=False)
            progress.update(task, advance=1, last=outcome.source_file)

        yield on_article
        progress.update(task, last=f"done in {time.monotonic() - started:.1f} s")


def print_summary(manifest: dict[str, Any]) -> None:
    """The run's totals, its failures (on stderr) and where the manifest is."""
    typer.echo(
        f"{manifest['inputs_seen']} inputs: {manifest['records_written']} extracted, {manifest['records_cached']} up to date, "
        f"{len(manifest['failures'])} failed ({manifest['seconds']:.1f} s, model {manifest['model']})"
    )
    decisions = manifest.get("decisions") or {}
    if decisions.get("extractor changed"):
        before = sorted({a["why"].split("(")[1].split(" -> ")[0] for a in manifest["articles"] if (a.get("why") or "").startswith("extractor changed (")})
        typer.echo(f"{decisions['extractor changed']} re-extracted because the extractor changed ({', '.join(before)} -> {manifest['extractor_version']})")
    if decisions.get("kept"):
        typer.echo(f"{decisions['kept']} records of another extractor kept (--rerun missing); --rerun changed re-extracts them")
    typer.echo("why: " + ", ".join(f"{why} {count}" for why, count in sorted(decisions.items())))
    typer.echo("records by extractor: " + ", ".join(f"{v}: {n}" for v, n in (manifest.get("records_by_extractor") or {}).items()) + f" (this run: {manifest.get('extractor_version')})")
    for failure in manifest["failures"]:
        typer.echo(f"  FAILED {failure['source_file']}: {failure['reason']}", err=True)
    for moved in manifest.get("output_links") or []:
        typer.echo(f"  OUTPUT {moved['reason']}", err=True)
    typer.echo(f"manifest: {Path(manifest['output_dir']) / 'manifest.json'}")
