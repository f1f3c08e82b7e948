"""Attribution rules of the third PolNeAR-train error analysis (synthetic sentences, no corpus text)."""

from __future__ import annotations

from types import SimpleNamespace

from pipeline.candidates import QuoteCandidate, SpeakerCue, find_candidates
from pipeline.ground import rule_speaker
from pipeline.normalise import Inventory, Org
from pipeline.organisations import _source_read_as_place
from pipeline.process import inventory_for
from pipeline.segment import Entity, segment
from tests.test_candidates import attributed


def test_an_abbreviated_title_before_a_name_is_not_a_sentence_end() -> None:
    for title, name in (("Harbor Police Sgt.", "Tom Reed"), ("Coast Guard spokesman Capt.", "Paul Hale")):
        text = f'"We will keep the base open for another decade," said {title} {name}, who runs the harbour office.'
        assert any("base" in s.text and name in s.text for s in segment(text).doc.sents), f"a sentence break after {title}"
        assert ("direct", "We will keep the base open for another decade", name) in attributed(text)


def test_said_a_and_insisted_b_are_two_statements_of_one_speaker() -> None:
    text = "Ola Berg said on Monday that the harbour plan would cost too much and insisted that the council had never voted on it."
    quotes = {q: s for _, q, s in attributed(text)}
    assert quotes.get("the harbour plan would cost too much") == "Ola Berg", quotes
    assert quotes.get("the council had never voted on it") == "Ola Berg", quotes


def test_a_reporting_participle_after_a_comma_starts_its_own_statement_of_the_same_speaker() -> None:
    text = "Ola Berg said the new tax would hurt farmers in the valley, adding that the mayor had ignored two warnings about it."
    quotes = {q: s for _, q, s in attributed(text)}
    assert quotes.get("the new tax would hurt farmers in the valley") == "Ola Berg", quotes
    assert quotes.get("the mayor had ignored two warnings about it") == "Ola Berg", quotes


def test_a_participle_after_a_quoted_comma_leaves_the_closing_mark_with_the_first_statement() -> None:
    text = 'Ola Berg said last week that Tom Reed represents "harbour money," stating during the meeting that the council had ignored two warnings.'
    quotes = {q: s for _, q, s in attributed(text)}
    assert any(q.endswith('money,"') and s == "Ola Berg" for q, s in quotes.items()), quotes
    assert quotes.get("the council had ignored two warnings") == "Ola Berg", quotes


def test_a_name_right_after_a_quote_is_its_speaker_whatever_the_verb() -> None:
    text = (
        "Lawmakers met on Tuesday. Tom Reed spoke first.\n\n"
        '"If they were serious about this, they would have backed the only bill with support from both sides," Ann Lee fumed. '
        '"That would have shown good faith."'
    )
    quotes = {q: s for _, q, s in attributed(text)}
    assert quotes.get("If they were serious about this, they would have backed the only bill with support from both sides") == "Ann Lee", quotes
    assert quotes.get("That would have shown good faith.") == "Ann Lee", quotes


def test_a_question_then_a_surname_and_any_verb() -> None:
    text = 'Ann Lee and Tom Reed argued about the budget.\n\n"You know, it happens, right?" Reed went on, as if he had not heard her.'
    assert ("direct", "You know, it happens, right?", "Tom Reed") in attributed(text)


def test_a_name_starting_the_next_sentence_does_not_sign_a_quote_that_ended_one() -> None:
    text = 'Ann Lee met Tom Reed at the harbour.\n\n"We will win this race in the autumn." Reed then left the stage without a word.'
    assert all(s != "Tom Reed" for _, q, s in attributed(text) if q.startswith("We will win")), attributed(text)


def test_a_quote_after_a_colon_is_the_subjects_of_the_verb_before_it() -> None:
    text = 'Or, as Tom Reed, a former minister, put it: "The barbarians are no longer at the gate."'
    assert ("direct", "The barbarians are no longer at the gate.", "Tom Reed") in attributed(text)


def test_a_name_and_appositive_after_a_quote_sign_it_when_the_parse_hangs_the_name_on_the_quote() -> None:
    text = (
        "The vice president could fume at the mention.\n\n"
        "''They were professionals, but also competitors,'' Tom H. Reed, the mayor's former chief of staff, said of their time in office."
    )
    assert ("direct", "They were professionals, but also competitors", "Tom H. Reed") in attributed(text)


