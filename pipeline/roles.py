"""Roles: who each person is, and which organisation the article ties them to.

For every person found by `pipeline.normalise`, the article's own wording about that person is
read at every mention, in order:

* a title before the name: "Finance Minister Ann Lee", "Acme's deputy chief executive Ann Lee",
  "the secretary of the Treasury, Ann Lee," (a title phrase that opens the sentence);
* an appositive after it: "Ann Lee, chief economist at Acme,", "Lee, the Treasury secretary,";
* a relative or copular clause: "Lee, who is also chair of the Acme board,", "Lee is a professor at ...";
* a bare affiliation: "Ann Lee of Acme", "Ann Lee at Acme", "Ann Lee (D-Ohio)".

The role is the whole title ("vice-president and chief technology officer", "director of the
department of policy"), without determiners, ages, places, nationalities, party labels or the
organisation's own name. The organisation is the body the title names (the object of "of/at/for",
a possessive owner, a body named before the title, or one named inside it), resolved to one of the
article's organisations so that registry ids stay consistent; a party label links the person to
the party. Nothing is guessed from proximity: a person no description ties to an organisation
gets none. The first description with a role gives the role (and its organisation, when it names
one); otherwise the first description that names an organisation gives it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from spacy.tokens import Doc, Token

from pipeline.organisations import Org, organisation_type
from pipeline.segment import SegmentedArticle
from schemas.records import name_in_text, normalise_name


@dataclass
class Person:
    key: str  # "P1", "P2", ... in order of first mention
    name: str
    mentions: list[tuple[int, int]] = field(default_factory=list)
    role: str | None = None
    organisation_key: str | None = None


# Finds the organisation a mention names: (text, offset of the mention) -> organisation or None.
OrgLookup = Callable[[str, int | None], Org | None]

# Head words of titles and occupations (general English, no article's wording).
TITLE_WORDS = frozenset(
    """
    president vice-president premier minister secretary chancellor governor senator sen congressman congresswoman
    congressmember lawmaker legislator mp mep mayor councillor councilor councilman councilwoman alderman commissioner
    ambassador envoy diplomat consul attache speaker whip
    chairman chairwoman chair chairperson director co-director directors head chief executive ceo cfo cto coo cio cmo
    officer founder co-founder cofounder owner co-owner partner manager principal dean provost rector president-elect
    professor lecturer researcher scientist fellow economist analyst strategist statistician actuary
    spokesman spokeswoman spokesperson spokespeople adviser advisor aide counsel counselor counsellor attorney lawyer
    judge justice prosecutor solicitor barrister magistrate sheriff
    editor correspondent reporter columnist journalist commentator anchor publisher
    general admiral colonel commander captain lieutenant sergeant major marshal
    leader deputy member treasurer trustee secretary-general administrator inspector superintendent coordinator
    organizer organiser campaigner activist lobbyist
    candidate nominee contender challenger incumbent frontrunner front-runner running-mate
    pollster consultant expert specialist engineer designer architect physician doctor nurse surgeon pharmacist
    teacher student worker employee farmer investor banker trader broker entrepreneur accountant auditor
    pastor priest bishop archbishop rabbi imam cardinal
    historian author writer coach quarterback player striker goalkeeper comedian actor actress singer musician artist
    filmmaker producer host presenter curator chef pilot driver nurse midwife paramedic firefighter businessman businesswoman billionaire philanthropist tycoon magnate
    gov sen rep gen lt col capt sgt adm cmdr supt amb atty ag dg operative official staffer volunteer
    president-designate minister-designate representative delegate negotiator regulator supervisor controller
    """.split()
)
# Words that only modify a title ("deputy chief executive", "vice-president").
TITLE_MODIFIERS = frozenset("vice co deputy acting interim former then senior junior chief executive managing general assistant associate joint principal lead".split())
# Nouns ending so name people by what they do ("economist", "politician", "businessman").
OCCUPATION_SUFFIXES = ("ist", "ician", "man", "woman", "person")
SPEECH_VERBS = frozenset("said says say told tells added adds stated states noted notes stressed argued explained warned wrote".split())
CLAUSE_WORDS = frozenset("who whom whose which that where when while because although though as if said says told added".split())
COMPLEMENT_PREPOSITIONS = frozenset("of for to on at with in from over".split())
AFFILIATION_PREPOSITIONS = frozenset("of at with from".split())
COPULAS = re.compile(r"\s*(?:,\s*who\s+)?(?:is|was|has been|had been|serves as|served as|became|becomes)\s+(?:also\s+|now\s+|currently\s+|still\s+)?", re.I)
HEADS_VERBS = {"heads": "head", "headed": "head", "leads": "leader", "led": "leader", "chairs": "chair", "chaired": "chair", "runs": "head", "ran": "head", "founded": "founder", "co-founded": "co-founder", "directs": "director", "manages": "manager"}

# Party labels: the word as written -> how the party's name is recognised among the organisations,
# and its canonical name when the article's organisations do not already hold it.
@dataclass(frozen=True)
class Party:
    pattern: str  # how its name is recognised among the article's organisations
    name: str  # canonical name when the article's organisations do not hold it
    country: str


_DEMOCRATS = Party(r"\bdemocrat", "Democratic Party", "US")
_REPUBLICANS = Party(r"\brepublican|\bgop\b", "Republican Party", "US")
_LABOUR = Party(r"\blabour\b", "Labour Party", "GB")
_CONSERVATIVES = Party(r"\bconservative|\btor(?:y|ies)\b", "Conservative Party", "GB")
PARTY_LABELS: dict[str, Party] = {
    "democrat": _DEMOCRATS, "democrats": _DEMOCRATS, "democratic": _DEMOCRATS, "dem": _DEMOCRATS,
    "republican": _REPUBLICANS, "republicans": _REPUBLICANS, "gop": _REPUBLICANS,
    "labour": _LABOUR, "tory": _CONSERVATIVES, "tories": _CONSERVATIVES, "conservative": _CONSERVATIVES,
}  # fmt: skip
PARTY_INITIALS = {"D": "democrat", "R": "republican"}
PARTY_ABBREVIATION = re.compile(r"\s*[,(]\s*([DRI])\s*[-–]\s*[A-Z][A-Za-z.]*(?:\s[A-Z][A-Za-z.]*)?\s*[),]?|\s*\(([DRI])\)")

# Titles whose office is a body the article may name: a premier heads the cabinet.
OFFICE_BODIES: list[tuple[re.Pattern[str], re.Pattern[str]]] = [
    (re.compile(r"\b(premier|prime minister)\b", re.I), re.compile(r"\b(cabinet|state council|council of ministers)\b", re.I)),
]

HONORIFIC = re.compile(r"(?:Mr|Mrs|Ms|Dr|Prof)\.?")

# Ministers' and secretaries' portfolios: part of a title ("Agriculture Secretary", "Secretary of State").
PORTFOLIOS = frozenset(
    "state defence defense agriculture health housing education commerce energy labor labour transportation transport "
    "treasury justice interior finance trade environment foreign home culture tourism industry economy".split()
)

# Lower-case nouns that refer back to an organisation ("the commission's", "at the company").
BACK_REFERENCE_HEADS = frozenset(
    "company firm group bank commission ministry department agency bureau administration council committee institute "
    "academy university party union association board authority regulator government centre center school".split()
)


@dataclass
class _Hit:
    """An organisation (or party) named inside a description, as token indices [start, end)."""

    start: int
    end: int
    org: Org | None = None
    party: str | None = None  # a PARTY_LABELS key


@dataclass
class Description:
    """What one passage says about a person."""

    role: str | None = None
    organisation: Org | None = None
    party: str | None = None
    inside_role: bool = False  # the organisation is only named inside the role ("the EU's veterinary committee")


@dataclass
class _Context:
    seg: SegmentedArticle
    orgs: list[Org]
    find_org: OrgLookup
    person_tokens: set[int] = field(default_factory=set)

    @property
    def doc(self) -> Doc:
        return self.seg.doc


def attach_roles(seg: SegmentedArticle, people: Sequence[Person], orgs: list[Org], find_org: OrgLookup) -> None:
    """Set each person's role and organisation from the whole article (see module docstring).

    A party named only by its label ("a Democrat") joins `orgs` when the article's organisations
    do not hold it yet, so that the link always points at one of the record's organisations.
    """
    ctx = _Context(seg, orgs, find_org)
    ctx.person_tokens.update(t.i for t in seg.doc if t.ent_type_ == "PERSON")
    for person in people:
        for start, end in person.mentions:
            span = seg.doc.char_span(start, end, alignment_mode="expand")
            if span is not None:
                ctx.person_tokens.update(range(span.start, span.end))
    for person in people:
        mentions = [(s, e) for s, e in _all_mentions(seg, person) if _is_unambiguous(seg.text[s:e], person, people)]
        descriptions = [d for start, end in mentions for d in describe_mention(ctx, start, end)]
        role, organisation = choose(descriptions, ctx)
        person.role = role
        person.organisation_key = organisation.key if organisation is not None else None


def _all_mentions(seg: SegmentedArticle, person: Person) -> list[tuple[int, int]]:
    """The person's mentions, with the full name and surname wherever the text repeats them.

    The entity recogniser misses some later mentions ("Lee, the Treasury secretary,"); a later
    mention inside an organisation's name ("the Lee Foundation") is not the person.
    """
    words = person.name.split()
    forms = {person.name, words[-1]} if len(words[-1]) >= 3 else {person.name}
    taken = [(e.start, e.end) for e in seg.entities if e.label != "PERSON"]
    found = set(person.mentions)
    for form in forms:
        for m in re.finditer(name_in_text(form), seg.text):
            if not any(s < m.end() and m.start() < e for s, e in [*taken, *found]):
                found.add((m.start(), m.end()))
    return sorted(found)


def _is_unambiguous(mention: str, person: Person, people: Sequence[Person]) -> bool:
    """A full name, or a part of it no other person's name shares ("Clinton" is not, with two Clintons)."""
    own = set(normalise_name(person.name).split())
    words = set(normalise_name(mention).split())
    if own <= words:
        return True
    others = {w for p in people if p is not person for w in normalise_name(p.name).split()}
    return not (words & own & others)


