"""Attribution rules of the PolNeAR-train error analysis (synthetic sentences, no corpus text)."""

from __future__ import annotations

from tests.test_candidates import attributed, speaker_of


def test_second_said_hung_on_the_reported_clause_keeps_the_speaker() -> None:
    text = (
        "Maria Lopez is the chair of the Harbor Council.\n\n"
        "Lopez said Tom Reed had begun calling members - there are twelve of them - but said the final outcome was still open."
    )
    assert speaker_of(text, "the final outcome was still open") == "Maria Lopez"


def test_members_of_a_party_are_an_unnamed_group() -> None:
    text = "The Republican Party met in Ohio on Monday. Many Republicans said the tax plan would hurt small farms in the state."
    assert all(speaker is None for _, quote, speaker in attributed(text) if "tax plan" in quote)


def test_naming_verb_reports_the_object_with_its_name() -> None:
    text = 'Jan Novak, the mayor of Brno, called the new budget "a reckless gamble with our future" on Tuesday.'
    quotes = [q for _, q, s in attributed(text) if s == "Jan Novak"]
    assert any("reckless gamble" in q for q in quotes)


def test_reported_clause_before_a_later_quote_is_kept() -> None:
    text = (
        "Anna Berg said she saw no need to change anything about her campaign, telling Bob Stone that "
        "\u201cwe tell the truth, we deal with the issues\u201d and that she had seen continued support from voters over the past week."
    )
    quotes = [q for _, q, s in attributed(text) if s == "Anna Berg"]
    assert any(q.startswith("she saw no need to change anything about her campaign") for q in quotes), quotes
    assert "we tell the truth, we deal with the issues" in quotes, quotes
