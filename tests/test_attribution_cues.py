"""Reporting cues beyond "said": typewriter quote marks, mined verb frames, parenthetical attributions,
relative clauses and speakers the name inventory does not hold. Synthetic sentences only."""

from __future__ import annotations

import json

from pipeline.candidates import REPORTING_VERBS_FILE, quoted_spans, reporting_verb_frames
from tests.test_candidates import attributed, speaker_of


def test_lexisnexis_two_apostrophe_marks_delimit_quotes() -> None:
    text = "''We will not back down,'' she said. ''The vote is next week.'' Then ``a new era'' began."
    spans = [text[s:e] for s, e in quoted_spans(text, [(0, len(text))])]
    assert spans == ["We will not back down", "The vote is next week.", "a new era"]


def test_two_apostrophe_quote_is_a_direct_quote_of_the_named_speaker() -> None:
    text = "''Prices will keep rising through the winter,'' said Marta Olsen, an economist at Fjord Bank."
    assert ("direct", "Prices will keep rising through the winter", "Marta Olsen") in attributed(text)


def test_surname_only_speaker_outside_the_inventory_is_named_as_written() -> None:
    text = "Sen. Okafor said the committee would vote on the bill before the recess."
    assert speaker_of(text, "committee would vote") == "Okafor"


def test_parenthetical_attribution_is_cut_out_of_the_reported_clause() -> None:
    text = "Dana Whitfield spoke in Denver. The new rules, she said, will take effect in the spring."
    quotes = [q for _, q, _ in attributed(text)]
    assert "will take effect in the spring" in quotes
    assert not any("she said" in q for q in quotes)


def test_relative_clause_speaker_is_the_noun_it_modifies() -> None:
    text = "Tomas Berg, who said the merger would cut costs, left the company in May."
    assert speaker_of(text, "merger would cut costs") == "Tomas Berg"


def test_mined_prepositional_frame_reports_the_object() -> None:
    text = "Governor Ellen Marsh called for an independent review of the state pension fund."
    assert ("indirect", "an independent review of the state pension fund", "Ellen Marsh") in attributed(text)


def test_refusal_to_comment_is_not_reported_content() -> None:
    text = "A spokesman for Acme Corp declined to comment on the lawsuit filed last week."
    assert attributed(text) == []


def test_quoted_person_is_not_reported_content() -> None:
    text = "The newspaper quoted a senior government official on Tuesday."
    assert attributed(text) == []


def test_lexicon_states_its_source_and_keeps_only_frequent_precise_cues() -> None:
    data = json.loads(REPORTING_VERBS_FILE.read_text(encoding="utf-8"))
    assert "PolNeAR train" in data["source"]
    low = data["thresholds"]
    for entry in data["verbs"].values():
        assert entry["cue"] >= low["min_cue"] and entry["precision"] >= low["min_precision"]
    frames = reporting_verb_frames()
    assert "ccomp" in frames["say"]
    assert all("ccomp" in f for f in frames.values())


def test_speech_verb_inside_the_quoted_words_does_not_attribute_the_quote() -> None:
    text = (
        "Senator Ruth Calder addressed the crowd.\n\n"
        'She said, "Let me tell you, this bill is the worst idea we have seen in a decade."'
    )
    assert speaker_of(text, "worst idea") == "Ruth Calder"


def test_nearest_of_two_subjects_is_the_speaker() -> None:
    text = '"The early votes matter, but they count only a little," campaign manager Rob Vance said.'
    assert speaker_of(text, "early votes matter") == "Rob Vance"


def test_show_and_book_titles_in_quotation_marks_are_not_quotes() -> None:
    text = 'Ann Meyer, who wrote "The Art of the Long Game", said the campaign was over.'
    quotes = [q for _, q, _ in attributed(text)]
    assert "The Art of the Long Game" not in quotes
    assert "the campaign was over" in quotes


def test_pronoun_means_the_subject_rather_than_a_person_named_after_it() -> None:
    text = "Mary Hallworth met John Pryce in Geneva on Monday. She said the talks had gone well."
    assert speaker_of(text, "talks had gone well") == "Mary Hallworth"


def test_pronoun_antecedent_named_once_by_surname() -> None:
    text = "Mr. Lindqvist arrived late to the hearing. He said the budget would be cut by a third."
    assert speaker_of(text, "budget would be cut") == "Lindqvist"


def test_definite_title_refers_to_the_person_being_reported() -> None:
    text = "Gov. Ruth Calder toured the flooded towns on Monday. The Ohio governor said the state would pay for repairs."
    assert speaker_of(text, "state would pay for repairs") == "Ruth Calder"


def test_indefinite_title_is_an_unnamed_source() -> None:
    text = "Gov. Ruth Calder toured the flooded towns on Monday. A senator said the state could not pay for repairs."
    assert speaker_of(text, "could not pay for repairs") is None


def test_a_quote_of_the_previous_paragraph_does_not_become_this_paragraphs_content() -> None:
    text = (
        'Leah Moravec said that "every figure in the report is accurate."\n\n'
        "Despite the criticism, Moravec said she would stay in the job until the spring."
    )
    assert ("indirect", "she would stay in the job until the spring", "Leah Moravec") in attributed(text)


def test_name_and_colon_opening_a_paragraph_attributes_the_rest() -> None:
    text = "Maria Santos: The tariff will cost every family a thousand dollars.\n\nThe vote is on Friday."
    assert ("indirect", "The tariff will cost every family a thousand dollars", "Maria Santos") in attributed(text)


def test_a_label_before_a_colon_is_not_a_speaker() -> None:
    text = "Update: the results of the vote will be announced on Friday morning."
    assert attributed(text) == []