def choose(descriptions: Sequence[Description], ctx: _Context) -> tuple[str | None, Org | None]:
    """Role from the first description with one; organisation from it, else the first that names one."""
    with_role = next((d for d in descriptions if d.role), None)
    role = with_role.role if with_role else None
    organisation = with_role.organisation if with_role and not with_role.inside_role else None
    if organisation is None:
        organisation = next((d.organisation for d in descriptions if d.organisation is not None and not d.inside_role), None)
    if organisation is None and with_role is not None and with_role.organisation is not None:
        organisation = with_role.organisation
    if organisation is None and role:
        organisation = _office_body(role, ctx)
    if organisation is None:
        party = next((d.party for d in descriptions if d.party), None)
        if party is not None:
            organisation = party_organisation(party, ctx)
    if organisation is None:
        organisation = next((d.organisation for d in descriptions if d.organisation is not None), None)
    return role, organisation


def describe_mention(ctx: _Context, start: int, end: int) -> list[Description]:
    """Descriptions at one mention: the title before it, then what follows it."""
    doc = ctx.doc
    span = doc.char_span(start, end, alignment_mode="expand")
    if span is None:
        return []
    first, last = span.start, span.end
    # Title words inside the entity ("President Lee" tagged as one name) belong to the title before it.
    while first < last - 1 and _is_title_word(doc[first]):
        first += 1
    found = [d for d in (_title_before(ctx, first, span.start), *_after(ctx, last)) if d is not None]
    return found


