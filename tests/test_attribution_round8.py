"""Attribution rules of the eighth PolNeAR-train error analysis (invented sentences, no corpus text)."""

from __future__ import annotations

from tests.test_candidates import attributed

INTRO = "Tom Reed runs the harbor board. "


def test_an_attribution_set_off_by_commas_below_the_root_reports_both_sides() -> None:
    # "said" hangs on a clause under the root (the clause after the colon): not the root's own parenthetical.
    found = attributed(INTRO + "Unless the council pays, Reed said, the answer is plain: the mill will shut.")
    assert ("indirect", "Unless the council pays", "Tom Reed") in found
    assert ("indirect", "the answer is plain: the mill will shut", "Tom Reed") in found


def test_a_short_quote_that_opens_its_sentence_and_is_signed_by_a_speech_verb_is_a_quote() -> None:
    found = attributed(INTRO + '"Rates matter," Reed said. "Ask any family with a mortgage."')
    assert ("direct", "Rates matter", "Tom Reed") in found
    title_like = attributed(INTRO + '"Not Bristol. Not Leeds," Reed said. "The ferry goes north."')
    assert ("direct", "Not Bristol. Not Leeds", "Tom Reed") in title_like


def test_a_short_title_inside_a_sentence_is_not_a_quote_though_a_speech_verb_follows() -> None:
    found = attributed(INTRO + 'At the fair "Harbor Days," Reed said the ferry was safe.')
    assert not any(quote == "Harbor Days" for _, quote, _ in found), found
    assert ("indirect", "the ferry was safe", "Tom Reed") in found


def test_the_short_piece_after_a_cut_attribution_is_kept() -> None:
    found = attributed(INTRO + "Every plan to save the old mill this winter, he said, looks doomed.")
    assert ("indirect", "looks doomed", "Tom Reed") in found


def test_a_clause_after_a_trailing_attribution_is_reported_too() -> None:
    found = attributed(INTRO + "The plan will fail, he said, because nobody pays for it.")
    assert ("indirect", "The plan will fail", "Tom Reed") in found
    assert ("indirect", "because nobody pays for it", "Tom Reed") in found
    # A participle after it is not: "citing the budget" is what he did, not what he said.
    cited = attributed(INTRO + "The plan will fail, he said, citing the budget.")
    assert [quote for _, quote, _ in cited] == ["The plan will fail"]


def test_a_gerund_after_a_preposition_of_time_or_means_shares_the_clause_subject() -> None:
    found = attributed(INTRO + "Reed ended the long meeting by saying he would sell the old ferry to the council.")
    assert ("indirect", "he would sell the old ferry to the council", "Tom Reed") in found
    later = attributed(INTRO + "Reed, before first saying he would not sell the mill, signed a deal this week.")
    assert ("indirect", "he would not sell the mill", "Tom Reed") in later


def test_the_rest_of_a_clause_an_attribution_interrupts_is_reported_too() -> None:
    found = attributed(INTRO + "The fix is simple, he said, to raise the ferry fare in the summer months.")
    assert ("indirect", "The fix is simple", "Tom Reed") in found
    assert ("indirect", "to raise the ferry fare in the summer months", "Tom Reed") in found
    # What belongs to the attribution itself is not: "he said, on Monday."
    dated = attributed(INTRO + "The ferry will close, he said, on Monday.")
    assert [quote for _, quote, _ in dated] == ["The ferry will close"]


def test_a_clause_before_a_colon_is_not_what_the_speech_verb_after_it_says() -> None:
    # The parser gives "said" two clausal complements: the clause before the colon and the one after it.
    found = attributed(
        INTRO + "Reed has courted the island towns because it has worked: He said he has sold about 4,000 tickets "
        "in the two weeks since the fair, all without raising the fare."
    )
    quotes = [quote for _, quote, speaker in found if speaker == "Tom Reed"]
    assert any(q.startswith("he has sold about 4,000 tickets") for q in quotes), found
    assert not any("courted the island towns" in q for q in quotes), found


def test_an_inverted_attribution_inside_the_clause_it_reports_is_cut_out_with_its_name() -> None:
    found = attributed(
        INTRO + "The new timetable for the winter ferries, said Ann Lee, a planner at the Harbor Institute, "
        "would leave the island cut off."
    )
    assert ("indirect", "The new timetable for the winter ferries", "Ann Lee") in found
    assert ("indirect", "would leave the island cut off", "Ann Lee") in found
