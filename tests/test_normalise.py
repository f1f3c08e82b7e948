"""Organisation inventory rules on synthetic text (no dev-set text)."""

from __future__ import annotations

from pipeline.normalise import build_inventory
from pipeline.segment import segment


def orgs(text: str) -> dict[str, list[str]]:
    return {o.name: o.aliases for o in build_inventory(segment(text)).organisations}


def test_trailing_short_form_is_an_alias_of_the_longer_name() -> None:
    text = "The European Commission fined the bank. Later the Commission said more fines could follow."
    inv = build_inventory(segment(text))
    assert "Commission" not in {o.name for o in inv.organisations}
    short = inv.org_for_mention("the Commission", text.index("Later"))
    assert short is not None and short.name == "European Commission"


def test_trailing_short_form_picks_the_most_recently_mentioned_body() -> None:
    text = (
        "The Federal Trade Commission and the Securities and Exchange Commission both opened inquiries. "
        "Separately, the Securities and Exchange Commission fined a broker. The Commission said more cases would follow."
    )
    inv = build_inventory(segment(text))
    org = inv.org_for_mention("Commission", text.index("The Commission said"))
    assert org is not None and org.name == "Securities and Exchange Commission"


def test_acronym_spelling_a_longer_name_is_an_alias() -> None:
    text = "The Federal Aviation Administration grounded the jets. The FAA said inspections would take a week."
    inv = build_inventory(segment(text))
    faa = inv.org_for_mention("FAA")
    assert faa is not None and faa.name == "Federal Aviation Administration"


def test_initials_match_ignores_case_for_short_forms() -> None:
    text = "Shares of Northern Rail Holdings rose after the Transport Safety Board approved the plan."
    inv = build_inventory(segment(text))
    board = inv.org_for_mention("TSB")
    assert board is not None and board.name == "Transport Safety Board"


def test_word_order_variants_are_one_organisation() -> None:
    text = (
        "The National Grain Trading Bureau raised prices. Officials at the National Grain Bureau Trading "
        "declined to comment."
    )
    found = orgs(text)
    names = [n for n in found if "Grain" in n]
    assert len(names) == 1, found


def test_comma_parent_is_not_swallowed_as_a_short_form() -> None:
    text = "Li Wei, a researcher at the Institute of Marine Biology, Ocean University, spoke. Ocean University declined to comment."
    found = orgs(text)
    assert "Ocean University" in found


def test_lowercase_expansion_makes_an_acronym_a_common_noun() -> None:
    text = "Firms are racing to deploy machine learning, or ML, across their products. ML budgets doubled."
    assert "ML" not in orgs(text)


def test_secretary_of_state_is_a_title_not_an_organisation() -> None:
    text = "US Secretary of State John Harlan met the delegation in Geneva."
    assert "State" not in orgs(text)
