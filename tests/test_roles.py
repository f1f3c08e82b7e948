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
        "possessive appositive, plural owner",
        "Daniel Frey, Orbis Motors' chief executive, said sales would recover.",
        "Daniel Frey", "chief executive", "Orbis Motors",
    ),
    (
        "a lower-case back-reference to the body",
        "Orbis Motors reported a loss. Daniel Frey, the company's chief executive, said sales would recover.",
        "Daniel Frey", "chief executive", "Orbis Motors",
    ),
    (
        "a relative clause with a verb of office",
        "Hannah Ortiz, who founded Petal Labs in 2009, said sales would recover.",
        "Hannah Ortiz", "founder", "Petal Labs",
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
        "a portfolio is part of the title, not a body",
        "Health Secretary Nia Rowe said waiting lists were falling. The Department of Transport disagreed.",
        "Nia Rowe", "Health Secretary", None,
    ),
    (
        "a title owned by another title's possessive is not this person's",
        "The senator's chief of staff and former press secretary, Lucy Dane, said the vote was close.",
        "Lucy Dane", "chief of staff and former press secretary", None,
    ),
    (
        "a party label of another person",
        "Laura Bennett, 41, a supporter of Republican Hal Grant, said she would vote early.",
        "Laura Bennett", None, None,
    ),
    (
        "a short form used as a modifier is not the body",
        "The Greenfield Museum opened on Friday. Museum curator Ola Berg said the building was new.",
        "Ola Berg", "Museum curator", None,
    ),
    (
        "a short form that refers back is the body",
        "Officials at the Harlow Water Authority raised fares. The Authority's chief engineer, Ben Kray, said repairs were due.",
        "Ben Kray", "chief engineer", "Harlow Water Authority",
    ),
    (
        "the person served is not part of the role, nothing dangles",
        "Robert Kimball, a former senior aide to Mr. Harlan, said the talks had stalled.",
        "Robert Kimball", "former senior aide", None,
    ),
    (
        "a place compound is not part of the role",
        "Carol Dunning, a Denver-based activist, said the talks had stalled.",
        "Carol Dunning", "activist", None,
    ),
    (
        "an appositive after a name the recogniser missed belongs to that name",
        "In a letter to Hillary Brandt, Okonkwo, head of the Lakeside Policy Centre, set out the plan.",
        "Hillary Brandt", None, None,
    ),
    (
        "a capitalised title takes no lower-case noun before it",
        "It was a defeat President Ellen Marsh still regrets.",
        "Ellen Marsh", "President", None,
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


# --------------------------------------------------------------------------- the analysts' query on the dev set

duckdb = pytest.importorskip("duckdb")

from pipeline.evaluate import load_gold, name_keys, quotes_match, speaker_matches  # noqa: E402
from tests.support.paths import EVAL_DEV  # noqa: E402
from tests.test_duckdb import QUOTES_PER_ORGANISATION, dev_tables, jsonl, rows  # noqa: E402, F401 (dev_tables: the dev-set run and its tables)

# The README's query, with each row's quote and speaker kept (same join): which organisation each quote counted for.
QUOTE_ORGANISATIONS = QUOTES_PER_ORGANISATION.split("SELECT o.organisation_id")[0] + """
SELECT o.organisation_id, q.source_file, q.speaker.name AS speaker, q.speaker.kind AS kind, q.text
FROM quotes q
JOIN org_in_article o ON o.ap.article_id = q.article_id AND o.ap.record_id = q.speaker.organisation_id;
"""


def _tied_names(gold: dict) -> dict[str, set[str]]:
    """Gold speaker -> name keys of the organisation the gold ties their quotes to (itself, for an organisation)."""
    entries = {o["name"]: o for o in gold.get("organisations") or []}
    tied: dict[str, set[str]] = {}
    for speaker in gold.get("speakers") or []:
        target = speaker["organisation"] if speaker["kind"] == "person" else speaker["name"]
        entry = entries.get(target or "", {"name": target or ""})
        tied[speaker["name"]] = set().union(*(name_keys(n) for n in [entry["name"], *(entry.get("aliases") or [])]))
    return tied


def test_quotes_per_organisation_lists_only_organisations_the_gold_ties_to_the_speaker(dev_tables: dict) -> None:
    out, con = dev_tables["out"], dev_tables["con"]
    gold = load_gold(EVAL_DEV / "gold")
    registry = {row["id"]: row for row in jsonl(out / "organisations.jsonl")}

    def names(organisation_id: str) -> set[str]:
        entry = registry[organisation_id]
        return set().union(*(name_keys(n) for n in [entry["name"], *entry["aliases"]]))

    listed = rows(con, QUOTES_PER_ORGANISATION)
    assert listed, "people and organisations speak for organisations in the dev set"
    counted = rows(con, QUOTE_ORGANISATIONS)
    assert sum(r["quotes"] for r in listed) == len(counted)
    checked = 0
    for row in counted:
        article = gold[row["source_file"]]
        tied = _tied_names(article)
        # The gold speakers of the quote: a quote the gold does not have is a quote-finding error,
        # scored by quote precision, not here.
        quoted_by = [q["speaker"] for q in article["quotes"] if q.get("speaker") and quotes_match(row["text"], q["text"])]
        speakers = [s for s in quoted_by if speaker_matches(row["speaker"], s, article.get("organisations") or [])]
        if not quoted_by:
            continue
        assert speakers, ("the speaker is wrong, so is the organisation", row)
        checked += 1
        assert any(names(row["organisation_id"]) & tied[s] for s in speakers), (row, [registry[row["organisation_id"]]["name"]])
    assert checked >= len(counted) * 0.9, "nearly every counted quote is a gold quote"
