"""Attribution rules of the eighth PolNeAR-train error analysis (synthetic sentences, no corpus text)."""

from __future__ import annotations

from tests.test_candidates import attributed

INTRO = "Tom Reed runs the harbor board. "


def test_an_attribution_set_off_by_commas_below_the_root_reports_both_sides() -> None:
    # "said" hangs on "is", itself a clause under the root "paid": not the root's own parenthetical.
    found = attributed(INTRO + "If the pier falls down, Reed said, there is a simple explanation: nobody paid for it.")
    assert ("indirect", "If the pier falls down", "Tom Reed") in found
    assert ("indirect", "there is a simple explanation: nobody paid for it", "Tom Reed") in found


def test_a_short_quote_that_opens_its_sentence_and_is_signed_by_a_speech_verb_is_a_quote() -> None:
    found = attributed(INTRO + '"Elections matter," Reed said. "Look at the records."')
    assert ("direct", "Elections matter", "Tom Reed") in found
    title_like = attributed(INTRO + '"Like Oakland. Or Ferguson," Reed said. "The numbers are worse."')
    assert ("direct", "Like Oakland. Or Ferguson", "Tom Reed") in title_like


def test_a_short_title_inside_a_sentence_is_not_a_quote_though_a_speech_verb_follows() -> None:
    found = attributed(INTRO + 'On the show "Harbor Week," Reed said the pier was safe.')
    assert not any(quote == "Harbor Week" for _, quote, _ in found), found
    assert ("indirect", "the pier was safe", "Tom Reed") in found


def test_the_short_piece_after_a_cut_attribution_is_kept() -> None:
    found = attributed(INTRO + "Any attempt to fix the pier this year, he said, looks hopeless.")
    assert ("indirect", "looks hopeless", "Tom Reed") in found


def test_a_clause_after_a_trailing_attribution_is_reported_too() -> None:
    found = attributed(INTRO + "The plan will fail, he said, because nobody pays for it.")
    assert ("indirect", "The plan will fail", "Tom Reed") in found
    assert ("indirect", "because nobody pays for it", "Tom Reed") in found
    # A participle after it is not: "citing the budget" is what he did, not what he said.
    cited = attributed(INTRO + "The plan will fail, he said, citing the budget.")
    assert [quote for _, quote, _ in cited] == ["The plan will fail"]


def test_a_gerund_after_a_preposition_of_time_or_means_shares_the_clause_subject() -> None:
    found = attributed(INTRO + "Reed stood out in the field by saying he would make peace with the union.")
    assert ("indirect", "he would make peace with the union", "Tom Reed") in found
    later = attributed(INTRO + "Reed, after first saying he would not run ads in the state, bought airtime this week.")
    assert ("indirect", "he would not run ads in the state", "Tom Reed") in later


def test_the_rest_of_a_clause_an_attribution_interrupts_is_reported_too() -> None:
    found = attributed(INTRO + "It is his job, he said, to talk to the council about the threat.")
    assert ("indirect", "It is his job", "Tom Reed") in found
    assert ("indirect", "to talk to the council about the threat", "Tom Reed") in found
    # What belongs to the attribution itself is not: "he said, on Monday."
    dated = attributed(INTRO + "The plan will fail, he said, on Monday.")
    assert [quote for _, quote, _ in dated] == ["The plan will fail"]


def test_a_clause_before_a_colon_is_not_what_the_speech_verb_after_it_says() -> None:
    # The parser gives "said" two clausal complements: the clause before the colon and the one after it.
    found = attributed(
        INTRO + "Reed has attacked the mayor online because it is paying off: He said he has raised about $100,000 "
        "in the 72 hours since the vote, all without leaving the city."
    )
    quotes = [quote for _, quote, speaker in found if speaker == "Tom Reed"]
    assert any(q.startswith("he has raised about $100,000") for q in quotes), found
    assert not any("attacked the mayor" in q for q in quotes), found


def test_an_inverted_attribution_inside_the_clause_it_reports_is_cut_out_with_its_name() -> None:
    found = attributed(
        INTRO + "Any clear reading of the mayor's actions, said Ann Lee, an expert on cities at the Harbor Institute, "
        "would see this as a retreat."
    )
    assert ("indirect", "Any clear reading of the mayor's actions", "Ann Lee") in found
    assert ("indirect", "would see this as a retreat", "Ann Lee") in found
