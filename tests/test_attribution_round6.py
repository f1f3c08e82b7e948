"""Attribution rules of the sixth PolNeAR-train error analysis (synthetic sentences, no corpus text)."""

from __future__ import annotations

from pipeline.candidates import find_candidates
from pipeline.ingest import Article
from pipeline.normalise import build_inventory
from pipeline.process import extract_record
from pipeline.segment import segment
from tests.test_attribution_round3 import _found, _parsed
from tests.test_candidates import attributed

# Single newlines between paragraphs (as in many web exports): every line is longer than a hard-wrapped one.
_LONG_LINES = (
    "Ann Lee said the ferry plan was one more reason to close the old harbour road for lorries coming from the U.S.\n"
    "Tom Reed added that he would approve the plan without any help from the county government and its agencies.\n"
    "The council will vote on the plan in March, when the new ferry timetable for the islands is published."
)


def test_a_paragraph_starts_a_sentence_even_after_an_abbreviation() -> None:
    seg = segment(_LONG_LINES)
    starts = {s.start_char for s in seg.doc.sents}
    assert _LONG_LINES.index("Tom Reed") in starts
    assert ("indirect", "he would approve the plan without any help from the county government and its agencies", "Tom Reed") in attributed(_LONG_LINES)


def test_a_no_break_space_reads_as_a_space_and_stays_in_the_article() -> None:
    according = "The new toll falls on the wrong people, according\u00a0to Ann Lee, the mayor of the island."
    assert ("indirect", "The new toll falls on the wrong people", "Ann Lee") in attributed(according)
    named = "Ann\u00a0Lee told the Harbour Gazette that the new\u00a0toll falls on the wrong people."
    seg = segment(named)
    found = [(c.type, named[c.start : c.end], c.speaker_cue.text if c.speaker_cue else None) for c in find_candidates(seg)]
    assert found == [("indirect", "the new\u00a0toll falls on the wrong people", "Ann Lee")], found  # spans index the article


def test_he_after_a_statement_is_its_speaker_not_a_person_named_inside_it() -> None:
    text = (
        "Tom Reed said he never saw Jim Lake meet with Ann Bell, the captain who ran the ferry for the company. "
        "He added that there was no link between the two."
    )
    assert ("indirect", "there was no link between the two", "Tom Reed") in attributed(text)


def test_a_dateline_is_not_the_speaker_the_name_in_apposition_is() -> None:
    text = "Ferry Plan Approved.\n\nLONDON -- President Ann Lee, opening the National Museum of Harbour History on Saturday, said it would serve the islands."
    assert ("indirect", "it would serve the islands", "Ann Lee") in attributed(text)


def test_as_x_said_attributes_the_clause_it_modifies() -> None:
    before = "Jane Holt and Tom Reed met in May. As Reed said, the two candidates have become the least ideological in the state."
    assert ("indirect", "the two candidates have become the least ideological in the state", "Tom Reed") in attributed(before)
    after = "The Harbour Gazette is a weekly. The mayor raised more than $1 million from bankers, as the Harbour Gazette noted."
    assert ("indirect", "The mayor raised more than $1 million from bankers", "Harbour Gazette") in attributed(after)
    passive = "As reported by the Norwood Times, the mayor was told about the risk twice."
    assert ("indirect", "the mayor was told about the risk twice", "Norwood Times") in attributed(passive)


def test_an_as_clause_of_time_attributes_nothing() -> None:
    text = "Tom Reed met Jane Holt. As Holt talked about the ferry, Reed walked to the harbour with his dog and two friends."
    assert not any(q.startswith("Reed walked") for _, q, _ in attributed(text)), attributed(text)


def test_a_subject_inside_the_quoted_words_is_not_the_speaker() -> None:
    # "We" parsed as the subject of the reporting verb (a conjunct of the quote's own verb), the name as an
    # appositive inside the quote: the quote is still Tom Reed's, never "We"'s.
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
        ("the", "DET", "DT", "det", 11, "the", "O", True),
        ("club", "NOUN", "NN", "compound", 11, "club", "O", True),
        ("treasurer", "NOUN", "NN", "appos", 7, "treasurer", "O", False),
        (",", "PUNCT", ",", "punct", 3, ",", "O", True),
        ("said", "VERB", "VBD", "conj", 2, "say", "O", True),
        ("of", "ADP", "IN", "prep", 13, "of", "O", True),
        ("them", "PRON", "PRP", "pobj", 14, "they", "O", False),
        (".", "PUNCT", ".", "punct", 2, ".", "O", False),
    ])  # fmt: skip
    found = _found(seg)
    assert all(speaker != "We" for _, _, speaker in found), found
    assert ("direct", "We were rivals", "Tom Reed") in found, found


def test_a_surname_read_as_an_organisation_is_the_person_named_elsewhere() -> None:
    # The tagger reads the surname alone as an organisation; the article names the person in full before.
    seg = _parsed([
        ("Ann", "PROPN", "NNP", "compound", 1, "Ann", "B-PERSON", True),
        ("Lee", "PROPN", "NNP", "nsubj", 2, "Lee", "I-PERSON", True),
        ("arrived", "VERB", "VBD", "ROOT", 2, "arrive", "O", False),
        (".", "PUNCT", ".", "punct", 2, ".", "O", True),
        ("Lee", "PROPN", "NNP", "nsubj", 5, "Lee", "B-ORG", True),
        ("told", "VERB", "VBD", "ROOT", 5, "tell", "O", True),
        ("the", "DET", "DT", "det", 7, "the", "O", True),
        ("board", "NOUN", "NN", "dobj", 5, "board", "O", True),
        ("that", "SCONJ", "IN", "mark", 11, "that", "O", True),
        ("fares", "NOUN", "NNS", "nsubj", 11, "fare", "O", True),
        ("would", "AUX", "MD", "aux", 11, "would", "O", True),
        ("rise", "VERB", "VB", "ccomp", 5, "rise", "O", True),
        ("in", "ADP", "IN", "prep", 11, "in", "O", True),
        ("May", "PROPN", "NNP", "pobj", 12, "May", "B-DATE", False),
        (".", "PUNCT", ".", "punct", 5, ".", "O", False),
    ])  # fmt: skip
    candidates = find_candidates(seg)
    assert [(seg.text[c.start : c.end], c.speaker_cue.kind if c.speaker_cue else None) for c in candidates] == [("fares would rise in May", "name")]