# --------------------------------------------------------------------------- before the name


def _title_before(ctx: _Context, name_start: int, entity_start: int) -> Description | None:
    doc = ctx.doc
    sentence_start = doc[name_start].sent.start
    right = name_start
    # "Director of the Example Centre said. said Ann Lee": a title split from its name by a repeated speech verb.
    j = right - 1
    verbs = 0
    while j >= sentence_start - 3 and j >= 0 and (doc[j].lower_ in SPEECH_VERBS or doc[j].text in (".", ",")):
        verbs += doc[j].lower_ in SPEECH_VERBS
        j -= 1
    if verbs >= 2 and doc[right - 1].lower_ in SPEECH_VERBS:
        right, sentence_start = j + 1, doc[j].sent.start if j >= 0 else 0
    elif right > sentence_start and doc[right - 1].text == "," and entity_start == name_start:
        # "The secretary of the Treasury, Ann Lee, said": a title phrase that opens the sentence.
        left = _walk_back(ctx, right - 1, sentence_start)
        opening = left == sentence_start or doc[left - 1].text in ('"', "“", "'", "‘")
        if not opening or not _has_title(ctx, left, right - 1):
            return None
        return _describe(ctx, left, right - 1)
    # The title next to the name ("heir apparent to President Ann Lee": "President"), else one reached
    # through prepositions when it is a formal title ("Secretary of State") or names a body
    # ("representative to the Example Union's committee").
    left = _walk_back(ctx, right, sentence_start, through_prepositions=False)
    if not _has_title(ctx, left, right):
        wide = _walk_back(ctx, right, sentence_start)
        head = next((i for i in range(wide, right) if _is_title_word(ctx.doc[i])), None)
        if head is not None and (ctx.doc[head].text[0].isupper() or any(h.org for h in _org_hits(ctx, wide, right))):
            left = wide
    if left >= right:
        return None
    description = _describe(ctx, left, right)
    if description.role is None and description.organisation is not None:
        # A body right before the name, with nothing else between: "Acme's Ann Lee", "the Acme economist ...".
        hits = _org_hits(ctx, left, right)
        if not hits or not all(t.tag_ == "POS" or t.text in ("'", "’") for t in doc[hits[-1].end : right]):
            return Description(party=description.party)
    return description


