"""A 2,500-word article is processed completely, on the embedded model.

The article is generated (25 paragraphs by different named sources, with
pronoun attributions that need the model) so the test knows exactly which
quotes stand in its last paragraphs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest import read_articles
from pipeline.run import RunConfig, run_batch
from pipeline.write import iter_records

pytestmark = pytest.mark.slow

FIRST = ["Maria", "Tomas", "Aisha", "Kenji", "Elena", "Samuel", "Ingrid", "Rafael", "Nadia", "Oliver", "Priya", "Lucas", "Hanna"]
LAST = [
    "Keller", "Novak", "Rahman", "Sato", "Petrova", "Okafor", "Lindqvist", "Moreno", "Haddad", "Brennan", "Iyer", "Duarte", "Virtanen",
    "Fischer", "Kowalski", "Nakamura", "Osei", "Castillo", "Berg", "Mendes", "Quinn", "Tanaka", "Abara", "Horvath", "Larsen",
]  # fmt: skip
ORGS = ["Northfield Institute for Energy Studies", "Harbour Valley Steel Corp", "Central Statistics Office", "Alpine Grid Association", "Meridian Bank"]
TOPICS = ["grid investment", "steel output", "wage growth", "battery storage", "interest rates"]


def long_article() -> tuple[str, list[tuple[str, str]]]:
    """Text of over 2,500 words (about 3,400) and the (speaker, quote) pairs of its last three paragraphs."""
    paragraphs: list[str] = []
    tail_quotes: list[tuple[str, str]] = []
    for i in range(25):
        name = f"{FIRST[i % len(FIRST)]} {LAST[i]}"  # one surname per source, as in real reporting
        org, topic = ORGS[i % len(ORGS)], TOPICS[i % len(TOPICS)]
        direct = f"We expect {topic} to change direction within the next {i + 2} quarters, and we are preparing for it"
        reported = f"the outlook for {topic} in the northern provinces depended on decisions still to be taken by regulators in round {i + 1}"
        filler = (
            f"The debate over {topic} has run for months in the region, with officials, companies and researchers "
            f"publishing competing estimates of what the next year will bring. Analysts note that the figures released "
            f"this week covered {i + 3} sectors and revised several earlier numbers, which complicated comparisons with "
            f"the previous period and left investors looking for clearer signals from policymakers and industry groups alike."
        )
        paragraphs.append(
            f"{filler} {name}, a senior analyst at the {org}, said {reported}. "
            f"\u201c{direct},\u201d {name.split()[1]} said. She added that the {org} would publish its own review of {topic} before the summer break."
        )
        if i >= 22:
            tail_quotes.append((name, direct))
            tail_quotes.append((name, reported))
    return "title: Regional economy roundup\npublished: 2026-01-15\nsource: Test Wire\n\n" + "\n\n".join(paragraphs) + "\n", tail_quotes


def test_2500_word_article_is_extracted_to_its_last_paragraph(tmp_path: Path) -> None:
    text, tail_quotes = long_article()
    body_words = len(text.split("\n\n", 1)[1].split())
    assert body_words >= 2500, body_words
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "long.txt").write_text(text, encoding="utf-8")
    [article], failures = read_articles(inputs)
    assert not failures

    manifest = run_batch(RunConfig(inputs, tmp_path / "out"))
    assert not manifest["failures"], manifest["failures"]
    [record] = list(iter_records(tmp_path / "out"))
    assert record.provenance.usage.calls > 0
    found = {(q.speaker.name, q.text) for q in record.quotes}
    for speaker, quote in tail_quotes:
        assert any(quote in text_ and name == speaker for name, text_ in found), f"missing from the last paragraphs: {speaker}: {quote}"
    for q in record.quotes:
        assert record.article.text[q.span.start : q.span.end] == q.text
