"""Attribution rules of the PolNeAR-train error analysis (synthetic sentences, no corpus text)."""

from __future__ import annotations

from pipeline.candidates import find_candidates, quoted_spans
from pipeline.segment import paragraph_spans, segment
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
        "Anna Berg said she had no plan to alter the way she ran the race, telling Bob Stone that "
        "\u201cwe stay on message, we answer every letter\u201d and that she had felt steady backing from volunteers over the past month."
    )
    quotes = [q for _, q, s in attributed(text) if s == "Anna Berg"]
    assert any(q.startswith("she had no plan to alter the way she ran the race") for q in quotes), quotes
    assert "we stay on message, we answer every letter" in quotes, quotes


def test_naming_frame_of_two_words_is_kept_with_its_closing_mark() -> None:
    text = 'Former Ohio Gov. Jan Novak called Tom Reed "reckless." Reed did not reply.'
    assert ("indirect", 'Tom Reed "reckless."', "Jan Novak") in attributed(text)


def test_title_case_headline_label_is_a_speaker_when_the_article_names_them() -> None:
    text = "Reed: Budget Talks Have Stalled Again, \u2018I Fear the Worst\u2019\n\nTom Reed, an analyst at Harbor Capital Partners, spoke to reporters."
    assert ("indirect", "Budget Talks Have Stalled Again, \u2018I Fear the Worst\u2019", "Tom Reed") in attributed(text)


def test_title_case_headline_label_unknown_to_the_article_is_no_speaker() -> None:
    text = "Update: Budget Talks Have Stalled Again\n\nMaria Gonzalez, an analyst at Harbor Capital Partners, spoke to reporters."
    assert not any("Budget Talks" in quote for _, quote, _ in attributed(text))


def test_a_survey_finding_is_reported_content_but_a_police_finding_is_not() -> None:
    text = (
        "A survey by the Harbor Institute found that most voters in the county opposed the new toll. "
        "Police found that the back door of the shop had been forced open."
    )
    quotes = [q for _, q, _ in attributed(text)]
    assert "most voters in the county opposed the new toll" in quotes
    assert not any("back door" in q for q in quotes)


def test_single_newlines_between_long_lines_are_paragraph_breaks_but_wrapped_lines_are_not() -> None:
    long_line = "Maria Gonzalez, an analyst at Harbor Capital Partners, spoke at length about the budget on Monday morning."
    text = f"Title\n\n{long_line}\nShe left.\n\nA hard-wrapped paragraph\ncontinues on this line."
    assert [text[a:b] for a, b in paragraph_spans(text)] == ["Title", long_line, "She left.", "A hard-wrapped paragraph\ncontinues on this line."]


def test_participle_after_a_comma_does_not_swallow_the_paragraph_before_it() -> None:
    text = (
        "Harbor Council\n\n"
        "Maria Gonzalez, an analyst at Harbor Capital Partners, said on Monday that the council was not listening to its voters at all.\n"
        "\u201cWe do not pay anyone to attend these meetings,\u201d Gonzalez said during a discussion with the council on Thursday evening.\n"
        "Gonzalez also used the moment to speak more broadly about the council, remarking in particular on its partner board, HTC."
    )
    assert ("direct", "We do not pay anyone to attend these meetings", "Maria Gonzalez") in attributed(text)


def test_a_participle_reports_nothing_before_it() -> None:
    text = "Maria Gonzalez, an analyst at Harbor Capital Partners, spoke about the harbor, remarking in particular on the sister town, Eastport."
    assert not any("spoke about the harbor" in quote for _, quote, _ in attributed(text))


def test_a_quote_signed_with_a_dash_and_a_name_is_that_persons() -> None:
    text = (
        "Voters at the rally told us what they thought.\n\n"
        "\u201cThe new toll is a tax on people who work in the city.\u201d \u2015 Maria Gonzalez\n"
        "\u201cWe cannot keep paying more for roads that never get fixed.\u201d \u2014 Tom Reed, a bus driver"
    )
    found = attributed(text)
    assert ("direct", "The new toll is a tax on people who work in the city.", "Maria Gonzalez") in found
    assert ("direct", "We cannot keep paying more for roads that never get fixed.", "Tom Reed") in found



def test_a_hard_wrapped_paragraph_with_one_long_unbreakable_line_stays_one_paragraph() -> None:
    url = "https://example.org/" + "a" * 100
    text = f"The harbor council said on Monday that\nits new toll would start in May, see\n{url}\nfor the details of the plan."
    assert paragraph_spans(text) == [(0, len(text))]


def test_quote_marks_inside_a_markup_tag_are_attribute_values_not_quotes() -> None:
    text = '<post author="@cityhall" date="May 2, 2016">The budget will pass, the mayor wrote.</post>\n\nTom Reed said "it is late" on Friday.'
    quoted = [text[s:e] for s, e in quoted_spans(text, [(0, text.index("\n\n")), (text.index("Tom"), len(text))])]
    assert quoted == ["it is late"]


def test_a_fronted_adverbial_before_name_and_verb_is_not_reported_content() -> None:
    text = "Then, last week, Tom Reed called.\n\nThe bridge will close in May, Reed said."
    found = {text[c.start : c.end] for c in find_candidates(segment(text))}
    assert "Then, last week" not in found
    assert "The bridge will close in May" in found