def _walk_back(ctx: _Context, right: int, limit: int, *, through_prepositions: bool = True) -> int:
    """Leftmost token of the noun phrase that ends right before token `right`."""
    doc = ctx.doc
    i = right - 1
    left = right
    while i >= limit and right - i <= 25:
        tok = doc[i]
        if tok.pos_ == "ADP" and not through_prepositions:
            break
        if i in ctx.person_tokens and not (i + 1 < len(doc) and doc[i + 1].tag_ == "POS"):
            break
        if tok.pos_ == "DET":
            left = i
            # "representative to the Example Union's committee": a determiner inside a complement.
            if i - 1 >= limit and doc[i - 1].pos_ == "ADP" and doc[i - 1].lower_ in COMPLEMENT_PREPOSITIONS:
                i -= 1
                continue
            break
        if tok.tag_ == "POS" and i - 1 >= limit and (i - 1) in ctx.person_tokens:
            break  # "Lee's chief of staff": the owner is a person, not a body
        if not _may_be_in_title_phrase(tok):
            break
        left = i
        i -= 1
    # A phrase never starts with a preposition or a conjunction.
    while left < right and doc[left].pos_ in ("ADP", "CCONJ", "PUNCT", "PART") and doc[left].text not in ("(",):
        left += 1
    return left


def _may_be_in_title_phrase(tok: Token) -> bool:
    if tok.pos_ in ("NOUN", "PROPN", "ADJ", "NUM"):
        return True
    if tok.pos_ == "VERB" and tok.tag_ in ("VBG", "VBN") and tok.dep_ in ("amod", "compound", "nmod"):
        return True  # "managing director", "elected representative"
    if tok.lower_ in SPEECH_VERBS or tok.lower_ in CLAUSE_WORDS:
        return False
    if tok.pos_ == "ADP" and tok.lower_ in COMPLEMENT_PREPOSITIONS:
        return True
    if tok.pos_ == "CCONJ" and tok.lower_ in ("and", "&"):
        return True
    if tok.tag_ == "POS" or tok.text in ("-", "–", "(", ")", "'", "’", "/"):
        return True
    return bool(tok.ent_type_ in ("ORG", "GPE", "NORP", "DATE"))


# --------------------------------------------------------------------------- after the name


def _after(ctx: _Context, name_end: int) -> list[Description | None]:
    """Appositives, party abbreviations, relative and copular clauses and affiliations after a name."""
    doc = ctx.doc
    if name_end >= len(doc):
        return []
    text = ctx.seg.text
    at = doc[name_end].idx if name_end < len(doc) else len(text)
    found: list[Description | None] = []
    party = PARTY_ABBREVIATION.match(text, at)
    if party:
        found.append(Description(party=PARTY_INITIALS.get(party.group(1) or party.group(2))))
    sentence_end = doc[name_end - 1].sent.end
    tok = doc[name_end]
    if tok.tag_ == "POS":
        return found
    copula = COPULAS.match(text, at)
    if copula and copula.end() > at:
        first = _token_at(doc, copula.end())
        described = _describe(ctx, first, _clause_end(ctx, first, sentence_end)) if first is not None else None
        # "Lee is a professor at Acme" describes a post; "Lee is the leader we need" is an opinion.
        if described is not None and described.role and (described.organisation is not None or described.party):
            found.append(described)
        return found
    if tok.lower_ in AFFILIATION_PREPOSITIONS and name_end + 1 < sentence_end:
        # "Ann Lee of Acme", "Ann Lee at the Example Institute": a body as the object, and no title.
        hits = _org_hits(ctx, name_end + 1, _clause_end(ctx, name_end + 1, sentence_end))
        first = name_end + 1 + (ctx.doc[name_end + 1].pos_ == "DET")
        if hits and hits[0].start == first and hits[0].org is not None:
            found.append(Description(organisation=hits[0].org))
        return found
    if tok.text in (",", "("):
        found.extend(_appositives(ctx, name_end, sentence_end))
    return found


