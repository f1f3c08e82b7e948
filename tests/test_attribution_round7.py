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



def test_praise_or_blame_reports_the_object_with_its_reason() -> None:
    criticised = "Ann Lee criticized the mayor for closing the harbour road in winter."
    assert ("indirect", "the mayor for closing the harbour road in winter", "Ann Lee") in attributed(criticised)
    credited = "Tom Reed, the ferry captain, credited the council with saving the winter service."
    assert ("indirect", "the council with saving the winter service", "Tom Reed") in attributed(credited)
    blamed = 'Ann Lee blamed the closure of the harbour road on "reckless" planners and asked for a review.'
    assert ("indirect", 'the closure of the harbour road on "reckless" planners', "Ann Lee") in attributed(blamed)


def test_a_request_reports_who_is_asked_and_to_do_what() -> None:
    assert ("indirect", "voters to stay home on Tuesday", "Tom Reed") in attributed("Tom Reed asked voters to stay home on Tuesday.")
    assert ("indirect", "the council to close the harbour road", "Ann Lee") in attributed("Ann Lee urged the council to close the harbour road.")


def test_a_comparison_attribution_or_dismissal_reports_the_object_with_its_second_term() -> None:
    likened = "Ann Lee likened the new toll to a tax on the island's poorest families."
    assert ("indirect", "the new toll to a tax on the island's poorest families", "Ann Lee") in attributed(likened)
    rise = "Tom Reed attributed the rise in fares to higher fuel prices."
    assert ("indirect", "the rise in fares to higher fuel prices", "Tom Reed") in attributed(rise)
    hoax = "Ann Lee dismissed the report as a hoax invented by her rivals."
    assert ("indirect", "the report as a hoax invented by her rivals", "Ann Lee") in attributed(hoax)
