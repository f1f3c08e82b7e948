"""Attribution rules of the seventh PolNeAR-train error analysis (synthetic sentences, no corpus text)."""

from __future__ import annotations

from tests.test_candidates import attributed


def test_an_inverted_attribution_parsed_as_a_conjunct_reports_the_clause_before_it() -> None:
    text = (
        "In nearby Norwood, the old ferry yard is hanging on, but it is under heavy pressure from cheap imports, "
        "said the company's chief executive, Ann Lee. The yard employs 300 people."
    )
    assert ("indirect", "In nearby Norwood, the old ferry yard is hanging on, but it is under heavy pressure from cheap imports", "Ann Lee") in attributed(text)


def test_a_speech_verb_before_that_reports_the_clause_the_parser_hung_elsewhere() -> None:
    text = '"We have come a pretty long way in the last nine months," Ann Lee said, noting that at one point earlier in the race she had trailed the mayor by 50 points.'
    assert ("indirect", "at one point earlier in the race she had trailed the mayor by 50 points", "Ann Lee") in attributed(text)


def test_that_as_a_determiner_or_a_pronoun_introduces_no_clause() -> None:
    text = "Ann Lee ran the ferry for ten years. She declined that assignment and has since left the company. She does not mention that on the campaign trail."
    assert attributed(text) == []


def test_according_to_a_source_at_the_end_of_a_paragraph() -> None:
    text = "The bridge was closed last week after a crack was found. It is now cleared to carry traffic again, according to the F.A.A.\n\nMost drivers who use the bridge live on the island."
    assert ("indirect", "It is now cleared to carry traffic again", "F.A.A.") in attributed(text)


def test_according_to_closes_the_claim_before_it_when_a_new_one_follows_and() -> None:
    text = "Only one ferry was lost at sea last year in Norway, according to the Norwegian Maritime Authority, and there were only eight reported accidents on the fjords."
    assert ("indirect", "Only one ferry was lost at sea last year in Norway", "Norwegian Maritime Authority") in attributed(text)

