"""A 2,500-word article is processed completely, on the embedded model.

The article is generated (25 paragraphs by different named sources) so the
test knows exactly which quotes stand in its last paragraphs. Its last paragraph
names a company whose name says nothing of its type: the rules leave it "other",
so its type in the record must be the model's answer to a question about a
mention at the very end of a long article (the answers are recorded by a spy on
`StructuredLLM.ask`; the 1.5B model's choice itself varies, so it is not fixed here).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.ingest import read_articles
from pipeline.llm import StructuredLLM
from pipeline.process import extract_record
from pipeline.run import RunConfig, run_batch
from pipeline.write import iter_records

pytestmark = pytest.mark.slow

FIRST = ["Maria", "Tomas", "Aisha", "Kenji", "Elena", "Samuel", "Ingrid", "Rafael", "Nadia", "Oliver", "Priya", "Lucas", "Hanna"]
LAST = [
    "Keller", "Novak", "Rahman", "Sato", "Petrova", "Okafor", "Lindqvist", "Moreno", "Haddad", "Brennan", "Iyer", "Duarte", "Virtanen",
    "Fischer", "Kowalski", "Nakamura", "Osei", "Castillo", "Berg", "Mendes", "Quinn", "Tanaka", "Abara", "Horvath", "Larsen",
]  # fmt: skip
ORGS = ["Northfield Institute for Energy Studies", "Harbour Valley Steel Corp", "Central Statistics Office", "Alpine Grid Association", "Meridian Bank"]
LAST_COMPANY = "Corvantis"  # no word in it gives its type away
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
    paragraphs.append(f"Shares of {LAST_COMPANY} rose 4 percent after {LAST_COMPANY} said it would supply equipment to the grid operators.")
    return "title: Regional economy roundup\npublished: 2026-01-15\nsource: Test Wire\n\n" + "\n\n".join(paragraphs) + "\n", tail_quotes


def test_2500_word_article_is_extracted_to_its_last_paragraph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, tail_quotes = long_article()
    body_words = len(text.split("\n\n", 1)[1].split())
    assert body_words >= 2500, body_words
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "long.txt").write_text(text, encoding="utf-8")
    [article], failures = read_articles(inputs)
    assert not failures

    asked: list[tuple[str, Any]] = []
    real_ask = StructuredLLM.ask

    def spy(self: StructuredLLM, system: str, question: str, response_model: Any, **kwargs: Any) -> Any:
        answer = real_ask(self, system, question, response_model, **kwargs)
        asked.append((system + "\n" + question, answer))
        return answer

    monkeypatch.setattr(StructuredLLM, "ask", spy)
    manifest = run_batch(RunConfig(inputs, tmp_path / "out"))
    assert not manifest["failures"], manifest["failures"]
    [record] = list(iter_records(tmp_path / "out"))
    assert record.provenance.usage.calls > 0
    assert {org.name: org.type for org in extract_record(article, None, model="rules only", backend="rules").organisations}[LAST_COMPANY] == "other"
    answers = [getattr(answer, f"o{hit[1]}") for prompt, answer in asked if (hit := re.search(rf"\bo(\d+): {LAST_COMPANY} \(", prompt))]
    assert len(answers) == 1, "the model was not asked (or asked twice) about the article's last organisation"
    assert {org.name: org.type for org in record.organisations}[LAST_COMPANY] == answers[0], "the model's answer was not used"
    found = {(q.speaker.name, q.text) for q in record.quotes}
    for speaker, quote in tail_quotes:
        assert any(quote in text_ and name == speaker for name, text_ in found), f"missing from the last paragraphs: {speaker}: {quote}"
    for q in record.quotes:
        assert record.article.text[q.span.start : q.span.end] == q.text
