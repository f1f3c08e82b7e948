"""Organisations: which bodies an article names, one entry each.

ORG mentions are cleaned, merged (acronyms in brackets, short forms, possessive and comma forms of
sub-units), typed and given a country; the canonical name keys a stable id.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pycountry

from pipeline.segment import Entity, SegmentedArticle
from schemas.records import OrganisationType, normalise_name, organisation_id

# Head words of names that are not bodies (the guidelines' events, laws, plans, documents, indices, agreements, venues).
NOT_A_BODY_HEAD = re.compile(
    r"(conference|forum|summit|expo|exposition|sessions?|dialogue|meeting|games|awards?|fair|olympics|olympiad|festival|"
    r"championships?|cup|tournament|open|marathon|convention|plan|law|act|index|initiative|week|day|treaty|agreement|accord|pact|protocol|"
    r"war|report|paper|bill|directive|regulations?|resolution|declaration|budget|strategy|blueprint|roadmap|guidelines|manifesto|"
    r"stadium|arena|airport|hotel|motel|course|square|tower|bridge|station|"
    r"elections?|debates?|primary|primaries|caucus(?:es)?|referendum|exhibition|ceremony|parade|scandal|crisis|reforms?|policy|tariffs?|sanctions?)",
    re.I,
)
SUBUNIT_HEADS = re.compile(r"^(institute|center|centre|school|department|bureau|office|college|faculty|laboratory|lab|division)\b", re.I)
LEGAL_SUFFIX = re.compile(r"[\s,]+(co\.?|ltd\.?|limited|inc\.?|corp\.?|corporation|plc|llc|group|holdings?|company)\.?$", re.I)
INTERNATIONAL = {
    "eu": "European Union", "european union": "European Union", "un": "United Nations", "united nations": "United Nations",
    "imf": "International Monetary Fund", "wto": "World Trade Organization", "oecd": "OECD", "nato": "NATO",
    "g7": "G7", "g20": "G20", "world bank": "World Bank", "who": "World Health Organization",
}  # fmt: skip
# Characters that never start or end a name; words that never end one ("Example Corp of").
EDGE_PUNCTUATION = " \t\n,.;:!?\"'“”‘’«»()[]{}-–—/*|"
ABBREVIATION_END = re.compile(r"(?:\b[A-Z]\.[A-Z]\.|\b(?:Corp|Co|Inc|Ltd|Bros|Cos)\.)$")  # "U.N.", "Example Corp." keep their dot
DANGLING_WORD = re.compile(r"\s+(?:of|at|for|and|in|on|the|to|by|with|from|or|as|a|an)$", re.I)
# Not a name: a headline or dateline run into one (a line break, a spaced dash), a title with a colon,
# a fixture ("Northfield v Eastbrook"), a prefixed or suffixed adjective ("Pro-Western", "Example-based").
# Acronyms of things, not bodies: technologies, measures, products, units, titles.
COMMON_ACRONYMS = frozenset(
    "AI AGI GDP GNP CPI PPI PMI IPO CEO CFO CTO COO EV EVS VAT GMO ETF R&D IT API LLM 5G 4G KW MW GW KWH BC AD PC SUV".split()
)
FIXTURE = re.compile(r"\sv\.?\s|\svs\.?\s")
NOT_A_NAME = re.compile(r"\n|\s[-–—]\s|:\s|\sv\.?\s|\svs\.?\s|^(?:pro|anti|ex|non|post|pre)-\w+$|^\S+-(?:based|led|backed|owned|run|like|brokered|made|controlled)$", re.I)
# Party adjectives and nicknames name the party ("a Republican senator", "the GOP", "Labour MPs"):
# (canonical name, country). Only where spaCy reads the word as a group or organisation name.
PARTIES = {
    "republican": ("Republican Party", "US"), "republicans": ("Republican Party", "US"), "gop": ("Republican Party", "US"),
    "democrat": ("Democratic Party", "US"), "democrats": ("Democratic Party", "US"), "democratic": ("Democratic Party", "US"),
    "conservative": ("Conservative Party", "GB"), "conservatives": ("Conservative Party", "GB"), "tory": ("Conservative Party", "GB"),
    "tories": ("Conservative Party", "GB"), "labour": ("Labour Party", "GB"),
    "liberal democrat": ("Liberal Democrats", "GB"), "liberal democrats": ("Liberal Democrats", "GB"), "lib dems": ("Liberal Democrats", "GB"),
}  # fmt: skip
# Names written in another form than the canonical one: international bodies and parties.
CANONICAL = {**INTERNATIONAL, **{word: name for word, (name, _) in PARTIES.items()}}
EU_BODY = re.compile(r"\b(european (commission|parliament|council|central bank|court)|council of the european union|eu commission)\b", re.I)

# (pattern, type), first match on the organisation's head wins.
TYPE_RULES: list[tuple[re.Pattern[str], OrganisationType]] = [
    (re.compile(r"\b(party|communist|cpc|political bureau|politburo|central committee)\b", re.I), "party"),
    (re.compile(r"\b(university|college|business school|school of)\b", re.I), "university"),
    (re.compile(r"\b(institute|academy|research|think tank|laborator(y|ies)|centre|center|observatory|forecast)\b", re.I), "research_institute"),
    (re.compile(r"\b(ministry|department|commission|bureau|administration|government|council|parliament|congress|senate|agency|authority|regulator|cabinet|state council|committee|office|court|customs|central bank|people's bank|federal reserve|treasury|police|army|military|navy)\b", re.I), "government"),
    (re.compile(r"\b(association|union|chamber|federation|foundation|society|alliance|coalition|campaign|trust|charity|network|ngo)\b", re.I), "ngo"),
    (re.compile(r"\b(daily|times|post|news|press|tribune|journal|herald|gazette|broadcasting|television|tv|radio|reuters|xinhua|bbc|cnn|bloomberg|associated press|magazine)\b", re.I), "media"),
    (re.compile(r"\b(exchange|board|club|market)\b", re.I), "other"),
    (re.compile(r"\b(group|co|ltd|inc|corp|corporation|company|holdings?|technolog(y|ies)|motors?|bank|airlines?|manufactur\w*|industries|electronics|pharma\w*|energy|capital|partners|plc|llc)\b", re.I), "company"),
]


@dataclass
class Org:
    key: str  # "O1", "O2", ...
    name: str
    aliases: list[str] = field(default_factory=list)
    mentions: list[tuple[int, int]] = field(default_factory=list)
    type: OrganisationType = "other"
    country: str | None = None
    type_source: str = "rule"  # "rule" (a keyword matched) or "default" (nothing matched)
    country_source: str = "rule"  # "rule" (named in or with the organisation) or "default" (the article's main country)

    @property
    def id(self) -> str:
        return organisation_id(self.name)


def org_for_mention(orgs: list[Org], text: str, offset: int | None = None) -> Org | None:
    """The organisation a mention names: exactly, then as an acronym or a trailing short form.

    "Wfp" and "WFP" are the initials of "World Food Programme"; "the Authority" is the last word of
    "Food Standards Authority" (the one mentioned most recently before `offset` when several end
    that way).
    """
    cleaned = _clean_org_text(text)
    key = normalise_name(cleaned)
    if not key:
        return None
    for org in orgs:
        if key in {normalise_name(n) for n in (org.name, *org.aliases)}:
            return org
    if re.fullmatch(r"[A-Z][A-Za-z]{1,6}", cleaned):
        hits = [o for o in orgs if any(cleaned.upper() in _initials(n) for n in (o.name, *o.aliases))]
        if len(hits) == 1:
            return hits[0]
    if re.match(r"[A-Z]", cleaned) and len(key.split()) <= 2:
        hits = [o for o in orgs if any(_ends_with_words(n, key) for n in (o.name, *o.aliases))]
        if hits:
            return _most_recent(hits, offset)
    return None


def _initials(name: str) -> set[str]:
    """Acronyms a name can be shortened to, with and without its function words."""
    words = re.findall(r"[A-Za-z][\w'’-]*", LEGAL_SUFFIX.sub("", name))
    content = [w for w in words if w.lower() not in ("of", "and", "the", "for", "in", "on", "de", "&")]
    found = set()
    for seq in (words, content):
        if len(seq) >= 2:
            found.add("".join(w[0] for w in seq).upper())
    return found


def _ends_with_words(name: str, key: str) -> bool:
    """'commission' is a trailing short form of 'European Commission' (not of 'Commission' itself)."""
    # "Institute of X, Example University": the part after the comma is the parent, another body.
    full = normalise_name(LEGAL_SUFFIX.sub("", name.split(",")[0])).split()
    short = key.split()
    return len(full) > len(short) and full[-len(short) :] == short


def _most_recent(orgs: list[Org], offset: int | None) -> Org:
    if offset is None:
        return orgs[0]

    def last_before(org: Org) -> int:
        starts = [s for s, _ in org.mentions if s < offset]
        return max(starts) if starts else -1

    best = max(orgs, key=last_before)
    return best if last_before(best) >= 0 else orgs[0]


def _clean_org_text(text: str) -> str:
    """A mention without a leading article, a trailing possessive, edge punctuation or a dangling function word."""
    previous = None
    while previous != text:
        previous = text
        text = text.strip(EDGE_PUNCTUATION.replace(".", ""))
        text = text.strip(EDGE_PUNCTUATION) + ("." if ABBREVIATION_END.search(text) else "")
        text = re.sub(r"^(?:the|a|an)\s+", "", text, flags=re.I)
        text = re.sub(r"['’]s$", "", text)
        text = re.sub(r"\s*\([^)]*$", "", text)  # "Example Agency (EA" cut before its open bracket
        text = DANGLING_WORD.sub("", text)
    return text


def org_entities(seg: SegmentedArticle, speaking: Sequence[tuple[int, int]] = ()) -> list[Entity]:
    """Organisation mentions in text order: the CoNLL-trained recogniser's when it is installed, else
    spaCy's ORG entities; plus international bodies and parties spaCy labels as places or groups
    ("EU", "Republican"). `speaking`: spans of statement sources ("according to X", "X said")."""
    if seg.organisations is None:
        found = [e for e in seg.entities if e.label == "ORG"]
    else:
        # The recogniser's organisations, and spaCy's where the recogniser saw no entity at all (it was
        # trained on 1996 Reuters and misses names it never saw; where it reads a person or place, it wins,
        # except that a place does not speak: a source spaCy reads as an organisation is one).
        found = list(seg.organisations)
        found += [
            e
            for e in seg.entities
            if e.label == "ORG"
            and (_recogniser_unsure(e, seg.recognised or []) or _source_read_as_place(e, seg, speaking))
            and _stands_alone(seg, e)
        ]
    found += [e for e in seg.entities if e.label in ("GPE", "NORP", "ORG") and _canonical_form(e.text) and not any(e.start < o.end and o.start < e.end for o in found)]
    return _repair_spans(seg.text, sorted(found, key=lambda e: e.start), [e for e in seg.entities if e.label == "PERSON"])


def _source_read_as_place(ent: Entity, seg: SegmentedArticle, speaking: Sequence[tuple[int, int]]) -> bool:
    """A statement's source that spaCy reads as an organisation and the recogniser as a place: places do not
    speak ("according to the Harbor Center"). Not one it reads as a person or a nationality ("the Briton said"),
    nor an acronym it reads as a place ("UAE said")."""
    if not any(start <= ent.start and ent.end <= end for start, end in speaking):
        return False
    if re.fullmatch(r"(?:[Tt]he\s+)?(?:[A-Z]\.?){2,5}", ent.text.strip()):
        return False  # "UAE", "the U.S.": an acronym read as a place is most likely a country's
    overlapping = [r for r in seg.recognised or [] if ent.start < r.end and r.start < ent.end]
    return bool(overlapping) and all(r.label == "LOC" for r in overlapping)


def _recogniser_unsure(ent: Entity, recognised: list[Entity]) -> bool:
    """spaCy's ORG mention stands where the recogniser saw no entity, or where it read the same name
    with different labels across the article (a name it never saw in training: "Corvantis" as a place
    here, a person there)."""
    overlapping = [r for r in recognised if ent.start < r.end and r.start < ent.end]
    if not overlapping:
        return True
    labels = {r.label for r in recognised if normalise_name(r.text) == normalise_name(ent.text)}
    return len(labels) > 1


def _stands_alone(seg: SegmentedArticle, ent: Entity) -> bool:
    """Whether a spaCy ORG mention the recogniser did not see looks like a name on its own.

    Not: a word with no capital ("congress"), an ordinal ("285th"), a single capitalised word opening a
    sentence ("Mystery has surrounded ...", "Media reports"), a word of an all-capitals headline (the
    recogniser was trained on such lines and read them itself), a portfolio before a title ("Housing
    Secretary").
    """
    text = seg.text
    words = ent.text.split()
    if not re.search(r"[A-Z]", ent.text) or re.fullmatch(r"\d[\w,.]*", ent.text.strip()):
        return False
    line_start = text.rfind("\n", 0, ent.start) + 1
    line_end = text.find("\n", ent.end)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    if len(re.findall(r"[a-z]", line)) == 0 and len(line.split()) > len(words):
        return False
    if len(words) == 1 and not ent.text.isupper():
        if re.match(r"\s*(?:$|[.!?\"“”'’]\s*$)", text[max(0, ent.start - 3) : ent.start]) or ent.start == line_start:
            return False
        if re.match(r"\s+(?:Secretary|Minister|Ministers)\b", text[ent.end : ent.end + 12]):
            return False
    return True


def _canonical_form(mention: str) -> str | None:
    """The canonical name of a body usually written otherwise ("EU", "GOP", "Tories"), if it is one."""
    return CANONICAL.get(normalise_name(_clean_org_text(mention)))


def _repair_spans(text: str, entities: list[Entity], people: list[Entity] = ()) -> list[Entity]:
    """Mention boundaries a recogniser commonly gets wrong, put right.

    "Example University's" + "Institute of X" is one mention of the institute; "Center for" before a
    mention of "X Studies" belongs to the name; lower-case words after a name ("Example News agency",
    "Example radio") and a person's name run on after it ("Example Party Anna Keller") do not; two
    names in one mention ("Northfield, Eastbrook") are two mentions.
    """
    repaired: list[Entity] = []
    for ent in _split_lists(text, entities):
        start, end = ent.start, ent.end
        head = SUBUNIT_BEFORE.search(text, max(0, start - 40), start)
        if head is not None and head.end() == start:
            start = head.start()
        while (tail := LOWER_TAIL.search(text, start, end)) is not None and tail.end() == end and re.search(r"[A-Z]", text[start : tail.start()]):
            end = tail.start()
        person = next((p for p in people if start < p.start < end <= p.end and len(p.text.split()) >= 2), None)
        if person is not None:
            end = start + len(text[start : person.start].rstrip())
        prev = repaired[-1] if repaired else None
        if prev is not None and re.search(r"['’]s?$", prev.text) and re.fullmatch(r"\s+", text[prev.end : start]) and SUBUNIT_HEADS.match(text[start:end]):
            repaired[-1] = Entity(text[prev.start : end], ent.label, prev.start, end)
            continue
        repaired.append(Entity(text[start:end], ent.label, start, end))
    return repaired


def _split_lists(text: str, entities: list[Entity]) -> list[Entity]:
    """'Northfield, Eastbrook' -> two mentions; a sub-unit and its parent ('Institute of X, Example University') stay one."""
    pieces: list[Entity] = []
    for ent in entities:
        parts = [m for m in re.finditer(r"[^,]+", ent.text)]
        # "Goldman, Sachs and Co.", "Bailard, Biehl and Kaiser": a list closed by "and" in one mention is a firm's name.
        firm = len(parts) >= 2 and re.search(r"\s(?:and|&)\s", parts[-1].group()) is not None
        if len(parts) < 2 or firm or SUBUNIT_HEADS.match(ent.text) or not all(re.match(r"\s*[A-Z]", m.group()) for m in parts):
            pieces.append(ent)
            continue
        for m in parts:
            lead = len(m.group()) - len(m.group().lstrip())
            start = ent.start + m.start() + lead
            pieces.append(Entity(text[start : ent.start + m.end()], ent.label, start, ent.start + m.end()))
    return pieces


def find_organisations(seg: SegmentedArticle, person_names: Iterable[str] = (), speaking: Sequence[tuple[int, int]] = ()) -> list[Org]:
    """The article's organisations, in order of first mention, keyed O1, O2, ... (`speaking`: see `org_entities`)."""
    text = seg.text
    orgs: list[Org] = []
    entities = org_entities(seg, speaking)
    if seg.organisations is not None:
        # A "person" the recogniser reads as an organisation (a club spaCy takes for a name), or a fixture
        # ("Northfield v Eastbrook"), lends no name words.
        recognised = {normalise_name(_clean_org_text(e.text)) for e in entities}
        person_names = [name for name in person_names if normalise_name(name) not in recognised and not FIXTURE.search(name)]
    person_tokens = {tok for name in person_names for tok in normalise_name(name).split()}

    def add(name: str, alias: str | None, span: tuple[int, int] | None) -> Org:
        for org in orgs:
            keys = {normalise_name(n) for n in (org.name, *org.aliases)}
            if normalise_name(name) in keys or (alias and normalise_name(alias) in keys):
                break
        else:
            org = Org(key=f"O{len(orgs) + 1}", name=name)
            orgs.append(org)
        for extra in (name, alias):
            if extra and extra != org.name and extra not in org.aliases:
                org.aliases.append(extra)
        if span and span not in org.mentions:
            org.mentions.append(span)
        return org

    not_orgs = _non_org_acronyms(seg, entities)
    entity_names = {normalise_name(_clean_org_text(e.text)) for e in entities}
    skip: set[int] = set()
    for i, ent in enumerate(entities):
        if i in skip:
            continue
        mention = _clean_org_text(ent.text)
        if not mention or _names_an_event(mention) or NOT_A_NAME.search(mention) or _names_a_country(mention) or _person_name(mention, person_tokens, learned=seg.organisations is not None):
            continue
        if PERSONAL_TITLE.match(mention) and organisation_type(mention) == "other":
            continue
        if mention in not_orgs or mention.upper() in COMMON_ACRONYMS:
            continue
        # Without a capital a mention is a description ("the king's", "congress"), unless the recogniser
        # read a body's head word in it ("interior ministry").
        if not re.search(r"[A-Z]", mention) and not (len(mention.split()) >= 2 and UNIT_TAIL.search(mention)):
            continue
        # "Secretary of State", "Minister of Finance": part of a title, not a named body.
        if re.search(r"\b(?:secretary|minister|ministers)\s+of\s+(?:the\s+)?$", text[max(0, ent.start - 30) : ent.start], re.I) and len(mention.split()) == 1:
            continue
        start = ent.start + ent.text.find(mention)
        span = (start, start + len(mention))
        # "EU Trade Commissioner": an entity running into a title keeps only the known body it starts with.
        if ROLE_AFTER.match(text[ent.end : ent.end + 20]) and len(mention.split()) > 1:
            words = mention.split()
            prefixes = [" ".join(words[:k]) for k in range(len(words) - 1, 0, -1)]
            known = next((p for p in prefixes if _canonical_form(p) or normalise_name(p) in entity_names - {normalise_name(mention)}), None)
        else:
            known = None
        if known is not None:
            mention, span = known, (start, start + len(known))
            if canonical := _canonical_form(mention):
                add(canonical, mention if mention != canonical else None, span)
                continue
        nxt = entities[i + 1] if i + 1 < len(entities) else None
        # "Executive Board of the Example Federation of Unions": the most specific body.
        if nxt is not None and UNIT_TAIL.search(mention) and re.fullmatch(r"\s+of\s+(?:the\s+)?", text[ent.end : nxt.start], flags=re.I):
            whole = text[span[0] : nxt.end].rstrip(" ,.;:")
            whole = re.sub(r"['’]s$", "", whole)
            add(whole, None, (span[0], span[0] + len(whole)))
            skip.add(i + 1)
            continue
        # "the Bundestag, Germany's parliament,": an appositive naming the same body.
        prev = entities[i - 1] if i > 0 else None
        if prev is not None and prev.label == "ORG" and re.fullmatch(r",\s+(?:the\s+)?(?:[A-Z][\w.]*\s?){1,3}['’]s\s+", text[prev.end : ent.start]) and text[ent.end : ent.end + 1] in (",", "."):
            owner = next((o for o in orgs if span[0] - 60 < (o.mentions[-1][1] if o.mentions else -99) <= prev.end), None)
            if owner is not None and organisation_type(mention) == organisation_type(owner.name):
                add(owner.name, mention, span)
                continue
        if canonical := _canonical_form(mention):
            add(canonical, mention if mention != canonical else None, span)
            continue
        # "Example University's Institute of Economics" -> "Institute of Economics, Example University"
        possessive = re.match(r"^(.+?)['’]s\s+(.+)$", mention)
        if possessive and SUBUNIT_HEADS.match(possessive.group(2)) and organisation_type(possessive.group(1)) != "other":
            parent, unit = possessive.group(1), possessive.group(2)
            add(f"{unit}, {parent}", mention, span)
            add(parent, None, None)
            continue
        # "the Institute of Industrial Economics, Chinese Academy of Social Sciences"
        if nxt is not None and SUBUNIT_HEADS.match(mention) and re.fullmatch(r",\s*(?:the\s+)?", text[ent.end : nxt.start], flags=re.I):
            add(f"{mention}, {_clean_org_text(nxt.text)}", mention, span)
            continue
        # "Office for Budget Responsibility (OBR)"
        acronym = re.match(r"\s*\(([A-Z][A-Za-z&]{1,9})\)", text[ent.end : ent.end + 14])
        org = add(mention, acronym.group(1) if acronym else None, span)
        if (the := _written_with_the(text, span[0], mention)) and the not in org.aliases:
            org.aliases.append(the)
    for name, printed, span in _speaking_campaigns(text, speaking, person_tokens):
        add(name, printed if printed != name else None, span)
    _merge_short_forms(orgs)
    for org in orgs:
        org.type = organisation_type(org.name)
        if org.type in ("other", "company") and not any(p.search(org.name.split(",")[0]) for p, _ in TYPE_RULES) and not LEGAL_SUFFIX.search(org.name):
            org.type_source = "default"
        org.mentions.sort()
    _assign_countries(seg, orgs)
    return orgs


# "the Lee campaign said", "Lee's campaign said": a candidate's campaign that speaks is an organisation (the
# guidelines type campaigns as NGOs), named by the candidate's surname. Only where it is a statement's source:
# elsewhere "the Lee campaign" is as often the campaigning itself.
CAMPAIGN = re.compile(r"\b([A-Z][\w-]+)(['’]s?)?\s+(?:presidential\s+|re-?election\s+)?campaign\b")


def _speaking_campaigns(text: str, speaking: Sequence[tuple[int, int]], person_tokens: set[str]) -> list[tuple[str, str, tuple[int, int]]]:
    """(name, as printed, span) of the campaigns of people the article names, inside statement sources."""
    found = []
    for start, end in speaking:
        for m in CAMPAIGN.finditer(text, start, end):
            if normalise_name(m.group(1)) in person_tokens:
                found.append((f"{m.group(1)} campaign", m.group(0), (m.start(), m.end())))
    return found


def _written_with_the(text: str, start: int, mention: str) -> str | None:
    """"The New York Times", "THE TIMES": a capital article written as part of the name (inside a sentence,
    or before a newspaper's name anywhere) is kept as an alias, as written."""
    before = re.search(r"(The|THE)\s+$", text[max(0, start - 6) : start])
    if before is None:
        return None
    at = start - len(before.group(0))
    opens_sentence = at == 0 or re.search(r"(?:[.!?:;\"“”]\s*|\n\s*)$", text[max(0, at - 3) : at]) is not None
    if opens_sentence and before.group(1) == "The" and organisation_type(mention) != "media":
        return None
    return f"{before.group(1)} {mention}"


def _names_an_event(mention: str) -> bool:
    """Events, laws, plans, indices, agreements and venues are named by their head word ("Work
    Conference", "Clean Air Act", "Example Stadium"); a body named after one ("Conference Board",
    "Law Society") is not one of them."""
    head = re.split(r"\s+(?:of|for|on|to)\s+", mention, maxsplit=1)[0].split()
    return bool(head) and NOT_A_BODY_HEAD.fullmatch(head[-1]) is not None


def _names_a_country(mention: str) -> bool:
    """Countries (and the few capitals and demonyms `_country_code` knows) are places, not bodies; the EU is one.
    An acronym that happens to be a country code ("OM", "CAF") is not a country's name."""
    if re.fullmatch(r"[A-Z]{2,3}", mention) and normalise_name(mention) not in DEMONYMS:
        return False
    return _country_code(mention) is not None and not _canonical_form(mention)


# A personal title before a capitalised word ("Sen. Okafor", "Dr Lee"): a person, unless an organisation word
# follows ("Dr. Reddy's Laboratories"). Titles that also start company names ("General", "President") are not here.
PERSONAL_TITLE = re.compile(r"(?i:mr|mrs|ms|dr|prof|sen|sens|rep|reps|gov|lt|col|capt|sgt|rev|sir|dame|senator|governor|mayor|rabbi)\.?\s+[A-Z]")


def _person_name(mention: str, person_tokens: set[str], *, learned: bool) -> bool:
    """A mention made only of the article's person-name words is a person ("Keller said"), unless the
    recogniser read a name of two or more words as an organisation (a club named after its town)."""
    words = normalise_name(mention).split()
    return set(words) <= person_tokens and not (learned and len(words) >= 2)


SUBUNIT_BEFORE = re.compile(r"\b(?:Institute|Center|Centre|School|Department|Bureau|Office|College|Faculty|Laboratory|Council|Commission|Committee|Association|Federation|Society|Foundation|Academy|Ministry)\s+(?:of|for|on)\s+(?:the\s+)?")
LOWER_TAIL = re.compile(r"\s+[a-z]+$")
ROLE_AFTER = re.compile(r"\s+(?:Commissioner|Minister|Secretary|Chairman|Chairwoman|President|Director|Chief|CEO)\b")
UNIT_TAIL = re.compile(r"\b(bureau|committee|council|commission|department|office|institute|school|center|centre|board|division|college|faculty|academy|ministry|secretariat)$", re.I)


def _non_org_acronyms(seg: SegmentedArticle, entities: list[Entity]) -> set[str]:
    """Acronyms the text defines as something other than an organisation.

    "artificial intelligence, or AI" and "Bovine Spongiform Encephalopathy (BSE)": the words before
    the acronym spell it, and those words are not an organisation's name.
    """
    text = seg.text
    org_spans = [(e.start, e.end) for e in entities if e.label == "ORG"]
    found: set[str] = set()
    for ent in entities:
        acr = ent.text.strip()
        if not re.fullmatch(r"[A-Z]{2,6}", acr) or acr in found:
            continue
        for m in re.finditer(rf"((?:[A-Za-z][\w-]*\s+){{{len(acr)}}})(?:\(\s*|or\s+){acr}\b", text.replace(",", " ")):
            words = m.group(1).split()
            phrase_start = m.start(1)
            if "".join(w[0] for w in words).upper() == acr and not any(s <= phrase_start < e for s, e in org_spans):
                found.add(acr)
                break
    return found


def _merge_short_forms(orgs: list[Org]) -> None:
    """'Acme' and 'Acme Robotics' are aliases of 'Acme Robotics Group'; so are variants of one name.

    Also merged: word-order variants ('Water Quality Regional Board' / 'Regional Water Quality Board'),
    acronyms that spell a longer name ('WFP'), and a trailing short form ('Authority' for 'Food Standards Authority', taking
    the longer name mentioned most recently before the short form when several qualify).
    """
    def absorb(long: Org, short: Org) -> None:
        for alias in (short.name, *short.aliases):
            if alias not in long.aliases and alias != long.name:
                long.aliases.append(alias)
        long.mentions.extend(short.mentions)
        orgs.remove(short)

    for org in list(orgs):
        if org not in orgs:
            continue
        words = sorted(normalise_name(LEGAL_SUFFIX.sub("", org.name)).split())
        for other in list(orgs):
            if other is not org and other in orgs and len(words) > 1 and sorted(normalise_name(LEGAL_SUFFIX.sub("", other.name)).split()) == words:
                absorb(org, other)
    for short in sorted(orgs, key=lambda o: len(o.name)):
        if short not in orgs:
            continue
        if re.fullmatch(r"[A-Z]{2,6}", short.name):
            hits = [o for o in orgs if o is not short and any(short.name in _initials(n) for n in (o.name, *o.aliases))]
            if len(hits) == 1:
                absorb(hits[0], short)
                continue
        key = normalise_name(short.name)
        if len(key.split()) <= 2 and CANONICAL.get(key) != short.name:
            hits = [o for o in orgs if o is not short and any(_ends_with_words(n, key) for n in (o.name, *o.aliases))]
            first = short.mentions[0][0] if short.mentions else None
            if hits:
                absorb(_most_recent(hits, first), short)
                continue
    _merge_prefix_forms(orgs)


def _merge_prefix_forms(orgs: list[Org]) -> None:
    for short in sorted(orgs, key=lambda o: len(o.name)):
        if short not in orgs:
            continue
        short_key = normalise_name(LEGAL_SUFFIX.sub("", short.name))
        for long in orgs:
            if long is short or len(long.name) <= len(short.name):
                continue
            long_key = normalise_name(long.name)
            if long_key.startswith(short_key + " ") and LEGAL_SUFFIX.search(long.name) or normalise_name(LEGAL_SUFFIX.sub("", long.name)) == short_key:
                for alias in (short.name, *short.aliases):
                    if alias not in long.aliases and alias != long.name:
                        long.aliases.append(alias)
                long.mentions.extend(short.mentions)
                orgs.remove(short)
                break
    for i, org in enumerate(orgs):
        org.key = f"O{i + 1}"


def organisation_type(name: str) -> OrganisationType:
    if normalise_name(name) in {normalise_name(v) for v in INTERNATIONAL.values()} and not EU_BODY.search(name):
        return "international"
    head = name.split(",")[0]
    for pattern, org_type in TYPE_RULES:
        if pattern.search(head):
            return org_type
    return "company" if LEGAL_SUFFIX.search(name) else "other"


def _country_code(name: str) -> str | None:
    if normalise_name(name) in ("eu", "european union", "europe", "european"):
        return "EU"
    try:
        return pycountry.countries.lookup(name).alpha_2
    except LookupError:
        pass
    demonym = DEMONYMS.get(normalise_name(name))
    return demonym


# The few demonyms pycountry does not know; everything else is resolved by pycountry's names.
DEMONYMS = {
    "chinese": "CN", "american": "US", "british": "GB", "english": "GB", "french": "FR", "german": "DE", "japanese": "JP",
    "korean": "KR", "south korean": "KR", "indian": "IN", "russian": "RU", "italian": "IT", "spanish": "ES", "dutch": "NL",
    "canadian": "CA", "australian": "AU", "brazilian": "BR", "mexican": "MX", "swiss": "CH", "swedish": "SE", "irish": "IE",
    "belgian": "BE", "polish": "PL", "turkish": "TR", "saudi": "SA", "israeli": "IL", "iranian": "IR", "taiwanese": "TW",
    "us": "US", "u s": "US", "uk": "GB", "u k": "GB", "britain": "GB", "america": "US", "beijing": "CN", "washington": "US",
    "london": "GB", "brussels": "BE", "tokyo": "JP", "hong kong": "HK", "shanghai": "CN",
}  # fmt: skip


def _assign_countries(seg: SegmentedArticle, orgs: list[Org]) -> None:
    """The country of a known party, else one named in the organisation's own name, else the article's main country."""
    mentioned = Counter(c for e in seg.entities if e.label in ("GPE", "NORP") and (c := _country_code(e.text)) and c != "EU")
    main_country = mentioned.most_common(1)[0][0] if mentioned else None
    for org in orgs:
        if org.type == "international":
            org.country = None
            continue
        if EU_BODY.search(org.name):
            org.country = "EU"
            continue
        party_home = next((home for name, home in PARTIES.values() if name == org.name), None)
        if party_home is not None:
            org.country = party_home
            continue
        own = [c for e in seg.entities if e.label in ("GPE", "NORP") for c in [_country_code(e.text)] if c and any(e.start >= s and e.end <= t for s, t in org.mentions)]
        words = [c for w in re.findall(r"[A-Z][a-z]+", org.name) if (c := _country_code(w))]
        org.country = (own or words or [main_country])[0]
        if not (own or words):
            org.country_source = "default"