def test_a_name_a_headline_ran_on_into_its_verb_is_the_name_the_body_gives() -> None:
    for headline in ("Ann Lee Slams Harbour Plan", "Tom Reed Defends Ferry Fares", "Ben Stone Blasts Council Over Ferry"):
        first, last = headline.split()[:2]
        text = f"{headline}.\n\n{first} {last}, the mayor of Norwood, said on Monday that the harbour plan would ruin the town."
        assert (f"{first} {last}") in [p.name for p in build_inventory(segment(text)).people], headline
        assert ("indirect", "the harbour plan would ruin the town", f"{first} {last}") in attributed(text)


def test_an_attribution_set_off_by_commas_inside_the_sentence_reports_both_sides() -> None:
    text = "Tom Taylor runs the union. If the demands are not met, Mr. Taylor warned, the ferry workers plan to leave the union."
    found = attributed(text)
    assert ("indirect", "If the demands are not met", "Tom Taylor") in found, found
    assert ("indirect", "the ferry workers plan to leave the union", "Tom Taylor") in found, found


def test_one_of_a_group_named_in_apposition_is_the_speaker() -> None:
    text = "One of the men, Jessie Elkins, 70, had served in the navy for years and said he was convinced that the mayor would ruin the town."
    assert ("indirect", "he was convinced that the mayor would ruin the town", "Jessie Elkins") in attributed(text)


def test_a_capitalised_bare_noun_subject_is_a_name_without_its_prepositional_phrase() -> None:
    text = "Tom Reed was asked about the ferry. The old boat was later sold for scrap. Reed at the time said he had told his aides to find a cheaper boat."
    assert ("indirect", "he had told his aides to find a cheaper boat", "Tom Reed") in attributed(text)


_CAMPAIGNS = (
    "Ann Lee and Tom Reed met voters on Monday.\n\n"
    "The Lee campaign said the mayor would announce the harbour plan in March. "
    "Reed's campaign said it would not debate. The campaign added that the vote had been fair."
)


def test_a_candidates_campaign_that_speaks_is_an_organisation() -> None:
    record = extract_record(Article("art_c", "c.txt", _CAMPAIGNS, None, None, None, None), None, model="none", backend="rules")
    quotes = {q.text: q.speaker.name for q in record.quotes}
    assert quotes.get("the mayor would announce the harbour plan in March") == "Lee campaign", quotes
    assert quotes.get("it would not debate") == "Reed campaign", quotes
    assert "the vote had been fair" not in quotes  # "the campaign": whose is not said (the last named is often wrong)
    organisations = {o.name: o for o in record.organisations}
    assert organisations["Reed campaign"].type == "ngo" and "Reed's campaign" in organisations["Reed campaign"].aliases
    assert [u.source for u in record.unnamed_source_quotes] == ["The campaign"]


def test_a_campaign_that_does_not_speak_is_not_listed() -> None:
    text = "Ann Lee met voters on Monday. The Lee campaign is in its second year and has offices in four towns."
    record = extract_record(Article("art_d", "d.txt", text, None, None, None, None), None, model="none", backend="rules")
    assert [o.name for o in record.organisations if "campaign" in o.name] == []


def test_a_clause_with_a_gerund_subject_after_said_is_reported_whole() -> None:
    text = (
        "Tom Reed met the board. Mr. Reed said ending the winter ferry before other money could be found, and without "
        "knowing who will win the vote, could needlessly cut the islands off for months."
    )
    found = attributed(text)
    assert any(q.startswith("ending the winter ferry") and q.endswith("cut the islands off for months") and s == "Tom Reed" for _, q, s in found), found


def test_urged_someone_to_do_something_reports_both() -> None:
    text = "After the ruling, Tom Reed urged the harbour council to reopen the winter ferry at once."
    assert ("indirect", "the harbour council to reopen the winter ferry at once", "Tom Reed") in attributed(text)
    called = "Tom Reed called on the council to close the harbour road."
    assert ("indirect", "the council to close the harbour road", "Tom Reed") in attributed(called)


def test_a_name_stored_with_plain_spaces_is_found_where_the_article_prints_a_no_break_space() -> None:
    import re

    from pipeline.review import _speaker_spans
    from schemas.records import name_in_text

    text = "Mayor Ann\u00a0Lee opened the terminal. Ann Lee spoke. Lee-Smith did not."
    assert [m.group(0) for m in re.finditer(name_in_text("Ann Lee"), text)] == ["Ann\u00a0Lee", "Ann Lee"]
    assert [text[s:e] for s, e, _ in _speaker_spans(text, ["Ann Lee"])] == ["Ann\u00a0Lee", "Ann Lee"]
    assert not re.search(name_in_text("Lee"), "Lee-Smith")
