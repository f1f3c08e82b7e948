"""Candidate finding and rule attribution on synthetic sentences (no dev-set text)."""

from __future__ import annotations

import pytest

from pipeline.candidates import find_candidates, quoted_spans, trim_span
from pipeline.normalise import Org, Person
from pipeline.process import _rule_speakers, inventory_for
from pipeline.segment import segment


def attributed(text: str) -> list[tuple[str, str, str | None]]:
    """(type, quote text, speaker name) for every candidate the rules attribute."""
    seg = segment(text)
    candidates = find_candidates(seg)
    inventory = inventory_for(seg, candidates)
    guesses = _rule_speakers(candidates, inventory, text)
    out = []
    for c, g in zip(candidates, guesses, strict=True):
        src = g.source
        out.append((c.type, text[c.start : c.end], src.name if isinstance(src, Person | Org) else None))
    return out


def speaker_of(text: str, fragment: str) -> str | None:
    for _, quote, speaker in attributed(text):
        if fragment in quote:
            return speaker
    raise AssertionError(f"no candidate contains {fragment!r}: {attributed(text)}")


def test_quoted_spans_drop_trailing_comma_and_keep_final_period() -> None:
    text = '"We will open two plants next year," she said. "Demand is strong."'
    spans = [text[s:e] for s, e in quoted_spans(text, [(0, len(text))])]
    assert spans == ["We will open two plants next year", "Demand is strong."]


def test_trim_span_drops_leading_that_and_final_period() -> None:
    text = "that prices will rise."
    s, e = trim_span(text, 0, len(text), drop_final_period=True)
    assert text[s:e] == "prices will rise"


def test_said_clause_is_indirect_with_named_speaker() -> None:
    text = "Maria Gonzalez, an analyst at Harbor Capital Partners, said that interest rates would fall next spring."
    [(kind, quote, speaker)] = attributed(text)
    assert kind == "indirect" and quote == "interest rates would fall next spring" and speaker == "Maria Gonzalez"


def test_the_commission_resolves_to_the_commission_named_earlier() -> None:
    text = (
        "The Federal Trade Commission opened an inquiry into Acme Widgets Inc. on Monday.\n\n"
        "The commission said it was concerned about prices charged to small retailers."
    )
    assert speaker_of(text, "concerned about prices") == "Federal Trade Commission"


def test_the_company_resolves_to_the_most_recent_company() -> None:
    text = (
        "Regulators in Ottawa questioned Northwind Logistics Ltd. about delays.\n\n"
        "The company said deliveries would return to normal within two weeks."
    )
    assert (speaker_of(text, "deliveries would return") or "").startswith("Northwind Logistics")


def test_unnamed_spokesperson_speaks_for_the_organisation() -> None:
    text = (
        "Reuters quoted an Acme Corp spokesperson as saying the fine was unjustified.\n\n"
        '"We will appeal the decision in every court available to us," the spokesperson said.'
    )
    assert speaker_of(text, "fine was unjustified") == "Acme Corp"
    assert speaker_of(text, "We will appeal") == "Acme Corp"


def test_named_spokesman_inside_the_subject_is_the_speaker() -> None:
    text = '"We see no reason for a ban," the ministry\'s chief spokesman Peter Lindqvist told reporters.'
    assert speaker_of(text, "no reason for a ban") == "Peter Lindqvist"


def test_appositive_names_the_speaking_body() -> None:
    text = "The bloc's executive arm, the European Commission, said on Friday it would review the merger."
    assert speaker_of(text, "review the merger") == "European Commission"


def test_unnamed_groups_are_not_attributed() -> None:
    text = "Many economists said growth would slow sharply in the second half of the year."
    assert all(speaker is None for _, _, speaker in attributed(text))


def test_noting_participle_shares_the_main_subject() -> None:
    text = "Noting that exports had weakened for three months, Daniel Okafor said the central bank would cut rates."
    assert speaker_of(text, "exports had weakened") == "Daniel Okafor"


def test_accused_of_reports_the_charge() -> None:
    text = "Senator Alice Romero accused the agency of ignoring repeated safety warnings from inspectors."
    assert ("indirect", "ignoring repeated safety warnings from inspectors", "Alice Romero") in attributed(text)


def test_proposal_without_reported_content_is_not_a_quote() -> None:
    text = "Helmut Berger proposed new rules for online lenders."
    assert attributed(text) == []


def test_embedded_speech_verb_does_not_create_a_backward_clause() -> None:
    text = "With more orders arriving every week, Karen Liu said she expects hiring to pick up."
    quotes = [q for _, q, _ in attributed(text)]
    assert "she expects hiring to pick up" in quotes
    assert not any(q.startswith("With more orders") for q in quotes)


@pytest.mark.parametrize("verb", ["said", "added", "told reporters"])
def test_inverted_trailing_attribution(verb: str) -> None:
    text = f'"Sales will double by 2030," {verb.split()[0]} Tomas Eriksen, chief executive of Baltic Freight Group.'
    assert speaker_of(text, "Sales will double") == "Tomas Eriksen"


def test_trim_span_drops_leading_punctuation_and_that() -> None:
    from pipeline.candidates import trim_span

    text = "According to the agency, that prices rose, it said."
    start = text.index(",")
    s, e = trim_span(text, start, text.index(", it"))
    assert text[s:e] == "prices rose"


def test_per_doc_tables_agree_with_spacy() -> None:
    """The cached sentence and entity tables (a speed-up) give what spaCy's own accessors give."""
    from pipeline.candidates import _ents_in, _facts, _sentence_of

    text = "Ann Lee met Bo Chan in Paris on Monday. She said the talks went well.\n\nAcme Corp said profits rose. He agreed."
    doc = segment(text).doc
    assert _facts(doc).text == doc.text
    assert _facts(doc).ents == tuple(doc.ents)
    for token in doc:
        assert (_sentence_of(token).start, _sentence_of(token).end) == (token.sent.start, token.sent.end)
    for sent in doc.sents:
        assert [(e.start, e.end) for e in _ents_in(sent)] == [(e.start, e.end) for e in sent.ents]
    assert speaker_of(text, "the talks went well") == "Ann Lee"
