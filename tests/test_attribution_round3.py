"""Attribution rules of the third PolNeAR-train error analysis (synthetic sentences, no corpus text)."""

from __future__ import annotations

from types import SimpleNamespace

from spacy.tokens import Doc

from pipeline.candidates import QuoteCandidate, SpeakerCue, find_candidates
from pipeline.ground import rule_speaker
from pipeline.normalise import Inventory, Org
from pipeline.organisations import _source_read_as_place
from pipeline.process import inventory_for
from pipeline.segment import Entity, SegmentedArticle, _assemble, load_nlp, segment
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
    text = 'Ola Berg said on Sunday that the plan is "a gift to developers," stating during the hearing that the council had ignored two warnings.'
    quotes = {q: s for _, q, s in attributed(text)}
    assert any(q.endswith('developers,"') and s == "Ola Berg" for q, s in quotes.items()), quotes
    assert quotes.get("the council had ignored two warnings") == "Ola Berg", quotes


def test_a_name_right_after_a_quote_is_its_speaker_whatever_the_verb() -> None:
    text = (
        "The ferry board met on Monday. Tom Reed spoke first.\n\n"
        '"If the board cared about the islands, it would have kept the winter timetable for another year," Ann Lee fumed. '
        '"That would have cost almost nothing."'
    )
    quotes = {q: s for _, q, s in attributed(text)}
    assert quotes.get("If the board cared about the islands, it would have kept the winter timetable for another year") == "Ann Lee", quotes
    assert quotes.get("That would have cost almost nothing.") == "Ann Lee", quotes


def test_a_question_then_a_surname_and_any_verb() -> None:
    text = "Ann Lee and Tom Reed argued about the ferry fares.\n\n\"Fares go up every spring, don't they?\" Reed went on, ignoring the question."
    assert ("direct", "Fares go up every spring, don't they?", "Tom Reed") in attributed(text)


def test_a_name_starting_the_next_sentence_does_not_sign_a_quote_that_ended_one() -> None:
    text = 'Ann Lee met Tom Reed at the harbour.\n\n"We will win this race in the autumn." Reed then left the stage without a word.'
    assert all(s != "Tom Reed" for _, q, s in attributed(text) if q.startswith("We will win")), attributed(text)


def test_a_quote_after_a_colon_is_the_subjects_of_the_verb_before_it() -> None:
    text = 'Or, as Tom Reed, a former harbour pilot, put it: "The tide does not wait for committees."'
    assert ("direct", "The tide does not wait for committees.", "Tom Reed") in attributed(text)


def _parsed(rows: list[tuple[str, str, str, str, int, str, str, bool]]) -> SegmentedArticle:
    """An article whose parse is given token by token (word, POS, tag, dependency, head, lemma, IOB entity, space
    after): the parser's mistakes that a rule works around, reproduced without depending on the parser."""
    words, pos, tags, deps, heads, lemmas, ents, spaces = (list(column) for column in zip(*rows, strict=True))
    doc = Doc(load_nlp().vocab, words=words, spaces=spaces, pos=pos, tags=tags, deps=deps, heads=heads, lemmas=lemmas, ents=ents)
    return _assemble(doc.text, doc, None)


def _found(seg: SegmentedArticle) -> list[tuple[str, str, str | None]]:
    return [(c.type, seg.text[c.start : c.end], c.speaker_cue.text if c.speaker_cue else None) for c in find_candidates(seg)]


