"""Writing: atomic record files, JSONL tables rebuilt from records, the run manifest.

Every file is written to a temporary sibling, fsynced and renamed into place,
so a reader (or a crash) never sees half a file. The JSONL tables are derived
from `records/` on every run rather than appended to, so a re-run or a crash
can never leave duplicate rows.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.records import ArticleRecord, FailureRecord

RECORDS_DIR = "records"
FAILED_DIR = "failed"
TABLES = ("quotes.jsonl", "organisations.jsonl", "policy_areas.jsonl")
MANIFEST = "manifest.json"


def write_text_atomic(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: BaseModel | dict[str, Any]) -> None:
    text = data.model_dump_json(indent=2) if isinstance(data, BaseModel) else json.dumps(data, indent=2, ensure_ascii=False, default=str)
    write_text_atomic(path, text + "\n")


def record_path(output_dir: Path, article_id: str) -> Path:
    return output_dir / RECORDS_DIR / f"{article_id}.json"


def failure_path(output_dir: Path, source_file: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", source_file).strip("._") or "unnamed"
    return output_dir / FAILED_DIR / f"{safe}.json"


def write_record(output_dir: Path, record: ArticleRecord) -> Path:
    path = record_path(output_dir, record.article.id)
    write_json_atomic(path, record)
    failure_path(output_dir, record.article.source_file).unlink(missing_ok=True)
    return path


def write_failure(output_dir: Path, failure: FailureRecord) -> Path:
    path = failure_path(output_dir, failure.source_file)
    write_json_atomic(path, failure)
    return path


def load_record(path: Path) -> ArticleRecord | None:
    """A stored record, or None when it is missing or no longer valid."""
    try:
        return ArticleRecord.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None


def iter_records(output_dir: Path) -> Iterable[ArticleRecord]:
    for path in sorted((output_dir / RECORDS_DIR).glob("*.json")):
        record = load_record(path)
        if record is not None:
            yield record


def table_rows(record: ArticleRecord) -> dict[str, list[dict[str, Any]]]:
    """Flat rows for analytics tools; every row carries its article id."""
    article = {"article_id": record.article.id, "source_file": record.article.source_file, "published": record.article.published}
    quotes = [
        {**article, "quote_index": i, **q.model_dump(mode="json")} for i, q in enumerate(record.quotes)
    ]
    orgs = [{**article, **o.model_dump(mode="json")} for o in record.organisations]
    areas = [{**article, "rank": i + 1, **p.model_dump(mode="json")} for i, p in enumerate(record.policy_areas)]
    return {"quotes.jsonl": quotes, "organisations.jsonl": orgs, "policy_areas.jsonl": areas}


def rebuild_tables(output_dir: Path) -> dict[str, int]:
    """Rewrite the JSONL tables from every valid record; returns row counts."""
    rows: dict[str, list[str]] = {name: [] for name in TABLES}
    for record in iter_records(output_dir):
        for name, table in table_rows(record).items():
            rows[name].extend(json.dumps(row, ensure_ascii=False, default=str, sort_keys=True) for row in table)
    for name, lines in rows.items():
        write_text_atomic(output_dir / name, "".join(line + "\n" for line in lines))
    return {name: len(lines) for name, lines in rows.items()}
