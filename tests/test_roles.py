"""Roles and organisations of people, on hand-written sentences (no article's text).

Each case states, for one person, the role and the organisation (canonical name, or None) the
wording ties them to; `pipeline.roles` must read them from the construction alone.
"""

from __future__ import annotations

import pytest

from pipeline.normalise import Inventory, build_inventory
from pipeline.segment import segment


def person_link(inventory: Inventory, name: str) -> tuple[str | None, str | None]:
    person = next(p for p in inventory.people if p.name == name)
    org = next((o for o in inventory.organisations if o.key == person.organisation_key), None)
    return person.role, org.name if org else None


CASES: list[tuple[str, str, str, str | None, str | None]] = [
    # (construction, text, person, role, organisation)
    (
        "title before the name",
        "Finance Minister Ana Torres said the budget would be balanced by next year.",
        "Ana Torres", "Finance Minister", None,
    ),
    (
        "company's title before the name",
        "Veltrix Group's deputy chief executive Mark Olsen said orders had doubled.",
        "Mark Olsen", "deputy chief executive", "Veltrix Group",
    ),
    (
        "title phrase opening the sentence, then the name",
        "The secretary of the Department of Fisheries, Maria Lund, said quotas would fall.",
        "Maria Lund", "secretary", "Department of Fisheries",
    ),
    (
        "appositive after the name, a whole compound title",
        "Tom Reyes, vice-president and chief technology officer at Brightwave Networks, said the chips were late.",
        "Tom Reyes", "vice-president and chief technology officer", "Brightwave Networks",
    ),
    (
        "possessive appositive",
        "Lena Fischer, Norvale Bank's chief economist, said rates would stay high.",
        "Lena Fischer", "chief economist", "Norvale Bank",
    ),
    (
        "hyphenated title, the most specific body of two",
        "Wei Ling, co-director of the Kestrel Research Centre at Marlow University, said the data were clear.",
        "Wei Ling", "co-director", "Kestrel Research Centre",
    ),
    (
        "title with a complement that is not a body",
        "Omar Haddad, head of equity research at Calder Capital, said shares looked cheap.",
        "Omar Haddad", "head of equity research", "Calder Capital",
    ),
    (
        "of-phrase after the name",
        "Priya Nair of the Hollis Institute said the survey was the largest of its kind.",
        "Priya Nair", None, "Hollis Institute",
    ),
    (
        "later mention with an appositive",
        "Carla Mendes said the plan would fail. Critics disagreed. Mendes, the finance director of Orland Foods, told reporters the costs were too high.",
        "Carla Mendes", "finance director", "Orland Foods",
    ),
    (
        "later mention with a relative clause naming the body",
        "President Olu Adebayo opened the session. Adebayo, who is also chairman of the National Unity Party, said the vote would go ahead.",
        "Olu Adebayo", "President", "National Unity Party",
    ),
    (
        "party label in an appositive",
        "Senator Jo Baker, a Democrat of Ohio, said the bill would pass.",
        "Jo Baker", "Senator", "Democratic Party",
    ),
    (
        "party adjective before the title",
        "Republican presidential candidate Dale Porter said he would cut taxes.",
        "Dale Porter", "presidential candidate", "Republican Party",
    ),
    (
        "party abbreviation in brackets",
        "Sen. Rosa Quint (D-Maine) said the hearing was a farce.",
        "Rosa Quint", "Sen.", "Democratic Party",
    ),
    (
        "age before the role",
        "Ken Walsh, 54, a dairy farmer, said milk prices had collapsed.",
        "Ken Walsh", "dairy farmer", None,
    ),
    (
        "age only",
        "Ken Walsh, 54, said milk prices had collapsed.",
        "Ken Walsh", None, None,
    ),
    (
        "nationality and place are not part of the role",
        "Portuguese Energy Minister Rui Costa said the grid would be ready.",
        "Rui Costa", "Energy Minister", None,
    ),
    (
        "two affiliations: the first gives role and organisation",
        "Amy Chen, a professor at Eastbrook University and an adviser to Calder Capital, said markets were calm.",
        "Amy Chen", "professor", "Eastbrook University",
    ),
    (
        "no affiliation: no guess from a nearby organisation",
        "The Riverside Rovers won the cup final on Sunday. Sam Ortiz said the bridge to the stadium was unsafe.",
        "Sam Ortiz", None, None,
    ),
    (
        "a body inside the role is linked",
        "The Federation of Air Carriers (FAC) met in May. FAC director of air transport Paul Moreau said fares would rise.",
        "Paul Moreau", "director of air transport", "Federation of Air Carriers",
    ),
    (
        "another person's possessive is not this person's title",
        "Tom Hale, Governor Ray Dunn's chief of staff, said the office would reopen.",
        "Tom Hale", "chief of staff", None,
    ),
    (
        "a list after the name is not an affiliation",
        "The lawsuit names Mayor Li Fen, the Harbour Department, and the city council.",
        "Li Fen", "Mayor", None,
    ),
    (
        "a premier is tied to the body the article calls the cabinet",
        "The Federal Council, the country's cabinet, met on Monday. Premier Ida Berg said taxes would not rise.",
        "Ida Berg", "Premier", "Federal Council",
    ),
]


@pytest.mark.parametrize(("construction", "text", "name", "role", "organisation"), CASES, ids=[c[0] for c in CASES])
def test_role_and_organisation(construction: str, text: str, name: str, role: str | None, organisation: str | None) -> None:
    assert person_link(build_inventory(segment(text)), name) == (role, organisation)


def test_party_label_becomes_one_of_the_record_organisations() -> None:
    inventory = build_inventory(segment("Rep. Jan Cole, a Republican from Iowa, said the farm bill was dead. Republicans in the House agreed."))
    party = next(o for o in inventory.organisations if o.name == "Republican Party")
    assert party.type == "party"
    person = next(p for p in inventory.people if p.name == "Jan Cole")
    assert person.organisation_key == party.key
    assert party.mentions and all(o.key != party.key for o in inventory.organisations if o is not party)
