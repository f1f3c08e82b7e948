"""Organisation finding: the CoNLL-trained recogniser, mention clean-up and party names (synthetic text only)."""

from __future__ import annotations

import pytest

from pipeline.normalise import build_inventory
from pipeline.organisations import Org, _clean_org_text, find_organisations
from pipeline.segment import ORG_NER_DIR, load_nlp, load_org_ner, segment


def orgs(text: str) -> dict[str, Org]:
    return {o.name: o for o in build_inventory(segment(text)).organisations}


def test_the_recogniser_ships_with_the_package_and_keeps_spacy_entities_as_they_are() -> None:
    assert (ORG_NER_DIR / "model").exists(), "run scripts/train_orgs.py"
    assert load_org_ner() is not None
    text = "Anna Keller, a spokeswoman for Northfield United, said the club had sold its stadium in Leeds."
    seg = segment(text)
    plain = load_nlp()(text)
    assert [(e.text, e.label) for e in seg.entities] == [(e.text, e.label_) for e in plain.ents]
    assert seg.organisations is not None and all(e.label == "ORG" for e in seg.organisations)


def test_a_club_named_after_its_town_is_an_organisation() -> None:
    text = "Striker Tom Brennan joined Northfield United from Eastbrook Rovers for four million pounds on Friday."
    assert {"Northfield United", "Eastbrook Rovers"} <= set(orgs(text))


@pytest.mark.parametrize(
    ("mention", "cleaned"),
    [
        ("the Example Research Center at", "Example Research Center"),
        ("“Example Agency", "Example Agency"),
        ("Example Bank's", "Example Bank"),
        ("Example Standards Office (ESO", "Example Standards Office"),
        ("Example Corp. of", "Example Corp."),
        ("U.N.,", "U.N."),
    ],
)
def test_names_carry_no_edge_punctuation_articles_or_dangling_words(mention: str, cleaned: str) -> None:
    assert _clean_org_text(mention) == cleaned


def test_a_headline_run_into_a_name_is_not_an_organisation() -> None:
    text = "FOOTBALL - HARMON SIGNS FOR CLUB.\n\nLONDON 1996-08-30\n\nThe Western Football Association fined two clubs on Monday."
    found = orgs(text)
    assert all(" - " not in name and "\n" not in name for name in found)
    assert "Western Football Association" in found


def test_lower_case_words_after_a_name_are_not_part_of_it() -> None:
    text = "Senior officials told Meridian radio on Monday that the Harbour Authority would raise its fees."
    found = orgs(text)
    assert not any(name.endswith(" radio") for name in found), found


def test_possessive_parent_and_institute_are_one_sub_unit() -> None:
    text = "Wang Lin, director of Eastlake University's Institute of Coastal Studies, said exports would grow."
    found = orgs(text)
    assert "Institute of Coastal Studies, Eastlake University" in found, found


def test_party_adjectives_and_nicknames_name_the_party() -> None:
    text = (
        "The Republican debate in Ohio drew a large audience. Several Republicans said the GOP would keep "
        "the seat, while Democrats said turnout would decide it."
    )
    found = orgs(text)
    assert "Republican Party" in found and "Democratic Party" in found, found
    republican = found["Republican Party"]
    assert republican.type == "party" and republican.country == "US"
    assert "GOP" in republican.aliases


def test_without_the_recogniser_spacy_org_entities_are_used() -> None:
    seg = segment("The Federal Aviation Administration grounded the jets on Tuesday.")
    from dataclasses import replace

    found = find_organisations(replace(seg, organisations=None))
    assert [o.name for o in found] == ["Federal Aviation Administration"]


def test_events_laws_and_plans_are_not_organisations_but_bodies_named_after_them_are() -> None:
    text = (
        "Delegates at the Annual Harbour Trade Conference praised the Clean Rivers Act. "
        "The Harbour Conference Board and the Northfield Law Society said the Coastal Renewal Plan was too costly."
    )
    found = orgs(text)
    assert not {"Annual Harbour Trade Conference", "Clean Rivers Act", "Coastal Renewal Plan"} & set(found), found
    assert {"Harbour Conference Board", "Northfield Law Society"} <= set(found), found


