"""Attribution rules of the seventh PolNeAR-train error analysis (synthetic sentences, no corpus text)."""

from __future__ import annotations

from tests.test_attribution_round3 import _found, _parsed
from tests.test_candidates import attributed


def test_an_inverted_attribution_parsed_as_a_conjunct_reports_the_clause_before_it() -> None:
    # "said" parsed as a conjunct of the clause it reports, its subject after it.
    seg = _parsed([
        ("Ticket", "NOUN", "NN", "compound", 1, "ticket", "O", True),
        ("sales", "NOUN", "NNS", "nsubj", 3, "sale", "O", True),
        ("are", "AUX", "VBP", "aux", 3, "be", "O", True),
        ("slipping", "VERB", "VBG", "ROOT", 3, "slip", "O", False),
        (",", "PUNCT", ",", "punct", 3, ",", "O", True),
        ("said", "VERB", "VBD", "conj", 3, "say", "O", True),
        ("the", "DET", "DT", "det", 7, "the", "O", True),
        ("manager", "NOUN", "NN", "nsubj", 5, "manager", "O", False),
        (",", "PUNCT", ",", "punct", 7, ",", "O", True),
        ("Tom", "PROPN", "NNP", "compound", 10, "Tom", "B-PERSON", True),
        ("Reed", "PROPN", "NNP", "appos", 7, "Reed", "I-PERSON", False),
        (".", "PUNCT", ".", "punct", 5, ".", "O", False),
    ])  # fmt: skip
    assert ("indirect", "Ticket sales are slipping", "Tom Reed") in _found(seg)


def test_a_speech_verb_before_that_reports_the_clause_the_parser_hung_elsewhere() -> None:
    # "that" parsed as a preposition of "noting", the clause as its object: "noting" has no clausal complement.
    seg = _parsed([
        ("Ann", "PROPN", "NNP", "compound", 1, "Ann", "B-PERSON", True),
        ("Lee", "PROPN", "NNP", "nsubj", 2, "Lee", "I-PERSON", True),
        ("spoke", "VERB", "VBD", "ROOT", 2, "speak", "O", False),
        (",", "PUNCT", ",", "punct", 2, ",", "O", True),
        ("noting", "VERB", "VBG", "advcl", 2, "note", "O", True),
        ("that", "SCONJ", "IN", "prep", 4, "that", "O", True),
        ("her", "PRON", "PRP$", "poss", 7, "her", "O", True),
        ("design", "NOUN", "NN", "nsubj", 9, "design", "O", True),
        ("had", "AUX", "VBD", "aux", 9, "have", "O", True),
        ("trailed", "VERB", "VBN", "pcomp", 5, "trail", "O", True),
        ("by", "ADP", "IN", "prep", 9, "by", "O", True),
        ("ten", "NUM", "CD", "nummod", 12, "ten", "O", True),
        ("votes", "NOUN", "NNS", "pobj", 10, "vote", "O", False),
        (".", "PUNCT", ".", "punct", 2, ".", "O", False),
    ])  # fmt: skip
    assert ("indirect", "her design had trailed by ten votes", "Ann Lee") in _found(seg)


def test_that_as_a_pronoun_introduces_no_clause() -> None:
    # "that" tagged IN but the object of "mentions": what follows is no reported clause.
    seg = _parsed([
        ("He", "PRON", "PRP", "nsubj", 1, "he", "O", True),
        ("mentions", "VERB", "VBZ", "ROOT", 1, "mention", "O", True),
        ("that", "SCONJ", "IN", "dobj", 1, "that", "O", True),
        ("when", "SCONJ", "WRB", "advmod", 5, "when", "O", True),
        ("he", "PRON", "PRP", "nsubj", 5, "he", "O", True),
        ("speaks", "VERB", "VBZ", "advcl", 1, "speak", "O", True),
        ("to", "ADP", "IN", "prep", 5, "to", "O", True),
        ("the", "DET", "DT", "det", 8, "the", "O", True),
        ("board", "NOUN", "NN", "pobj", 6, "board", "O", False),
        (".", "PUNCT", ".", "punct", 1, ".", "O", False),
    ])  # fmt: skip
    assert _found(seg) == []


def test_according_to_whose_to_the_parser_left_without_an_object() -> None:
    # At a paragraph's end the parser can hang the source on "the" instead of on "to".
    seg = _parsed([
        ("It", "PRON", "PRP", "nsubj", 2, "it", "O", True),
        ("can", "AUX", "MD", "aux", 2, "can", "O", True),
        ("sail", "VERB", "VB", "ROOT", 2, "sail", "O", True),
        ("again", "ADV", "RB", "advmod", 2, "again", "O", False),
        (",", "PUNCT", ",", "punct", 2, ",", "O", True),
        ("according", "VERB", "VBG", "prep", 2, "accord", "O", True),
        ("to", "ADP", "IN", "prep", 5, "to", "O", True),
        ("the", "DET", "DT", "punct", 2, "the", "O", True),
        ("N.T.S.B.", "PROPN", "NNP", "dep", 7, "N.T.S.B.", "B-ORG", False),
    ])  # fmt: skip
    assert ("indirect", "It can sail again", "N.T.S.B.") in _found(seg)


def test_according_to_closes_the_claim_before_it_when_a_new_one_follows_and() -> None:
    text = "Two buses broke down last week, according to the County Transport Office, and the trains ran late on most days of the winter season."
    assert ("indirect", "Two buses broke down last week", "County Transport Office") in attributed(text)


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