def _appositives(ctx: _Context, comma: int, sentence_end: int) -> list[Description | None]:
    doc = ctx.doc
    found: list[Description | None] = []
    i = comma
    while i < sentence_end and doc[i].text in (",", "("):
        start = i + 1
        if start >= sentence_end:
            break
        nxt = doc[start]
        if nxt.lower_ == "who":
            verb = doc[start + 1] if start + 1 < sentence_end else None
            if verb is not None and verb.lower_ in HEADS_VERBS:
                end = _clause_end(ctx, start + 2, sentence_end)
                described = _describe(ctx, start + 2, end)
                found.append(Description(role=HEADS_VERBS[verb.lower_], organisation=described.organisation))
                break
            copula = COPULAS.match(ctx.seg.text, doc[start].idx)
            if copula is None:
                break
            first = _token_at(doc, copula.end())
            if first is None:
                break
            end = _clause_end(ctx, first, sentence_end)
            found.append(_describe(ctx, first, end))
            i = end
            continue
        if _starts_clause(ctx, start, sentence_end):
            break
        end = _clause_end(ctx, start, sentence_end)
        if end <= start:
            break
        described = _describe(ctx, start, end)
        if not (described.role or described.party):
            # "Lee, the Example Department, and ...", "to Lee, Park, head of ...": a bare name or body is a
            # list or another person the recogniser missed, and what follows is theirs; an age is skipped.
            if any(doc[k].pos_ == "PROPN" for k in range(start, end)):
                break
        else:
            found.append(described)
        i = end
    return found


def _starts_clause(ctx: _Context, i: int, sentence_end: int) -> bool:
    tok = ctx.doc[i]
    if tok.lower_ in CLAUSE_WORDS or tok.pos_ in ("VERB", "AUX", "PRON", "SCONJ") or tok.is_quote:
        return True
    if tok.lower_ in ("and", "but", "or") or i in ctx.person_tokens:
        return True
    return False


def _clause_end(ctx: _Context, start: int, sentence_end: int) -> int:
    """Token index where the description starting at `start` ends."""
    doc = ctx.doc
    i = start
    while i < sentence_end:
        tok = doc[i]
        if tok.text in (";", ":", "—", "–") or tok.is_quote and tok.tag_ != "POS" or tok.text == ")" or tok.text == "(" and not _is_acronym_bracket(doc, i):
            return i
        if tok.text == "." and i == sentence_end - 1:
            return i
        if tok.lower_ in CLAUSE_WORDS and i > start:
            return i
        if i in ctx.person_tokens and i > start and not _owner(ctx, i):
            return i
        if tok.pos_ in ("VERB", "AUX") and not (tok.tag_ in ("VBG", "VBN") and tok.dep_ in ("amod", "compound", "nmod")) and i > start:
            return i
        if tok.text == ",":
            nxt = doc[i + 1] if i + 1 < sentence_end else None
            # "for a clean, just and fair transition" goes on; a new phrase or a clause ends the description.
            if nxt is None or not (nxt.pos_ in ("ADJ", "ADV") and nxt.lower_ not in CLAUSE_WORDS) or i + 1 in ctx.person_tokens:
                return i
        if tok.text == "(" and _is_acronym_bracket(doc, i):
            i += 3
            continue
        i += 1
    return sentence_end


def _owner(ctx: _Context, i: int) -> bool:
    """Whether the person name at token i is a possessive owner ("Lee's adviser")."""
    while i in ctx.person_tokens and i + 1 < len(ctx.doc):
        i += 1
    return ctx.doc[i].tag_ == "POS"


def _is_acronym_bracket(doc: Doc, i: int) -> bool:
    return i + 2 < len(doc) and doc[i + 2].text == ")" and bool(re.fullmatch(r"[A-Z][A-Za-z&]{1,9}", doc[i + 1].text))


def _token_at(doc: Doc, char: int) -> int | None:
    for tok in doc:
        if tok.idx >= char:
            return tok.i
    return None


# --------------------------------------------------------------------------- one description


