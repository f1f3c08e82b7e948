"""Test helpers shared by several test modules (not collected as tests).

`news_article(i)` makes small distinct articles; `audit_outputs` checks an
output folder the way a downstream consumer would and counts what is lost,
broken or duplicated.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from schemas.records import ArticleRecord, FailureRecord

API_KEY = "sk-test-NEVER-LOG-ME-1234"

_SURNAMES = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Alvarez", "Novak", "Brennan", "Haddad", "Kowalski", "Fischer"]


def news_article(i: int, *, marker: str = "", body: str = "") -> str:
    """A short, distinct news article in the plain-text format (header, blank line, body)."""
    name = f"Maria {_SURNAMES[i % len(_SURNAMES)]}"
    text = (
        f"title: Council budget vote {i}\n"
        f"source: Test Wire\n"
        f"published: 2024-03-{i % 28 + 1:02d}\n\n"
        f"The city council of Northvale approved a budget of {100 + i} million euros on Monday, "
        f"after a debate about school funding and public transport. {marker}\n\n"
        f'"We will protect the schools and keep bus fares at {i} euros," said {name}, the council\'s finance director.\n\n'
        f"The Ministry of Finance said the plan for district {i} would be reviewed next year.\n"
    )
    return text + (f"\n{body}\n" if body else "")


def write_articles(folder: Path, count: int, *, start: int = 0, markers: dict[int, str] | None = None) -> list[str]:
    """Write `count` articles as a_000.txt...; returns their source-file names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(start, start + count):
        name = f"a_{i:03d}.txt"
        (folder / name).write_text(news_article(i, marker=(markers or {}).get(i, "")), encoding="utf-8")
        names.append(name)
    return names


@dataclass
class Audit:
    records: dict[str, int] = field(default_factory=dict)  # source_file -> number of records
    failures: set[str] = field(default_factory=set)  # source files with a failure record
    broken: list[str] = field(default_factory=list)  # files that do not parse/validate, and temp files
    duplicate_rows: int = 0
    lost: list[str] = field(default_factory=list)  # expected sources with neither a record nor a failure record
    manifest: dict | None = None

    @property
    def duplicate_records(self) -> list[str]:
        return [source for source, n in self.records.items() if n > 1]


def audit_outputs(output_dir: Path, expected_sources: set[str] | list[str] = ()) -> Audit:
    """Parse and validate everything under `output_dir`; count lost articles, broken files, duplicates."""
    audit = Audit()
    counts: Counter[str] = Counter()
    for path in sorted(output_dir.rglob("*")):
        if not path.is_file() or ".locks" in path.parts:
            continue
        rel = path.relative_to(output_dir).as_posix()
        if path.name.endswith(".tmp") or path.name.startswith("."):
            audit.broken.append(f"{rel}: temporary or hidden file left behind")
            continue
        try:
            if path.suffix == ".jsonl":
                lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line]
                for line in lines:
                    json.loads(line)
                audit.duplicate_rows += sum(n - 1 for n in Counter(lines).values() if n > 1)
            elif path.suffix == ".json":
                data = path.read_bytes()
                if path.parent.name == "records" and path.parent.parent == output_dir:
                    record = ArticleRecord.model_validate_json(data)
                    if path.stem != record.article.id:
                        audit.broken.append(f"{rel}: file name is not the article id")
                    counts[record.article.source_file] += 1
                elif path.parent.name == "failed" and path.parent.parent == output_dir:
                    audit.failures.add(FailureRecord.model_validate_json(data).source_file)
                else:
                    parsed = json.loads(data)
                    if rel == "manifest.json":
                        audit.manifest = parsed
        except (ValueError, UnicodeDecodeError) as error:
            audit.broken.append(f"{rel}: {type(error).__name__}: {str(error)[:200]}")
    audit.records = dict(counts)
    audit.lost = sorted(s for s in expected_sources if s not in counts and s not in audit.failures)
    return audit
