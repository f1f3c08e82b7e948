"""Statements of sources the article does not name ("analysts said", "a senior official said").

They never enter `quotes` (named speakers only, as the annotation guidelines want); the record keeps
them apart in `unnamed_source_quotes`, with the source as printed and both spans grounded, and the
evaluator's statement figure counts them beside `quotes` for gold that annotates unnamed sources
(PolNeAR).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.evaluate import Counts, score_article
from pipeline.ingest import parse_text_article
from pipeline.process import extract_record
from pipeline.run import RunConfig, run_batch
from schemas.records import ArticleRecord

ARTICLE = (
    "title: Rates\n\n"
    "Analysts said the central bank would cut interest rates again in March.\n\n"
    '"We expect more easing before the summer," said John Whitfield, chief economist at Harbor Bank.\n\n'
    "A senior official said the government had no plan to raise taxes this year.\n"
)


@pytest.fixture(scope="module")
def record() -> ArticleRecord:
    return extract_record(parse_text_article(ARTICLE, "rates.txt"), None, model="rules", backend="rules")


def test_unnamed_sources_are_kept_apart_from_quotes_with_their_printed_description(record: ArticleRecord) -> None:
    text = record.article.text
    assert [q.speaker.name for q in record.quotes] == ["John Whitfield"]
    unnamed = {u.source: u for u in record.unnamed_source_quotes}
    assert set(unnamed) == {"Analysts", "A senior official"}
    assert unnamed["Analysts"].text == "the central bank would cut interest rates again in March"
    assert unnamed["A senior official"].text == "the government had no plan to raise taxes this year"
    for u in record.unnamed_source_quotes:
        assert text[u.span.start : u.span.end] == u.text and text[u.source_span.start : u.source_span.end] == u.source
        assert u.cue == "said" and u.type == "indirect"
    assert not {q.text for q in record.quotes} & {u.text for u in record.unnamed_source_quotes}


def test_a_pronoun_without_anyone_to_refer_to_gives_no_unnamed_source() -> None:
    article = parse_text_article("title: T\n\nHe said the bridge would reopen to traffic next week.\n", "p.txt")
    record = extract_record(article, None, model="rules", backend="rules")
    assert record.quotes == [] and record.unnamed_source_quotes == []


def test_an_ungrounded_source_span_fails_validation(record: ArticleRecord) -> None:
    data = record.model_dump(mode="json")
    data["unnamed_source_quotes"][0]["source"] = "Economists"
    with pytest.raises(ValueError, match=r"unnamed_source_quotes\[0\].*not the source 'Economists'"):
        ArticleRecord.model_validate(data)


def test_statement_figure_counts_unnamed_source_quotes_right_and_wrong(record: ArticleRecord) -> None:
    data = record.model_dump(mode="json")
    gold = {
        "source_file": "rates.txt",
        "quotes_only": True,
        "quotes": [
            {"text": "the central bank would cut interest rates again in March", "speaker": None, "type": "indirect"},
            {"text": "We expect more easing before the summer,", "speaker": "John Whitfield", "type": "direct"},
        ],
    }
    scores = score_article(data, gold)
    assert scores.quote_text == Counts(1, 1, 2), "quote figures read `quotes` only"
    # The analysts' statement is matched; the official's, not in this gold, counts against precision.
    assert scores.statement_text == Counts(2, 3, 2)
    assert scores.quote_speaker == Counts(1, 1, 1)


def test_a_run_writes_the_unnamed_source_table_row_for_row(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rates.txt").write_text(ARTICLE, encoding="utf-8")
    run_batch(RunConfig(tmp_path / "in", tmp_path / "out", rules_only=True))
    rows = [json.loads(line) for line in (tmp_path / "out" / "unnamed_source_quotes.jsonl").read_text().splitlines()]
    assert sorted(r["source"] for r in rows) == ["A senior official", "Analysts"]
    assert all(r["source_file"] == "rates.txt" and r["article_id"].startswith("art_") for r in rows)
    assert sorted(r["quote_index"] for r in rows) == [0, 1]