def _describe(ctx: _Context, start: int, end: int) -> Description:
    """Role, organisation and party named by the tokens [start, end)."""
    doc = ctx.doc
    # "Lee's former top adviser": what belongs to a person's possessive is not this person's.
    owned = [i + 1 for i in range(start, end - 1) if (i in ctx.person_tokens or _is_title_word(doc[i])) and doc[i + 1].tag_ == "POS"]
    if owned:
        start = owned[-1] + 1
    hits = _org_hits(ctx, start, end)
    in_hit = {i: h for h in hits for i in range(h.start, h.end)}
    head = next((i for i in range(start, end) if i not in in_hit and _is_title_word(doc[i]) and not _is_place(doc[i])), None)
    party = next((h.party for h in hits if h.party), None)
    if head is None:
        org = next((h.org for h in hits if h.org is not None), None)
        return Description(organisation=org, party=party)
    role_tokens, role_end, cut = _role_tokens(ctx, start, head, end, in_hit)
    role = _join(doc, role_tokens) or None
    # The body the complement is about, not its possessive owner ("of Example University's School of Law").
    after = sorted((h for h in hits if h.org is not None and h.start >= role_end), key=lambda h: (_possessive_after(doc, h.end), h.start))
    before = [h for h in hits if h.org is not None and h.end <= head]
    inside = [h for h in hits if h.org is not None and head < h.start < role_end]
    if cut is not None and after:
        return Description(role, after[0].org, party)
    if before:
        return Description(role, before[-1].org, party)
    if inside:
        return Description(role, inside[0].org, party, inside_role=True)
    return Description(role, None, party)


def _role_tokens(ctx: _Context, start: int, head: int, end: int, in_hit: dict[int, _Hit]) -> tuple[list[int], int, int | None]:
    """Token indices of the role, where its complements stop, and the token that stopped them (if any)."""
    doc = ctx.doc
    # Modifiers before the head: "Farm Minister", "former governor" (places, ages and parties dropped).
    left = head
    capitalised = doc[head].text[0].isupper()
    while left - 1 >= start and ((left - 1) in in_hit and in_hit[left - 1].org is not None or _is_modifier(doc[left - 1])):
        # "a defeat President Lee believes": a capitalised title takes no lower-case noun before it.
        if capitalised and doc[left - 1].pos_ in ("NOUN", "PROPN") and doc[left - 1].text[0].islower():
            break
        left -= 1
    kept = [i for i in range(left, head) if not _is_dropped(doc[i]) and i not in in_hit and not _place_compound(doc, i)]
    # The title itself: "vice-president and chief technology officer".
    i = head
    core_end = head + 1
    while i < end and i not in in_hit:
        tok = doc[i]
        if _is_title_word(tok) and not _is_place(tok):
            core_end = i + 1
        elif not (_is_modifier(tok) or tok.text in ("-", "–", "/") or tok.lower_ in ("and", "&")):
            break
        i += 1
    kept += list(range(head, core_end))
    # Complements: "of the department of policy study", "for a clean, just and fair transition";
    # the first that names a body (or a place, or a time) ends the role.
    i = core_end
    cut: int | None = None
    while i < end:
        tok = doc[i]
        if tok.text == "(" and _is_acronym_bracket(doc, i):
            i += 3
            continue
        if tok.pos_ != "ADP" and tok.text != "," or tok.pos_ == "ADP" and tok.lower_ not in COMPLEMENT_PREPOSITIONS:
            break
        j = i + 1
        while j < end and not (doc[j].pos_ == "ADP" and j not in in_hit) and doc[j].text != ",":
            j += 1
        phrase = range(i + 1, j)
        own_org = [k for k in phrase if k in in_hit and not _possessive_after(doc, in_hit[k].end)]
        # "at Example University" names a workplace even when the recogniser missed it: not part of the role.
        named_place = tok.lower_ in ("at", "with") and any(doc[k].pos_ == "PROPN" for k in phrase)
        # "of the Example Conference": a named body, where a portfolio takes no article ("of State").
        named_place = named_place or (
            tok.lower_ in ("of", "for") and len(phrase) > 1 and doc[phrase[0]].lower_ == "the" and doc[phrase[1]].pos_ == "PROPN" and phrase[1] not in in_hit
        )
        # "adviser to Mr. Lee": the person served is not part of the title.
        named_place = named_place or any(k in ctx.person_tokens or HONORIFIC.fullmatch(doc[k].text) for k in phrase)
        if own_org or named_place or any(_is_place(doc[k]) or doc[k].ent_type_ in ("DATE", "TIME") for k in phrase if k not in in_hit):
            cut = i
            break
        kept += [k for k in range(i, j) if not (k in in_hit or (doc[k].tag_ == "POS" and k - 1 in in_hit))]
        i = j
    return kept, i, cut


def _possessive_after(doc: Doc, i: int) -> bool:
    return i < len(doc) and (doc[i].tag_ == "POS" or doc[i].text in ("'", "’"))