def test_a_name_and_appositive_after_a_quote_sign_it_when_the_parse_hangs_the_name_on_the_quote() -> None:
    # "Reed" parsed as an appositive of "rivals" inside the quote, "said" as a conjunct of the quote's own verb.
    seg = _parsed([
        ("''", "PUNCT", "``", "punct", 2, "''", "O", False),
        ("We", "PRON", "PRP", "nsubj", 2, "we", "O", True),
        ("were", "AUX", "VBD", "ROOT", 2, "be", "O", True),
        ("rivals", "NOUN", "NNS", "attr", 2, "rival", "O", False),
        (",", "PUNCT", ",", "punct", 3, ",", "O", False),
        ("''", "PUNCT", "''", "punct", 3, "''", "O", True),
        ("Tom", "PROPN", "NNP", "compound", 7, "Tom", "B-PERSON", True),
        ("Reed", "PROPN", "NNP", "appos", 3, "Reed", "I-PERSON", False),
        (",", "PUNCT", ",", "punct", 7, ",", "O", True),
        ("the", "DET", "DT", "det", 10, "the", "O", True),
        ("club", "NOUN", "NN", "poss", 14, "club", "O", False),
        ("'s", "PART", "POS", "case", 10, "'s", "O", True),
        ("former", "ADJ", "JJ", "amod", 14, "former", "O", True),
        ("head", "NOUN", "NN", "compound", 14, "head", "O", True),
        ("treasurer", "NOUN", "NN", "appos", 7, "treasurer", "O", True),
        ("of", "ADP", "IN", "prep", 14, "of", "O", True),
        ("sales", "NOUN", "NNS", "pobj", 15, "sale", "O", False),
        (",", "PUNCT", ",", "punct", 3, ",", "O", True),
        ("said", "VERB", "VBD", "conj", 2, "say", "O", True),
        ("of", "ADP", "IN", "prep", 18, "of", "O", True),
        ("them", "PRON", "PRP", "pobj", 19, "they", "O", False),
        (".", "PUNCT", ".", "punct", 2, ".", "O", False),
    ])  # fmt: skip
    assert ("direct", "We were rivals", "Tom Reed") in _found(seg), _found(seg)


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
    # The that-clause parsed as a relative clause of the last noun ("volunteers that he had sold ...").
    seg = _parsed([
        ("Tom", "PROPN", "NNP", "compound", 1, "Tom", "B-PERSON", True),
        ("Reed", "PROPN", "NNP", "nsubj", 2, "Reed", "I-PERSON", True),
        ("told", "VERB", "VBD", "ROOT", 2, "tell", "O", True),
        ("the", "DET", "DT", "det", 4, "the", "O", True),
        ("crowd", "NOUN", "NN", "dobj", 2, "crowd", "O", True),
        ("at", "ADP", "IN", "prep", 2, "at", "O", True),
        ("his", "PRON", "PRP$", "poss", 7, "his", "O", True),
        ("dinner", "NOUN", "NN", "pobj", 5, "dinner", "O", True),
        ("for", "ADP", "IN", "prep", 7, "for", "O", True),
        ("volunteers", "NOUN", "NNS", "pobj", 8, "volunteer", "O", True),
        ("that", "SCONJ", "IN", "mark", 13, "that", "O", True),
        ("he", "PRON", "PRP", "nsubj", 13, "he", "O", True),
        ("had", "AUX", "VBD", "aux", 13, "have", "O", True),
        ("sold", "VERB", "VBN", "relcl", 9, "sell", "O", True),
        ("the", "DET", "DT", "det", 15, "the", "O", True),
        ("boat", "NOUN", "NN", "dobj", 13, "boat", "O", False),
        (".", "PUNCT", ".", "punct", 2, ".", "O", False),
    ])  # fmt: skip
    assert ("indirect", "he had sold the boat", "Tom Reed") in _found(seg), _found(seg)


def test_a_that_relative_clause_after_an_object_is_not_reported_content() -> None:
    text = "Ann Lee told reporters about the harbour plan that failed in the council last year."
    assert not any(q.startswith("failed") for _, q, _ in attributed(text)), attributed(text)


def test_a_trailing_attribution_with_an_appositive_subject_reports_the_clause_before_it() -> None:
    clause = "After two weeks of storms on the coast, Ann Lee remains determined to keep the ferry running through the winter season"
    text = clause + ", her deputy, Tad Morrow, told the Harbor Post."
    assert ("indirect", clause, "Tad Morrow") in attributed(text)


def test_a_source_the_organisation_recogniser_reads_as_a_place_is_an_organisation() -> None:
    text = "Ferry fares rose by a fifth over the past two years, according to the Norwood Center."
    seg = segment(text)
    assert any(r.text == "Norwood Center" and r.label == "LOC" for r in seg.recognised or []), "the premise: the recogniser reads a place"
    assert ("indirect", "Ferry fares rose by a fifth over the past two years", "Norwood Center") in attributed(text)
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
        "The ferry board met on Monday.\n\n"
        "Reporter Ann Lee says:\n\n"
        '"Well, according to the port spokesman, the crossing is rough tonight. Two boats turned back near the breakwater."'
    )
    found = attributed(text)
    assert [(t, s) for t, q, s in found if "crossing is rough tonight" in q] == [("direct", "Ann Lee")], found