def test_an_organisation_source_whose_bounds_the_organisation_stage_drew_otherwise_is_still_named() -> None:
    text = "Spending rose by a third, according to the Norwood Center for Justice."
    start = text.index("the Norwood")
    inventory = Inventory(
        people=[],
        organisations=[
            Org(key="O1", name="Norwood Center", mentions=[(start + 4, start + 18)]),
            Org(key="O2", name="Center for Justice", mentions=[(start + 12, start + 30)]),
        ],
    )
    cue = SpeakerCue("the Norwood Center for Justice", start, start + 30, "organisation")
    candidate = QuoteCandidate(0, 0, 24, "indirect", 0, "according to", cue)
    guess = rule_speaker(candidate, inventory, None, text)
    assert guess.source is not None and guess.source.name == "Norwood Center" and guess.confidence == "certain"


def test_told_an_audience_at_an_event_that_reports_the_that_clause() -> None:
    text = (
        "On Thursday night, Tom Reed told the audience at his fundraiser for veterans that he and the Harbor Times had "
        "multiple conversations on Thursday but that nothing could change his mind."
    )
    quotes = [q for _, q, s in attributed(text) if s == "Tom Reed"]
    assert any(q.startswith("he and the Harbor Times had multiple conversations") for q in quotes), attributed(text)


def test_a_that_relative_clause_after_an_object_is_not_reported_content() -> None:
    text = "Ann Lee told reporters about the harbour plan that failed in the council last year."
    assert not any(q.startswith("failed") for _, q, _ in attributed(text)), attributed(text)


def test_a_trailing_attribution_with_an_appositive_subject_reports_the_clause_before_it() -> None:
    clause = "Despite a series of costly defeats on Tuesday night, Sen. Ann Lee remains committed to seeing the primary through to the convention"
    text = clause + ", her top aide, Tad Morrow, told the Harbor Post."
    assert ("indirect", clause, "Tad Morrow") in attributed(text)


def test_a_source_the_organisation_recogniser_reads_as_a_place_is_an_organisation() -> None:
    text = "The Harbor Committee spent at least $345,430 on television ads in the general election, according to the Norwood Center."
    seg = segment(text)
    assert any(r.text == "Norwood Center" and r.label == "LOC" for r in seg.recognised or []), "the premise: the recogniser reads a place"
    assert ("indirect", "The Harbor Committee spent at least $345,430 on television ads in the general election", "Norwood Center") in attributed(text)
    assert "Norwood Center" in {o.name for o in inventory_for(seg, find_candidates(seg)).organisations}


def test_only_a_source_the_recogniser_reads_as_a_place_is_made_an_organisation() -> None:
    seg = SimpleNamespace(recognised=[Entity("Briton", "MISC", 4, 10), Entity("Harbor Center", "LOC", 30, 43), Entity("UAE", "LOC", 50, 53), Entity("Ann Lee", "PER", 60, 67)])
    speaking = [(0, 10), (26, 43), (50, 53), (60, 67)]
    assert _source_read_as_place(Entity("Harbor Center", "ORG", 30, 43), seg, speaking)
    assert not _source_read_as_place(Entity("Harbor Center", "ORG", 30, 43), seg, [(0, 10)]), "not a source"
    assert not _source_read_as_place(Entity("Briton", "ORG", 4, 10), seg, speaking), "a nationality"
    assert not _source_read_as_place(Entity("UAE", "ORG", 50, 53), seg, speaking), "an acronym: a country's"
    assert not _source_read_as_place(Entity("Ann Lee", "ORG", 60, 67), seg, speaking), "a person"


def test_according_to_inside_a_quote_leaves_the_quote_to_the_person_relaying_it() -> None:
    text = (
        "The council met on Monday to discuss the harbour.\n\n"
        "Reporter Ann Lee says:\n\n"
        '"Well, according to the harbour master, the situation there is tense. Security forces clashed with an armed group near the docks."'
    )
    found = attributed(text)
    assert [(t, s) for t, q, s in found if "situation there is tense" in q] == [("direct", "Ann Lee")], found
