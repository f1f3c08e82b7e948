"""The JSONL tables load straight into DuckDB and answer the analysts' questions on the dev set.

The SQL below is the README's, verbatim (with the output folder substituted):
the answers are checked against the same questions answered in Python from the
records themselves, and every row of every table validates against its model
in schemas/tables.py (whose JSON Schemas are published in schemas/).
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

duckdb = pytest.importorskip("duckdb")

from pipeline.registry import contextual_names, name_key, person_key, update_registry  # noqa: E402
from pipeline.run import RunConfig, run_batch  # noqa: E402
from pipeline.write import iter_records  # noqa: E402
from schemas.tables import TABLE_SCHEMA_FILES, ArticleOrganisationRow, MergeRow, OrganisationRow, PolicyAreaRow, QuoteRow, SpeakerRow, UnnamedSourceQuoteRow  # noqa: E402
from tests.support.paths import EVAL_DEV, require_eval_dev  # noqa: E402

DEV_ARTICLES = EVAL_DEV / "articles"

LOAD = """
CREATE VIEW quotes        AS SELECT * FROM read_json_auto('{out}/quotes.jsonl');
CREATE VIEW organisations AS SELECT * FROM read_json_auto('{out}/organisations.jsonl');
CREATE VIEW speakers      AS SELECT * FROM read_json_auto('{out}/speakers.jsonl');
CREATE VIEW policy_areas  AS SELECT * FROM read_json_auto('{out}/policy_areas.jsonl');
"""

# Quotes per organisation: quotes by the organisation itself or by a person speaking for it.
QUOTES_PER_ORGANISATION = """
WITH org_in_article AS (
  SELECT id AS organisation_id, name AS organisation, unnest(appearances) AS ap FROM organisations
)
SELECT o.organisation_id, o.organisation, count(*) AS quotes, count(DISTINCT q.article_id) AS articles
FROM quotes q
JOIN org_in_article o ON o.ap.article_id = q.article_id AND o.ap.record_id = q.speaker.organisation_id
GROUP BY ALL
ORDER BY quotes DESC, organisation;
"""

# Speakers per CAP topic: people and organisations quoted in articles on each topic.
SPEAKERS_PER_CAP_TOPIC = """
WITH spoke AS (SELECT id AS speaker_id, name AS speaker, unnest(quotes) AS ref FROM speakers)
SELECT p.code, p.name AS topic, count(DISTINCT s.speaker_id) AS speakers, list(DISTINCT s.speaker ORDER BY s.speaker) AS names
FROM spoke s
JOIN policy_areas p ON p.article_id = s.ref.article_id
GROUP BY ALL
ORDER BY speakers DESC, p.code;
"""

# Organisations appearing in more than one article.
ORGANISATIONS_IN_SEVERAL_ARTICLES = """
SELECT id, name, type, country, len(article_ids) AS articles, aliases
FROM organisations
WHERE len(article_ids) > 1
ORDER BY articles DESC, name;
"""


@pytest.fixture(scope="module")
def dev_tables(tmp_path_factory: pytest.TempPathFactory) -> dict:
    require_eval_dev()
    inputs = tmp_path_factory.mktemp("dev-articles")
    for path in DEV_ARTICLES.iterdir():
        shutil.copy(path, inputs / path.name)
    out = tmp_path_factory.mktemp("outputs")
    manifest = run_batch(RunConfig(inputs, out, rules_only=True))
    assert not manifest["failures"]
    update_registry(out)
    con = duckdb.connect()
    con.execute(LOAD.format(out=out.as_posix()))
    return {"out": out, "con": con, "records": list(iter_records(out))}


def rows(con, sql: str) -> list[dict]:  # noqa: ANN001
    result = con.execute(sql)
    columns = [c[0] for c in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_table_row_matches_its_published_model(dev_tables: dict) -> None:
    out = dev_tables["out"]
    for name, model in {"quotes.jsonl": QuoteRow, "article_organisations.jsonl": ArticleOrganisationRow, "policy_areas.jsonl": PolicyAreaRow, "unnamed_source_quotes.jsonl": UnnamedSourceQuoteRow, "organisations.jsonl": OrganisationRow, "speakers.jsonl": SpeakerRow, "merges.jsonl": MergeRow}.items():
        lines = jsonl(out / name)
        assert lines, name
        for line in lines:
            model.model_validate(line)
    for model in TABLE_SCHEMA_FILES.values():
        assert model.model_json_schema(mode="serialization")["type"] == "object"
    counts = rows(dev_tables["con"], "SELECT (SELECT count(*) FROM quotes) AS q, (SELECT count(*) FROM policy_areas) AS p")[0]
    assert counts == {"q": sum(len(r.quotes) for r in dev_tables["records"]), "p": sum(len(r.policy_areas) for r in dev_tables["records"])}


def test_quotes_per_organisation(dev_tables: dict) -> None:
    answer = rows(dev_tables["con"], QUOTES_PER_ORGANISATION)
    assert answer and answer == sorted(answer, key=lambda r: (-r["quotes"], r["organisation"]))
    # The same question from the records: a quote counts for the registry entry its speaker's organisation is in.
    registry = jsonl(dev_tables["out"] / "organisations.jsonl")
    entry_of = {(ap["article_id"], ap["record_id"]): (row["id"], row["name"]) for row in registry for ap in row["appearances"]}
    expected: dict[tuple[str, str], list[str]] = defaultdict(list)
    for record in dev_tables["records"]:
        for quote in record.quotes:
            if quote.speaker.organisation_id:
                expected[entry_of[(record.article.id, quote.speaker.organisation_id)]].append(record.article.id)
    assert {(r["organisation_id"], r["organisation"]): (r["quotes"], r["articles"]) for r in answer} == {k: (len(v), len(set(v))) for k, v in expected.items()}
    # Organisations that speak themselves are counted too (e.g. "the Commission said").
    assert any(q.speaker.kind == "organisation" for r in dev_tables["records"] for q in r.quotes)


def test_speakers_per_cap_topic(dev_tables: dict) -> None:
    answer = {r["code"]: r for r in rows(dev_tables["con"], SPEAKERS_PER_CAP_TOPIC)}
    codes = {a.code for r in dev_tables["records"] for a in r.policy_areas}
    assert codes and set(answer) == {c for c in codes if any(r.quotes and c in {a.code for a in r.policy_areas} for r in dev_tables["records"])}
    for code, row in answer.items():
        assert row["speakers"] >= len(row["names"]) >= 1, "two speakers may share a name, not the reverse"
        assert row["topic"]
    # From the records: every person quoted in an article is listed under each of that article's topics.
    for record in dev_tables["records"]:
        people = {person_key(q.speaker.name) for q in record.quotes if q.speaker.kind == "person"}
        for area in record.policy_areas:
            listed = {person_key(n) for n in answer[area.code]["names"]}
            assert people <= listed, (area.code, people - listed)
    # And nobody is listed under a topic none of their articles has.
    speakers = jsonl(dev_tables["out"] / "speakers.jsonl")
    topics_of = {r.article.id: {a.code for a in r.policy_areas} for r in dev_tables["records"]}
    for speaker in speakers:
        topics = set().union(*(topics_of[ref["article_id"]] for ref in speaker["quotes"]))
        for code, row in answer.items():
            assert (speaker["name"] in row["names"]) == (code in topics) or any(s["name"] == speaker["name"] and s["id"] != speaker["id"] for s in speakers)


def test_organisations_in_more_than_one_article(dev_tables: dict) -> None:
    answer = rows(dev_tables["con"], ORGANISATIONS_IN_SEVERAL_ARTICLES)
    assert all(r["articles"] > 1 for r in answer)
    # From the records: every name (not generic) that two articles' records share belongs to an organisation listed here.
    articles_of: dict[str, set[str]] = defaultdict(set)
    for record in dev_tables["records"]:
        for org in record.organisations:
            names = [org.name, *org.aliases]
            for n in set(names) - contextual_names(names):
                articles_of[name_key(n)].add(record.article.id)
    shared = {key for key, ids in articles_of.items() if len(ids) > 1}
    assert len(shared) >= 3, "the dev set names European Union, European Commission, China Daily and BBC in two articles each"
    listed = {name_key(n) for r in answer for n in (r["name"], *r["aliases"])}
    assert shared <= listed, shared - listed
    # ... and nothing else is: each listed organisation really is in several records.
    record_orgs = {(r.article.id, o.id) for r in dev_tables["records"] for o in r.organisations}
    for row in jsonl(dev_tables["out"] / "organisations.jsonl"):
        in_records = {ap["article_id"] for ap in row["appearances"] if (ap["article_id"], ap["record_id"]) in record_orgs}
        assert (len(in_records) > 1) == (row["id"] in {r["id"] for r in answer}), row["name"]
