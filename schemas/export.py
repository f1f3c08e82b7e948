"""Export the JSON Schemas that downstream consumers validate against.

`tests/test_schemas.py` fails when these files and the models disagree; run
`news-records export-schemas` after changing a model.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.records import ArticleRecord, FailureRecord, Organisation, PolicyArea, Quote
from schemas.tables import TABLE_SCHEMA_FILES

SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "article_record.schema.json": ArticleRecord,
    "failure_record.schema.json": FailureRecord,
    "quote.schema.json": Quote,
    "organisation.schema.json": Organisation,
    "policy_area.schema.json": PolicyArea,
    **TABLE_SCHEMA_FILES,  # one per JSONL table in the output folder
}


def schema_text(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMA_FILES.items():
        path = folder / name
        path.write_text(schema_text(model), encoding="utf-8")
        written.append(path)
    return written