def test_list_fixture_adjective_and_country_mentions_are_not_names_of_one_body() -> None:
    from pipeline.organisations import _names_a_country

    assert _names_a_country("United States") and _names_a_country("FRANCE")
    assert not _names_a_country("OM"), "an acronym that is also a country code"
    assert not _names_a_country("EU"), "the EU is an organisation"
    text = (
        "Results on Saturday: Northfield v Eastbrook was postponed. Fans of Northfield, Eastbrook and Westmere "
        "protested. A Northfield-based charity, the Harbour Trust, said the Pro-Eastbrook group had left."
    )
    found = orgs(text)
    assert not [n for n in found if " v " in n or "," in n or n.endswith("-based") or n.lower().startswith("pro-")], found


def test_a_persons_name_run_on_after_an_organisation_is_cut_off() -> None:
    from pipeline.organisations import _repair_spans
    from pipeline.segment import Entity

    text = "The Example Workers Union Anna Keller said on Monday that talks had failed."
    org = Entity("Example Workers Union Anna Keller", "ORG", 4, 37)
    person = Entity("Anna Keller", "PERSON", 26, 37)
    assert [e.text for e in _repair_spans(text, [org], [person])] == ["Example Workers Union"]


def test_documents_and_common_acronyms_are_not_organisations() -> None:
    text = (
        "The Northfield Government Work Report set a growth target. Shares of Eastlake Robotics Corp rose after it said AI and EV sales "
        "would lift its GDP share, and the Harbour Development Strategy was delayed."
    )
    found = orgs(text)
    assert not {"Northfield Government Work Report", "AI", "EV", "GDP", "Harbour Development Strategy"} & set(found), found
    assert "Eastlake Robotics Corp" in found, found


def test_a_personal_title_before_a_name_is_a_person_not_an_organisation() -> None:
    from pipeline.normalise import build_inventory
    from pipeline.segment import segment

    seg = segment("Sen. Okafor said the committee would vote on the bill. Dr. Reddy's Laboratories said sales rose.")
    names = [o.name for o in build_inventory(seg).organisations]
    assert not any("Okafor" in n for n in names)


def test_a_list_closed_by_and_in_one_mention_is_a_firm_but_a_bare_list_is_split() -> None:
    from pipeline.organisations import _split_lists
    from pipeline.segment import Entity

    text = "Shares of Harrow, Lindqvist and Partners rose; Northfield, Eastbrook fell."
    firm = Entity("Harrow, Lindqvist and Partners", "ORG", 10, 40)
    clubs = Entity("Northfield, Eastbrook", "ORG", 47, 68)
    assert [e.text for e in _split_lists(text, [firm, clubs])] == ["Harrow, Lindqvist and Partners", "Northfield", "Eastbrook"]


def test_an_office_named_after_an_officer_is_not_a_sub_unit_of_a_person() -> None:
    text = "The Harlow County Sheriff's Office said on Monday that the road would stay closed."
    found = orgs(text)
    assert not any(name.startswith("Office,") for name in found), found


def test_a_capital_article_written_inside_a_name_is_kept_as_an_alias() -> None:
    from pipeline.organisations import _written_with_the

    text = "Sales at The Harbour Herald rose. The Harbour Trust said so.\n\nTHE MERIDIAN\n\n- Rates rise."
    assert _written_with_the(text, text.index("Harbour Herald"), "Harbour Herald") == "The Harbour Herald"
    assert _written_with_the(text, text.index("Harbour Trust"), "Harbour Trust") is None, "a sentence's first word"
    assert _written_with_the(text, text.index("MERIDIAN"), "MERIDIAN") == "THE MERIDIAN"


def test_spacy_org_mentions_the_recogniser_did_not_see_must_look_like_names() -> None:
    from types import SimpleNamespace

    from pipeline.organisations import _stands_alone
    from pipeline.segment import Entity

    text = "Mystery surrounds the stockpile in congress. Rates at Harbour Bank rose.\n\nSOCCER - CLUB START WITH A WIN.\n\nFormer Housing Secretary Lee left. He was 285th."
    seg = SimpleNamespace(text=text)

    def alone(word: str) -> bool:
        start = text.index(word)
        return _stands_alone(seg, Entity(word, "ORG", start, start + len(word)))

    assert alone("Harbour Bank")
    assert not any(alone(w) for w in ("Mystery", "congress", "WIN", "Housing", "285th"))


def test_elections_debates_and_policies_are_not_bodies_but_commissions_about_them_are() -> None:
    from pipeline.organisations import _names_an_event

    assert all(_names_an_event(m) for m in ("Northfield Caucuses", "Republican Debate", "Harbour Referendum", "Zero-Waste Policy", "Steel Tariffs"))
    assert not any(_names_an_event(m) for m in ("Federal Election Commission", "International Crisis Group", "Center for Economic Policy Research"))