def _join(doc: Doc, indices: list[int]) -> str:
    text = "".join(doc[i].text_with_ws for i in sorted(set(indices)))
    text = re.sub(r"\s+", " ", text).strip(" ,;:-–")
    if not re.search(r"\b[A-Z][a-z]{1,3}\.$", text):  # "Gov." keeps its full stop
        text = text.rstrip(".")
    text = re.sub(r"^(?:the|a|an)\s+", "", text, flags=re.I)
    # Nothing dangles at the end: "adviser to", "director of the".
    return re.sub(r"(?:\s+(?:to|of|for|with|at|in|on|from|by|the|a|an|and|&|" + HONORIFIC.pattern + r"))+$", "", text, flags=re.I)


def _is_title_word(tok: Token) -> bool:
    word = tok.lower_.strip(".")
    if tok.ent_type_ in ("NORP", "GPE", "PERSON") or word in PARTY_LABELS:
        return False
    if word in TITLE_WORDS or (len(word) > 5 and word.endswith(OCCUPATION_SUFFIXES) and tok.pos_ == "NOUN"):
        return True
    # "vice-president", "co-founder": the hyphenated word counts by its last part.
    return "-" in word and word.rsplit("-", 1)[1] in TITLE_WORDS


def _is_modifier(tok: Token) -> bool:
    if tok.pos_ in ("ADJ", "NOUN", "PROPN", "NUM") or tok.lower_ in TITLE_MODIFIERS or tok.text in ("-", "–"):
        return True
    return tok.pos_ == "VERB" and tok.tag_ in ("VBG", "VBN") and tok.dep_ in ("amod", "compound", "nmod")


def _is_place(tok: Token) -> bool:
    return tok.ent_type_ in ("GPE", "NORP", "LOC") and tok.lower_ not in PARTY_LABELS


def _place_compound(doc: Doc, i: int) -> bool:
    """'-based' in 'Washington-based': the rest of a place compound goes with the place."""
    return i >= 2 and doc[i - 1].text == "-" and _is_place(doc[i - 2]) or i >= 1 and doc[i].text == "-" and _is_place(doc[i - 1])


def _is_dropped(tok: Token) -> bool:
    """Not part of a role: places, nationalities, ages, party labels."""
    return _is_place(tok) or tok.ent_type_ in ("DATE", "CARDINAL") or tok.lower_ in PARTY_LABELS


def _has_title(ctx: _Context, start: int, end: int) -> bool:
    return any(_is_title_word(ctx.doc[i]) for i in range(start, end))


# --------------------------------------------------------------------------- organisations in a description


def _org_hits(ctx: _Context, start: int, end: int) -> list[_Hit]:
    """Organisations and parties named inside tokens [start, end), longest first where they overlap."""
    doc = ctx.doc
    if start >= end:
        return []
    lo, hi = doc[start].idx, doc[end - 1].idx + len(doc[end - 1].text)
    text = ctx.seg.text
    found: list[tuple[int, int, Org]] = []
    for org in ctx.orgs:
        found += [(s, e, org) for s, e in org.mentions if lo <= s and e <= hi]
        for name in {org.name, *org.aliases}:
            if len(name) >= 2:
                found += [(lo + m.start(), lo + m.end(), org) for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text[lo:hi])]
    for ent in ctx.seg.entities:
        if ent.label == "ORG" and lo <= ent.start and ent.end <= hi:
            org = ctx.find_org(ent.text, ent.start)
            if org is not None and (_names(org, ent.text) or _refers_back(text, ent.start, ent.end)):
                found.append((ent.start, ent.end, org))
    # A one-word short form ("House" for "White House") counts only where it refers back ("the House's");
    # a portfolio is part of a title ("Agriculture Secretary", "Secretary of State"), not a body.
    found = [(s, e, o) for s, e, o in found if (not _bare_short_form(o, text[s:e]) or _refers_back(text, s, e)) and not _portfolio(ctx, s, e)]
    found += _back_references(ctx, lo, hi)
    hits: list[_Hit] = []
    for s, e, org in sorted({(s, e, id(o)): (s, e, o) for s, e, o in found if lo <= s < e <= hi}.values(), key=lambda x: (-(x[1] - x[0]), x[0])):
        span = doc.char_span(s, e, alignment_mode="expand")
        if span is None:
            continue
        first, last = span.start, span.end
        while first < last - 1 and doc[first].pos_ == "DET":
            first += 1
        while last > first + 1 and (doc[last - 1].tag_ == "POS" or doc[last - 1].text in ("'", "’")):
            last -= 1
        if any(h.start < last and first < h.end for h in hits):
            continue
        hits.append(_Hit(first, last, org=org))
    for i in range(start, end):
        word = doc[i].lower_
        # "a supporter of Republican Ann Lee": the label is the next person's.
        if word in PARTY_LABELS and doc[i].text[0].isupper() and not any(h.start <= i < h.end for h in hits) and i + 1 not in ctx.person_tokens:
            hits.append(_Hit(i, i + 1, party=word))
    return sorted(hits, key=lambda h: h.start)


