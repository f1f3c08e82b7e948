"""The record contract: validators reject ungrounded or malformed records; exported schemas match."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from schemas.export import SCHEMA_FILES, schema_text
from schemas.records import (
    CAP_MAJOR_TOPICS,
    ArticleMeta,
    ArticleRecord,
    Organisation,
    PolicyArea,
    Provenance,
    Quote,
    Span,
    Speaker,
    normalise_name,
    organisation_id,
)

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
TEXT = 'Jane Roe, chief economist at Acme Group, said growth will slow. "Prices are rising," she added.'


def _record(**overrides) -> dict:
    acme = organisation_id("Acme Group")
    start = TEXT.index("growth")
    quote_start = TEXT.index("Prices")
    data = {
        "article": {"id": "art_1", "source_file": "a.txt", "text": TEXT},
        "quotes": [
            {
                "text": "growth will slow",
                "type": "indirect",
                "speaker": {"name": "Jane Roe", "role": "chief economist", "organisation_id": acme},
                "span": {"start": start, "end": start + len("growth will slow")},
                "cue": "said",
            },
            {
                "text": "Prices are rising,",
                "type": "direct",
                "speaker": {"name": "Jane Roe"},
                "span": {"start": quote_start, "end": quote_start + len("Prices are rising,")},
            },
        ],
        "organisations": [
            {"id": acme, "name": "Acme Group", "aliases": [], "type": "company", "country": "US", "mentions": [{"start": TEXT.index("Acme"), "end": TEXT.index("Acme") + 10}]}
        ],
        "policy_areas": [{"code": 1, "name": "Macroeconomics", "evidence": [{"start": 0, "end": 20}]}],
        "provenance": {"model": "m", "backend": "b", "prompt_version": "p", "extracted_at": datetime.now(UTC).isoformat(), "seconds": 1.0},
    }
    data.update(overrides)
    return data


def test_valid_record_round_trips_through_json() -> None:
    record = ArticleRecord.model_validate(_record())
    again = ArticleRecord.model_validate_json(record.model_dump_json())
    assert again == record


def test_quote_span_must_slice_exactly_its_text() -> None:
    data = _record()
    data["quotes"][0]["span"]["start"] += 1
    with pytest.raises(ValidationError, match="slices"):
        ArticleRecord.model_validate(data)


def test_quote_text_not_in_article_is_rejected() -> None:
    data = _record()
    data["quotes"][0]["text"] = "growth will soar"
    with pytest.raises(ValidationError, match="not grounded"):
        ArticleRecord.model_validate(data)


def test_span_past_the_end_is_rejected() -> None:
    data = _record()
    data["quotes"][0]["span"] = {"start": len(TEXT) - 2, "end": len(TEXT) + 5}
    with pytest.raises(ValidationError, match="runs past"):
        ArticleRecord.model_validate(data)


@pytest.mark.parametrize("code", [0, 11, 22, 99])
def test_codes_outside_the_cap_codebook_are_rejected(code: int) -> None:
    with pytest.raises(ValidationError, match="not a CAP major-topic code"):
        PolicyArea(code=code, name="Whatever")


def test_cap_name_must_match_code() -> None:
    with pytest.raises(ValidationError, match="is 'Technology'"):
        PolicyArea(code=17, name="Macroeconomics")
    assert PolicyArea(code=17, name=CAP_MAJOR_TOPICS[17]).name == "Technology"


def test_quote_type_is_direct_or_indirect() -> None:
    with pytest.raises(ValidationError):
        Quote(text="x", type="paraphrase", speaker=Speaker(name="A"), span=Span(start=0, end=1))


def test_organisation_id_is_derived_from_normalised_name() -> None:
    assert organisation_id("Acme Group") == organisation_id("  ACME   group ")
    assert organisation_id("Acme Group") != organisation_id("Acme")
    with pytest.raises(ValidationError, match="not derived"):
        Organisation(id=organisation_id("Other"), name="Acme Group")


def test_normalise_name_ignores_case_accents_and_punctuation() -> None:
    assert normalise_name("Société Générale, S.A.") == normalise_name("societe generale s a")
    assert normalise_name("R&D Centre") == "r and d centre"


def test_country_must_be_iso_alpha2() -> None:
    with pytest.raises(ValidationError):
        Organisation(id=organisation_id("Acme"), name="Acme", country="China")


def test_mention_must_be_name_or_alias() -> None:
    data = _record()
    data["organisations"][0]["mentions"] = [{"start": 0, "end": 8}]  # "Jane Roe"
    with pytest.raises(ValidationError, match="neither its name nor an alias"):
        ArticleRecord.model_validate(data)


def test_speaker_organisation_must_be_declared() -> None:
    data = _record()
    data["quotes"][0]["speaker"]["organisation_id"] = organisation_id("Nobody Inc")
    with pytest.raises(ValidationError, match="not in organisations"):
        ArticleRecord.model_validate(data)


def test_duplicate_organisations_and_codes_are_rejected() -> None:
    data = _record()
    data["organisations"] = data["organisations"] * 2
    with pytest.raises(ValidationError, match="duplicate ids"):
        ArticleRecord.model_validate(data)
    data = _record()
    data["policy_areas"] = data["policy_areas"] * 2
    with pytest.raises(ValidationError, match="listed twice"):
        ArticleRecord.model_validate(data)


def test_extra_fields_are_rejected() -> None:
    data = _record()
    data["article"]["sentiment"] = "positive"
    with pytest.raises(ValidationError, match="sentiment"):
        ArticleRecord.model_validate(data)


@pytest.mark.parametrize("filename", sorted(SCHEMA_FILES))
def test_exported_schema_files_match_the_models(filename: str) -> None:
    path = SCHEMA_DIR / filename
    assert path.exists(), f"{path} missing: run `news-records export-schemas`"
    assert path.read_text(encoding="utf-8") == schema_text(SCHEMA_FILES[filename]), f"{filename} is stale: run `news-records export-schemas`"


def test_exported_schema_validates_a_real_record() -> None:
    schema = json.loads((SCHEMA_DIR / "article_record.schema.json").read_text())
    record = ArticleRecord.model_validate(_record())
    jsonschema.validate(json.loads(record.model_dump_json()), schema)
    broken = json.loads(record.model_dump_json())
    broken["quotes"][0]["type"] = "rumour"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_article_meta_requires_text() -> None:
    with pytest.raises(ValidationError):
        ArticleMeta(id="a", source_file="a.txt")  # type: ignore[call-arg]


def test_provenance_defaults_to_current_schema_version() -> None:
    p = Provenance(model="m", backend="b", prompt_version="p", extracted_at=datetime.now(UTC), seconds=0)
    assert p.schema_version == ArticleRecord.model_fields["schema_version"].default
