"""What a flow run shows in the Prefect UI: a per-article table and a markdown summary (artifacts).

Built from the run's manifest (`pipeline.run.finish_run`), so the UI says exactly what
`outputs/manifest.json` says; `publish_artifacts` is the only part that talks to Prefect.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flows.llm_limits import NO_LIMITS, LlmLimits
from pipeline.write import MANIFEST, RECORDS_DIR, TABLES

MAX_LISTED = 50  # articles listed by name in the summary; the manifest has them all


def artifact_table(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per article: status, counts, CAP codes, seconds, tokens (`create_table_artifact(table=...)`)."""
    return [
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


def decisions_line(manifest: dict[str, Any]) -> str:
    """How many articles were extracted, reused or kept, and why: "extractor changed: 3, up to date: 17"."""
    return ", ".join(f"{why}: {count}" for why, count in sorted((manifest.get("decisions") or {}).items()))


def by_extractor_line(manifest: dict[str, Any], *, code: str = "") -> str:
    """How many records of which extractor version the output folder holds."""
    return ", ".join(f"{code}{version}{code}: {count}" for version, count in (manifest.get("records_by_extractor") or {}).items())


def summary_markdown(manifest: dict[str, Any], limits: LlmLimits = NO_LIMITS, *, shard: int = 0, shards: int = 1) -> str:
    """The run's totals, failures, registry counts and where everything was written, as markdown."""
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
        f"| Extractor | `{manifest.get('extractor_version')}` (re-run policy `{manifest.get('rerun')}`) |",
        f"| Why | {decisions_line(manifest) or '-'} |",
        f"| Records by extractor | {by_extractor_line(manifest, code='`') or '-'} |",
        f"| Tokens | {usage['prompt_tokens']:,} prompt + {usage['completion_tokens']:,} completion |",
        f"| Seconds | {manifest['seconds']:.1f} |",
        f"| LLM limits | {limits.describe()} |",
    ]
    registry = manifest.get("registry") or {}
    if registry:
        lines.append(
            f"| Registry | {registry.get('organisations', 0)} organisations ({registry.get('organisations_new', 0)} new), "
            f"{registry.get('speakers', 0)} speakers ({registry.get('speakers_new', 0)} new) |"
        )
    lines += ["", "## Failures", ""]
    if failures:
        lines += [
            f"- `{f['source_file']}`" + (f" ({f['stage']})" if f.get("stage") else "") + f": {str(f['reason']).replace(chr(10), ' ')[:300]}"
            for f in failures
        ]
        lines += ["", f"Failure records (with the model's last output) are in `{out / 'failed'}`."]
    else:
        lines.append("None.")
    reasons = [a for a in manifest["articles"] if a.get("why") and a["why"] != "up to date"]
    if reasons:
        lines += ["", "## Why articles were extracted or kept", ""]
        lines += [f"- `{a['source_file']}`: {a['why']}" for a in reasons[:MAX_LISTED]]
        if len(reasons) > MAX_LISTED:
            lines.append(f"- ... and {len(reasons) - MAX_LISTED} more (every article's reason is in the manifest)")
    if manifest.get("output_links"):
        lines += ["", "## Links in the output folder", "", *[f"- {m['reason']}" for m in manifest["output_links"]]]
    lines += [
        "",
        "## Where the records are",
        "",
        f"- one JSON record per article: `{out / RECORDS_DIR}/<article id>.json`",
        *[f"- table: `{out / name}` ({manifest['tables'].get(name, 0)} rows)" for name in TABLES],
        f"- this run's manifest: `{out / 'runs' / (manifest['run_id'] + '.json')}` (latest: `{out / MANIFEST}`)",
    ]
    if manifest.get("review_page"):
        lines.append(f"- review page: `{out / manifest['review_page']}` (open it in a browser; it needs no network)")
    return "\n".join(lines) + "\n"


def _artifact_key(*parts: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:100]


def publish_artifacts(manifest: dict[str, Any], limits: LlmLimits, *, shard: int, shards: int) -> None:
    """A table (one row per article) and a markdown summary; keyed per deployment, so each run adds a version."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact
    from prefect.runtime import deployment

    scope = deployment.name or "local"
    create_table_artifact(
        table=artifact_table(manifest),
        key=_artifact_key("extraction-articles", scope),
        description=f"Run {manifest['run_id']}: one row per article (status, quotes, organisations, CAP codes, seconds, tokens).",
    )
    create_markdown_artifact(
        markdown=summary_markdown(manifest, limits, shard=shard, shards=shards),
        key=_artifact_key("extraction-summary", scope),
        description=f"Run {manifest['run_id']}: totals, failures, where the records are.",
    )