def _names(org: Org, text: str) -> bool:
    """Whether `text` is one of the organisation's names (or an acronym of it)."""
    key = normalise_name(re.sub(r"^(?:the|a|an)\s+|['’]s?$", "", text.strip(), flags=re.I))
    return key in {normalise_name(n) for n in (org.name, *org.aliases)} or bool(re.fullmatch(r"[A-Z&]{2,8}", text.strip()))


def _portfolio(ctx: _Context, start: int, end: int) -> bool:
    span = ctx.doc.char_span(start, end, alignment_mode="expand")
    if span is None or len(span) != 1 or span[0].lower_ not in PORTFOLIOS:
        return False
    i = span.start
    before = ctx.doc[i - 2 : i]
    after = ctx.doc[i + 1 : i + 2]
    return any(_is_title_word(t) for t in after) or (len(before) == 2 and before[1].lower_ == "of" and _is_title_word(before[0]))


def _bare_short_form(org: Org, written: str) -> bool:
    words = written.split()
    return len(words) == 1 and not re.fullmatch(r"[A-Z&]{2,8}", written) and len(org.name.split()) > 1


def _refers_back(text: str, start: int, end: int) -> bool:
    """A short form that refers back ("the Commission's", "the Authority"), not a modifier ("House Speaker")."""
    return bool(re.search(r"\bthe\s+$", text[max(0, start - 4) : start], re.I) or re.match(r"['’]", text[end : end + 1]) or text[start:end].lower().startswith("the "))


def _back_references(ctx: _Context, lo: int, hi: int) -> list[tuple[int, int, Org]]:
    """'the commission's', 'at the company': a lower-case head that names an organisation mentioned before."""
    found = []
    for m in re.finditer(r"\bthe ([a-z]+)\b", ctx.seg.text[lo:hi]):
        head = m.group(1)
        if head not in BACK_REFERENCE_HEADS:
            continue
        at = lo + m.start()
        by_name = [o for o in ctx.orgs if any(re.search(rf"\b{head}\b", n, re.I) for n in (o.name, *o.aliases))]
        by_type = [o for o in ctx.orgs if organisation_type(head) == o.type and o.type not in ("other",)]
        for pool in (by_name, by_type):
            org = _most_recent_before(pool, at)
            if org is not None:
                found.append((lo + m.start(1), lo + m.end(1), org))
                break
    return found


def _most_recent_before(orgs: list[Org], offset: int) -> Org | None:
    mentioned = [(start, i) for i, org in enumerate(orgs) for start, _ in org.mentions if start < offset]
    return orgs[max(mentioned)[1]] if mentioned else None


def _office_body(role: str, ctx: _Context) -> Org | None:
    """The body a title's office belongs to, when the article names it ("Premier" -> the cabinet)."""
    text = ctx.seg.text
    for title, body in OFFICE_BODIES:
        if not title.search(role):
            continue
        for org in ctx.orgs:
            if any(body.search(n) for n in (org.name, *org.aliases)):
                return org
            # "the State Council, the country's cabinet,": the article glosses the body.
            if any(body.match(re.sub(r"^,\s+(?:the\s+)?(?:[\w’']+\s+){0,2}", "", text[e : e + 60])) for _, e in org.mentions):
                return org
    return None


def party_organisation(label: str, ctx: _Context) -> Org | None:
    """The article's organisation for a party label, added to it when the article names none."""
    party = PARTY_LABELS[label]
    for org in ctx.orgs:
        if org.type == "party" and any(re.search(party.pattern, n, re.I) for n in (org.name, *org.aliases)):
            return org
    for org in ctx.orgs:
        if any(re.fullmatch(rf"(?:the\s+)?(?:{party.pattern})\w*(?:\s+party)?", n, re.I) for n in (org.name, *org.aliases)):
            return org
    mentions = [(t.idx, t.idx + len(t.text)) for t in ctx.doc if PARTY_LABELS.get(t.lower_) is party and t.text[0].isupper()]
    written = sorted({ctx.seg.text[s:e] for s, e in mentions} - {party.name})
    org = Org(key=f"O{len(ctx.orgs) + 1}", name=party.name, aliases=written, mentions=mentions, type="party", country=party.country)
    ctx.orgs.append(org)
    return org
