"""Cross-article registries: one id per organisation and per speaker, across articles and runs.

`update_registry(output_dir)` folds the valid records of `records/` into the
registry already stored, then rewrites

- `organisations.jsonl`: one row per organisation entity (schemas.tables.OrganisationRow),
- `speakers.jsonl`: one row per person, or organisation quoted as itself (SpeakerRow),
- `merges.jsonl`: the append-only log of identity decisions (MergeRow),

each atomically, with rows in a fixed order so that the same records and the
same prior state always give byte-identical files.

Incrementally: `.locks/state/registry.json` keeps the registry as its last update
left it (every appearance, with the type, country and person-name flag the rows
do not hold) and the signature of each record file it has seen, so an update
reads only the records new or changed since (`pipeline.write.read_changed_records`),
replaces the appearances of changed and removed records, and copies every
untouched row. Without a state that matches the three files (first run, a crash
between writes, an edit), or with `full=True`, every record is folded into the
registry read back from the files; both ways give the same bytes
(tests/test_incremental.py).

Ids are never renumbered. An id is assigned when an entity is first seen and
kept for ever: the stored registry is read back first (and, should
`organisations.jsonl` be missing or overwritten, rebuilt from the merge log,
which holds every id with the names attached to it), new names are attached to
existing ids, and an id is never reassigned or merged into another one.
Records are processed in (published date, article id) order, so a fresh
registry does not depend on the order files were processed in.

Matching an article's organisation to an entity, strongest rule first (see
`schemas.tables.MergeRule`): the same name up to case, accents, punctuation and
a leading "the"; an acronym the entity already carries; the same name without
legal suffixes; the sub-unit order ("X's Institute of Y" = "Institute of Y, X");
a short form of a company name carrying a legal suffix ("Acme" < "Acme
Robotics Group Corp"); an all-capitals acronym equal to the entity's
initials. The weaker rules need one unambiguous candidate of a compatible
type, and never join two organisations that one article keeps apart. Generic
one-word names ("Commission", "Cabinet") and a sub-unit's bare name used as an
alias ("Institute of Economics" for "Institute of
Economics, Example Academy of Sciences") mean different bodies in
different articles, so they are never matched across articles.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from pipeline.write import (
    RecordCache,
    Signature,
    file_signature,
    load_state,
    read_changed_records,
    read_regular,
    save_state,
    write_text_atomic,
)
from schemas.records import ArticleRecord, normalise_name, organisation_id
from schemas.tables import (
    MergeRow,
    MergeRule,
    OrganisationAppearance,
    OrganisationRow,
    QuoteRef,
    SpeakerAffiliation,
    SpeakerRow,
)

log = logging.getLogger(__name__)

ORGANISATIONS = "organisations.jsonl"
SPEAKERS = "speakers.jsonl"
MERGES = "merges.jsonl"

LEGAL_TOKENS = frozenset(
    "co ltd limited inc incorporated corp corporation plc llc llp group holding holdings company ag sa se nv bv gmbh spa ab asa oyj kk".split()
)
SUBUNIT_HEADS = frozenset("institute center centre school department bureau office college faculty laboratory lab division academy".split())
GENERIC_NAMES = frozenset(
    """commission ministry council committee government administration parliament congress senate court agency bureau
    department office institute university college school company group party union association state cabinet board
    bank centre center authority regulator army police federation foundation""".split()
)
STOPWORDS = frozenset("of and the for in on at de des du la le to".split())
HONORIFIC = re.compile(r"^(?:(?:mr|mrs|ms|miss|dr|prof|professor|sir|dame|president|premier|minister|chairman|ceo|governor|senator|mayor)\.?\s+)+", re.I)
ACRONYM = re.compile(r"^(?=(?:.*[A-Z]){2})[A-Z][A-Z0-9&.\-]{1,11}$")

PRIORITY: dict[str, int] = {"same_name": 0, "acronym": 0, "legal_suffix": 1, "subunit_order": 2, "short_form": 3, "initials": 4}
RULE_REASONS: dict[str, str] = {
    "same_name": "same name up to case, accents, punctuation and a leading 'the'",
    "acronym": "acronym introduced in an article, already an alias of the entry",
    "legal_suffix": "same name without legal suffixes (Co., Ltd, Group, Inc., Corp ...)",
    "subunit_order": "same sub-unit and parent in the other order ('X's Institute of Y' = 'Institute of Y, X')",
    "short_form": "leading words of a company name that carries a legal suffix",
    "initials": "acronym equal to the initials of the entry's name",
    "name_order": "same name tokens in another order",
    "organisation": "the same registry organisation",
}


# --------------------------------------------------------------------------- keys


@functools.lru_cache(maxsize=1 << 18)
def name_key(name: str) -> str:
    """normalise_name, without a leading article, with spelled-out initials joined ('U.S.' -> 'us').

    Memoised: the registry asks for the key of the same names many times (matching, indexing, sorting rows)."""
    key = normalise_name(name)
    key = re.sub(r"^(the|a|an)\s+", "", key)
    tokens = key.split()
    if len(tokens) > 1 and all(len(t) == 1 for t in tokens):
        return "".join(tokens)
    return key


def core_key(key: str) -> str:
    """A name key without trailing legal suffixes ('acme robotics group corp' -> 'acme robotics')."""
    tokens = key.split()
    while len(tokens) > 1 and tokens[-1] in LEGAL_TOKENS:
        tokens.pop()
    return " ".join(tokens)


def subunit_key(name: str) -> str | None:
    """'Example University's Institute of Y' and 'Example University Institute of Y' -> key of 'Institute of Y, Example University'."""
    possessive = re.match(r"^(?:the\s+)?(.+?)['’]s\s+(.+)$", name.strip(), flags=re.I)
    if possessive:
        unit, parent = name_key(possessive.group(2)).split(), name_key(possessive.group(1)).split()
        if len(unit) >= 3 and unit[0] in SUBUNIT_HEADS and unit[1] in ("of", "for"):
            return " ".join(unit + parent)
        return None
    tokens = name_key(name).split()
    for i in range(1, len(tokens) - 2):
        if tokens[i] in SUBUNIT_HEADS and tokens[i + 1] in ("of", "for") and "," not in name:
            return " ".join(tokens[i:] + tokens[:i])
    return None


def is_acronym(name: str) -> bool:
    return bool(ACRONYM.match(name.strip()))


def acronym_letters(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def initials(name: str) -> str | None:
    words = [w for w in name_key(name).split() if w not in STOPWORDS]
    return "".join(w[0] for w in words) if len(words) >= 3 else None


def is_generic(name: str) -> bool:
    return name_key(name) in GENERIC_NAMES


def contextual_names(names: Iterable[str]) -> set[str]:
    """Names that only mean something inside one article: generic words, a sub-unit's bare name."""
    names = list(names)
    out = {n for n in names if is_generic(n) or not name_key(n)}
    for n in names:
        if any(other != n and name_key(other).startswith(name_key(n) + " ") and "," in other and other.split(",")[0].strip() == n.strip() for other in names):
            out.add(n)
    return out


@functools.lru_cache(maxsize=1 << 16)
def person_key(name: str) -> str:
    return name_key(HONORIFIC.sub("", name.strip()))


def quoted_person_words(record: ArticleRecord) -> set[str]:
    """The name words of the persons a record quotes."""
    return {word for quote in record.quotes if quote.speaker.kind == "person" for word in person_key(quote.speaker.name).split()}


def is_person_name(names: Iterable[str], person_words: set[str]) -> bool:
    """An organisation every name of which is made of a quoted person's name words ("Keller" beside
    "Anna Keller") may be that person read as a body: it is kept to its article, never merged."""
    keys = [name_key(n) for n in names]
    return bool(person_words) and all(k and set(k.split()) <= person_words for k in keys)


def _hash_id(prefix: str, text: str) -> str:
    return f"{prefix}_{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


@functools.lru_cache(maxsize=4096)
def _looks_like_country(key: str) -> bool:
    try:
        import pycountry

        pycountry.countries.lookup(key)
        return True
    except (LookupError, ImportError):
        return False


# --------------------------------------------------------------------------- entries


class _Appearance(NamedTuple):
    """One organisation of one record (a tuple: the incremental state stores it as a JSON array)."""

    article_id: str
    published: str | None  # ISO date: sorts as the date does
    record_id: str
    name: str
    mentions: int
    type: str
    country: str | None
    person_like: bool = False  # every name is a quoted person's name in that record (see `is_person_name`)
    key: str = ""  # name_key(name)


class _Named:
    """A registry entry's canonical name plus the aliases it has gathered."""

    name: str
    aliases: list[str]

    @property
    def names(self) -> list[str]:
        return [self.name, *self.aliases]

    def add_name(self, name: str) -> bool:
        if name in self.names:
            return False
        self.aliases.append(name)
        return True


@dataclass
class _Org(_Named):
    id: str
    name: str
    aliases: list[str] = field(default_factory=list)
    type: str = "other"
    country: str | None = None
    first_seen_article: str | None = None
    appearances: list[_Appearance] = field(default_factory=list)

    def articles(self) -> set[str]:
        return {a.article_id for a in self.appearances}


class _SpeakerSeen(NamedTuple):
    """One speaker of one record (a tuple, as `_Appearance`)."""

    article_id: str
    published: str | None  # ISO date
    name: str
    role: str | None
    organisation_id: str | None
    quote_indices: list[int]


@dataclass
class _Speaker(_Named):
    id: str
    name: str
    kind: str
    aliases: list[str] = field(default_factory=list)
    organisation_id: str | None = None
    first_seen_article: str | None = None
    seen: list[_SpeakerSeen] = field(default_factory=list)


@dataclass
class RegistryStats:
    organisations: int = 0
    organisations_new: int = 0
    organisations_in_several_articles: int = 0
    speakers: int = 0
    speakers_new: int = 0
    merges_logged: int = 0
    records: int = 0
    links: Any = field(default=None, repr=False, compare=False)  # for the review page, never in the manifest

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "links"}


# --------------------------------------------------------------------------- loading


def _read_rows(path: Path, model: type[BaseModel]) -> list[BaseModel] | None:
    """Every row of a JSONL file as `model`, [] when missing, None when any row is not of that model."""
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(model.model_validate_json(line))
        except ValidationError as error:
            log.warning(
                "%s line %d is not a %s row (%s): ignoring the file, ids come from %s", path, number, model.__name__, error.errors()[0]["msg"], MERGES
            )
            return None
    return rows


class Registry:
    """The organisation and speaker registries of one output folder, in memory."""

    def __init__(self) -> None:
        self.orgs: dict[str, _Org] = {}
        self.speakers: dict[str, _Speaker] = {}
        self.merges: list[MergeRow] = []
        self._logged: set[tuple[str, str, str]] = set()
        self.new_merges: list[MergeRow] = []
        self.known_record_ids: dict[tuple[str, str], str] = {}  # (article_id, record org id) -> registry id
        self.known_names: dict[tuple[str, str], str] = {}  # (article_id, name key) -> registry id
        self.new_orgs = 0
        self.new_speakers = 0
        self._index: dict[str, dict[str, set[tuple[str, str]]]] = {k: {} for k in ("exact", "core", "sub", "initials", "acronym", "first")}
        self._keys_of: dict[str, list[tuple[str, str, str]]] = {}
        self._speaker_keys: dict[str, dict[str, set[tuple[str, str]]]] = {"exact": {}, "sorted": {}}
        self._speaker_by_org: dict[str, str] = {}  # registry organisation id -> speaker id
        self._person_like: set[str] = set()  # organisation ids only ever seen as a quoted person's name
        # Incremental maintenance (`update(..., incremental=True)`, `from_state`): what this update changed.
        self.touched_orgs: set[str] = set()
        self.touched_speakers: set[str] = set()
        self._stored: dict[str, Any] | None = None  # the state this registry was loaded from
        # article id -> registry organisation id -> record org ids: what `entry.appearances` holds, by article
        # (an index: scanning every appearance of a big entry for each candidate made updates quadratic).
        self._article_orgs: dict[str, dict[str, set[str]]] = {}

    # ---- load

    @classmethod
    def load(cls, output_dir: Path) -> Registry:
        registry = cls()
        merges = _read_rows(output_dir / MERGES, MergeRow) or []
        for row in merges:
            registry._replay(row)
        orgs = _read_rows(output_dir / ORGANISATIONS, OrganisationRow)
        for row in orgs or []:
            entry = registry.orgs.get(row.id) or _Org(id=row.id, name=row.name)
            entry.name, entry.type, entry.country, entry.first_seen_article = row.name, row.type, row.country, row.first_seen_article
            entry.aliases = [a for a in dict.fromkeys([*row.aliases, *entry.aliases]) if a != row.name]
            registry.orgs[row.id] = entry
            for ap in row.appearances:
                registry.known_record_ids[(ap.article_id, ap.record_id)] = row.id
                registry.known_names[(ap.article_id, name_key(ap.name))] = row.id
        for row in _read_rows(output_dir / SPEAKERS, SpeakerRow) or []:
            entry = registry.speakers.get(row.id) or _Speaker(id=row.id, name=row.name, kind=row.kind)
            entry.name, entry.kind, entry.organisation_id, entry.first_seen_article = row.name, row.kind, row.organisation_id, row.first_seen_article
            entry.aliases = [a for a in dict.fromkeys([*row.aliases, *entry.aliases]) if a != row.name]
            registry.speakers[row.id] = entry
        return registry

    def _replay(self, row: MergeRow) -> None:
        self.merges.append(row)
        self._logged.add((row.entity, row.id, row.alias))
        if row.entity == "organisation":
            entry = self.orgs.setdefault(row.id, _Org(id=row.id, name=row.alias, first_seen_article=row.article_id))
            if row.article_id:
                self.known_names.setdefault((row.article_id, name_key(row.alias)), row.id)
        else:
            entry = self.speakers.setdefault(
                row.id, _Speaker(id=row.id, name=row.alias, kind=row.speaker_kind or "person", organisation_id=row.organisation_id, first_seen_article=row.article_id)
            )
        entry.add_name(row.alias)

    def _log(self, entity: str, entry_id: str, alias: str, rule: MergeRule, matched: str | None, reason: str, article_id: str, **extra: str | None) -> None:
        if (entity, entry_id, alias) in self._logged:
            return
        row = MergeRow(entity=entity, id=entry_id, alias=alias, rule=rule, matched=matched, reason=reason, article_id=article_id, **extra)
        self._logged.add((entity, entry_id, alias))
        self.merges.append(row)
        self.new_merges.append(row)

    # ---- organisations

    def _index_entry(self, entry: _Org) -> None:
        """(Re)index one entry's names: key kind -> key -> {(entry id, the entry's name giving that key)}."""
        for kind, key, name in self._keys_of.pop(entry.id, []):
            self._index[kind][key].discard((entry.id, name))
        keys = []
        skip = set(entry.names) if entry.id in self._person_like else contextual_names(entry.names)
        for name in entry.names:
            if name in skip:
                continue
            key = name_key(name)
            core = core_key(key)
            keys += [("exact", key, name), ("core", core, name), ("sub", subunit_key(name), name), ("initials", initials(name), name), ("first", core.split()[0], name)]
            if is_acronym(name):
                keys.append(("acronym", acronym_letters(name), name))
        keys = [k for k in keys if k[1]]
        for kind, key, name in keys:
            self._index[kind].setdefault(key, set()).add((entry.id, name))
        self._keys_of[entry.id] = keys

    def _org_candidates(self, names: list[str], org_type: str, country: str | None, article_id: str, record_id: str) -> list[tuple[int, str, str, str, str]]:
        """(priority, entry id, rule, the entry's name matched, our name) for every rule that matches."""
        index = self._index
        found: list[tuple[int, str, str, str, str]] = []
        for name in names:
            key = name_key(name)
            core = core_key(key)
            for entry_id, matched in index["exact"].get(key, ()):
                entry = self.orgs[entry_id]
                rule = "acronym" if is_acronym(name) and matched != entry.name else "same_name"
                found.append((PRIORITY[rule], entry_id, rule, matched, name))
            for entry_id, matched in index["core"].get(core, ()):
                found.append((PRIORITY["legal_suffix"], entry_id, "legal_suffix", matched, name))
            sub = subunit_key(name)
            for hits in (index["exact"].get(sub or "", ()), index["sub"].get(key, ()), index["sub"].get(sub or "", ())):
                for entry_id, matched in hits:
                    found.append((PRIORITY["subunit_order"], entry_id, "subunit_order", matched, name))
            tokens = core.split()
            if tokens and len(core) >= 2 and not _looks_like_country(core):
                ours_is_company = core != key or org_type == "company"
                for entry_id, matched in index["first"].get(tokens[0], ()):
                    entry = self.orgs[entry_id]
                    their_key = name_key(matched)
                    their = core_key(their_key).split()
                    theirs_is_company = their_key != " ".join(their) or entry.type == "company"
                    if len(their) > len(tokens) and their[: len(tokens)] == tokens and theirs_is_company:
                        found.append((PRIORITY["short_form"], entry_id, "short_form", matched, name))
                    elif len(tokens) > len(their) and tokens[: len(their)] == their and ours_is_company and not _looks_like_country(" ".join(their)):
                        found.append((PRIORITY["short_form"], entry_id, "short_form", matched, name))
            if is_acronym(name) and len(acronym_letters(name)) >= 3:
                for entry_id, matched in index["initials"].get(acronym_letters(name), ()):
                    found.append((PRIORITY["initials"], entry_id, "initials", matched, name))
            own_initials = initials(name)
            if own_initials and len(own_initials) >= 3:
                for entry_id, matched in index["acronym"].get(own_initials, ()):
                    found.append((PRIORITY["initials"], entry_id, "initials", matched, name))

        def acceptable(candidate: tuple[int, str, str, str, str]) -> bool:
            priority, entry_id, rule, _, _ = candidate
            if priority == 0:
                return True
            entry = self.orgs[entry_id]
            if self._article_orgs.get(article_id, {}).get(entry_id, set()) - {record_id}:
                return False  # this article keeps them apart
            if "other" not in (org_type, entry.type) and org_type != entry.type:
                return False
            if rule == "initials" and country and entry.country and country != entry.country:
                return False
            return True

        return sorted(c for c in found if acceptable(c))

    def _new_org_id(self, name: str, article_id: str) -> str:
        candidate = organisation_id(name)
        n = 0
        while candidate in self.orgs:
            n += 1
            candidate = _hash_id("org", f"{normalise_name(name)}\n{article_id}\n{n}")
        return candidate

    def add_organisation(self, record: ArticleRecord, org, person_like: bool = False) -> _Org:  # noqa: ANN001 - schemas.records.Organisation
        """The registry entry of one organisation of one record, created or extended (and logged).

        `person_like`: every name of the organisation is a quoted person's name in this record; it
        gets an entry of its own that no other article's organisation joins.
        """
        article_id = record.article.id
        names = list(dict.fromkeys([org.name, *org.aliases]))
        # Already decided for this article in an earlier update: the same record id, else the same name.
        entry_id = self.known_record_ids.get((article_id, org.id))
        for name in names:
            entry_id = entry_id or self.known_names.get((article_id, name_key(name)))
        entry_id = entry_id if entry_id in self.orgs else None
        candidates: list[tuple[int, str, str, str, str]] = []
        note = ""
        if entry_id is None and person_like:
            note = "; not merged: the name of a person quoted in that article"
        elif entry_id is None:
            usable = [n for n in names if n not in contextual_names(names)]
            candidates = self._org_candidates(usable, org.type, org.country, article_id, org.id)
            if candidates:
                best = candidates[0][0]
                top = [c for c in candidates if c[0] == best]
                ids = sorted({c[1] for c in top})
                if len(ids) == 1 or best == 0:
                    by_name = sorted({c[1] for c in top if c[4] == org.name})
                    entry_id = (by_name or ids)[0]
                else:
                    note = f"; not merged: {top[0][2]} matches {len(ids)} entries (" + ", ".join(f"{self.orgs[i].name!r} {i}" for i in ids) + ")"
        if entry_id is None:
            entry = _Org(id=self._new_org_id(org.name, article_id), name=org.name, type=org.type, country=org.country, first_seen_article=article_id)
            self.orgs[entry.id] = entry
            if person_like:
                self._person_like.add(entry.id)
            self.new_orgs += 1
            self._log("organisation", entry.id, org.name, "new", None, f"first seen in article {article_id}{note}", article_id)
        entry = self.orgs[entry_id] if entry_id is not None else entry
        via = next((c for c in candidates if c[1] == entry.id), None)  # the strongest match, for the reasons below
        for name in names:
            if not entry.add_name(name):
                continue
            own = next((c for c in candidates if c[1] == entry.id and c[4] == name), None)
            if own is not None:
                self._log("organisation", entry.id, name, own[2], own[3], f"{RULE_REASONS[own[2]]}: {name!r} ~ {own[3]!r}", article_id)
            elif via is not None and name != via[4]:
                self._log(
                    "organisation", entry.id, name, "article_alias", via[4],
                    f"same organisation as {via[4]!r} in the record of article {article_id}; {via[4]!r} ~ {via[3]!r} ({RULE_REASONS[via[2]]})", article_id,
                )  # fmt: skip
            else:
                self._log("organisation", entry.id, name, "article_alias", org.name, f"alias of {org.name!r} in the record of article {article_id}", article_id)
        self._index_entry(entry)
        for name in names:
            self.known_names.setdefault((article_id, name_key(name)), entry.id)
        entry.appearances.append(
            _Appearance(article_id, _iso(record.article.published), org.id, org.name, len(org.mentions), org.type, org.country, person_like, name_key(org.name))
        )
        self._article_orgs.setdefault(article_id, {}).setdefault(entry.id, set()).add(org.id)
        self.touched_orgs.add(entry.id)
        return entry

    # ---- speakers

    def _index_speaker(self, entry: _Speaker) -> None:
        if entry.kind == "organisation" and entry.organisation_id:
            known = self._speaker_by_org.get(entry.organisation_id)
            self._speaker_by_org[entry.organisation_id] = min(known, entry.id) if known else entry.id
            return  # found by organisation id
        for name in entry.names:
            key = person_key(name)
            self._speaker_keys["exact"].setdefault(f"{entry.kind}:{key}", set()).add((entry.id, name))
            if len(key.split()) >= 2:
                self._speaker_keys["sorted"].setdefault(f"{entry.kind}:" + " ".join(sorted(key.split())), set()).add((entry.id, name))

    def _speaker_for(self, kind: str, name: str, organisation_id: str | None) -> tuple[_Speaker | None, str | None, str | None]:
        if kind == "organisation" and organisation_id:
            found = self._speaker_by_org.get(organisation_id)
            return (self.speakers[found], "organisation", self.speakers[found].name) if found else (None, None, None)
        key = person_key(name)
        lookups = [("same_name", self._speaker_keys["exact"].get(f"{kind}:{key}", set()))]
        if len(key.split()) >= 2:
            lookups.append(("name_order", self._speaker_keys["sorted"].get(f"{kind}:" + " ".join(sorted(key.split())), set())))
        for rule, hits in lookups:
            ids = sorted({h[0] for h in hits})
            if len(ids) == 1 or (ids and rule == "same_name"):
                matched = min(h[1] for h in hits if h[0] == ids[0])
                return self.speakers[ids[0]], rule, matched
        return None, None, None

    def add_speaker(self, record: ArticleRecord, seen: _SpeakerSeen, kind: str, org_entity: str | None) -> _Speaker:
        article_id = record.article.id
        entry, rule, matched = self._speaker_for(kind, seen.name, org_entity)
        if entry is None:
            base = f"organisation:{org_entity}" if kind == "organisation" and org_entity else f"{kind}:{person_key(seen.name)}"
            entry_id, n = _hash_id("spk", base), 0
            while entry_id in self.speakers:
                n += 1
                entry_id = _hash_id("spk", f"{base}\n{article_id}\n{n}")
            bare = HONORIFIC.sub("", seen.name).strip() if kind == "person" else seen.name
            entry = _Speaker(id=entry_id, name=bare or seen.name, kind=kind, organisation_id=org_entity if kind == "organisation" else None, first_seen_article=article_id)
            self.speakers[entry_id] = entry
            self.new_speakers += 1
            self._log("speaker", entry.id, entry.name, "new", None, f"first seen in article {article_id}", article_id, speaker_kind=kind, organisation_id=entry.organisation_id)
            if entry.add_name(seen.name):
                self._log("speaker", entry.id, seen.name, "same_name", entry.name, f"the same name with a title: {seen.name!r}", article_id, speaker_kind=kind)
        elif entry.add_name(seen.name):
            self._log(
                "speaker", entry.id, seen.name, rule or "same_name", matched, f"{RULE_REASONS.get(rule or 'same_name', RULE_REASONS['same_name'])}: {seen.name!r} ~ {matched!r}",
                article_id, speaker_kind=kind, organisation_id=entry.organisation_id,
            )  # fmt: skip
        self._index_speaker(entry)
        entry.seen.append(seen)
        self.touched_speakers.add(entry.id)
        return entry

    # ---- whole update

    def update(self, records: Iterable[ArticleRecord], *, incremental: bool = False, drop: Iterable[str] = ()) -> int:
        """Fold `records` in. Full (default): every current record is given, all appearances are recomputed.
        `incremental`: the registry holds the appearances of its last update (`from_state`); those of the
        articles in `drop` (removed or changed records) and of `records` are replaced, the rest kept."""
        records = sorted(records, key=lambda r: (r.article.published is None, r.article.published or date.min, r.article.id))
        person_like = {
            (record.article.id, org.id)
            for record in records
            if (words := quoted_person_words(record))
            for org in record.organisations
            if is_person_name([org.name, *org.aliases], words)
        }
        gone = set(drop) | {record.article.id for record in records}
        for entry in self.orgs.values():
            kept = [a for a in entry.appearances if a.article_id not in gone] if incremental else []
            if len(kept) != len(entry.appearances):
                self.touched_orgs.add(entry.id)
            entry.appearances = kept
            person_like.update((a.article_id, a.record_id) for a in kept if a.person_like)
        # Appearances kept are of other articles than those processed now: none of them can keep two apart.
        self._article_orgs = {}
        # Entries stored by earlier runs that only ever held such names stay out of the index.
        seen_as: dict[str, set[bool]] = {}
        for (article_id, record_id), entry_id in self.known_record_ids.items():
            seen_as.setdefault(entry_id, set()).add((article_id, record_id) in person_like)
        self._person_like = {entry_id for entry_id, flags in seen_as.items() if flags == {True}}
        for entry in self.orgs.values():
            self._index_entry(entry)
        for entry in self.speakers.values():
            kept = [s for s in entry.seen if s.article_id not in gone] if incremental else []
            if len(kept) != len(entry.seen):
                self.touched_speakers.add(entry.id)
            entry.seen = kept
            self._index_speaker(entry)
        for record in records:
            local: dict[str, _Org] = {}
            for org in record.organisations:
                local[org.id] = self.add_organisation(record, org, (record.article.id, org.id) in person_like)
            groups: dict[tuple[str, str], tuple[str, str | None, list]] = {}
            for i, quote in enumerate(record.quotes):
                speaker = quote.speaker
                org_entity = local[speaker.organisation_id].id if speaker.organisation_id in local else None
                if speaker.kind == "organisation" and org_entity is None:
                    hits = {e for e, _ in self._index["exact"].get(name_key(speaker.name), ())}
                    org_entity = min(hits) if hits else None
                identity = (speaker.kind, org_entity if speaker.kind == "organisation" and org_entity else person_key(speaker.name))
                groups.setdefault(identity, (speaker.name, org_entity, []))[2].append((i, quote))
            for (kind, _), (name, org_entity, quotes) in groups.items():
                first = quotes[0][1].speaker
                role = next((q.speaker.role for _, q in quotes if q.speaker.role), None)
                affiliated = next((local[q.speaker.organisation_id].id for _, q in quotes if q.speaker.organisation_id in local), None)
                seen = _SpeakerSeen(record.article.id, _iso(record.article.published), first.name, role, affiliated, [i for i, _ in quotes])
                self.add_speaker(record, seen, kind, org_entity)
        # Refining is idempotent: an entry whose appearances did not change keeps what its last update gave.
        self._refine(orgs=self.touched_orgs if incremental else None, speakers=self.touched_speakers if incremental else None)
        return len(records)

    def _refine(self, orgs: set[str] | None = None, speakers: set[str] | None = None) -> None:
        """Canonical name, type and country from the articles, keeping stored values on ties (only `orgs`/`speakers` if given)."""
        for entry in self.orgs.values():
            if not entry.appearances or (orgs is not None and entry.id not in orgs):
                continue
            names = Counter(a.name for a in entry.appearances)
            best = max(names.items(), key=lambda kv: (kv[1], len(kv[0]), kv[0]))
            if best[0] != entry.name and best[1] > names.get(entry.name, 0):
                old = entry.name
                entry.aliases = [a for a in entry.aliases if a != best[0]]
                entry.name = best[0]
                entry.add_name(old)
            types = Counter(a.type for a in entry.appearances)
            entry.type = max(types.items(), key=lambda kv: (kv[1], kv[0] != "other", kv[0] == entry.type, kv[0]))[0]
            countries = Counter(a.country for a in entry.appearances if a.country)
            if countries:
                entry.country = max(countries.items(), key=lambda kv: (kv[1], kv[0] == entry.country, kv[0]))[0]
            elif entry.type == "international":
                entry.country = None
        for speaker in self.speakers.values():
            if not speaker.seen or (speakers is not None and speaker.id not in speakers):
                continue
            names = Counter(s.name for s in speaker.seen)
            best = max(names.items(), key=lambda kv: (kv[1], len(kv[0]), kv[0]))
            if best[0] != speaker.name and best[1] > names.get(speaker.name, 0):
                old = speaker.name
                speaker.aliases = [a for a in speaker.aliases if a != best[0]]
                speaker.name = best[0]
                speaker.add_name(old)

    # ---- rows

    def organisation_row(self, entry: _Org) -> OrganisationRow:
        appearances = sorted(entry.appearances, key=_appearance_order)
        return OrganisationRow(
            id=entry.id,
            name=entry.name,
            aliases=sorted(set(entry.aliases) - {entry.name}, key=lambda a: (name_key(a), a)),
            type=entry.type,
            country=entry.country,
            article_ids=list(dict.fromkeys(a.article_id for a in appearances)),
            appearances=[OrganisationAppearance(article_id=a.article_id, published=a.published, record_id=a.record_id, name=a.name, mentions=a.mentions) for a in appearances],
            first_seen_article=entry.first_seen_article,
        )

    def organisation_rows(self) -> list[OrganisationRow]:
        return sorted((self.organisation_row(entry) for entry in self.orgs.values()), key=lambda r: (name_key(r.name), r.id))

    def speaker_row(self, entry: _Speaker) -> SpeakerRow:
        seen = sorted(entry.seen, key=_seen_order)
        affiliations = [
            SpeakerAffiliation(
                article_id=s.article_id, published=s.published, role=s.role, organisation_id=s.organisation_id,
                organisation_name=self.orgs[s.organisation_id].name if s.organisation_id in self.orgs else None,
            )
            for s in seen
        ]  # fmt: skip
        name, aliases = entry.name, set(entry.aliases)
        if entry.kind == "organisation" and entry.organisation_id in self.orgs:  # an organisation speaks under its registry name
            name = self.orgs[entry.organisation_id].name
            aliases.add(entry.name)
        return SpeakerRow(
            id=entry.id,
            name=name,
            kind=entry.kind,
            aliases=sorted(aliases - {name}, key=lambda a: (name_key(a), a)),
            organisation_id=entry.organisation_id,
            organisation_ids=list(dict.fromkeys(s.organisation_id for s in seen if s.organisation_id)),
            affiliations=affiliations,
            article_ids=list(dict.fromkeys(s.article_id for s in seen)),
            quotes=[QuoteRef(article_id=s.article_id, quote_index=i) for s in seen for i in s.quote_indices],
            first_seen_article=entry.first_seen_article,
        )

    def speaker_rows(self) -> list[SpeakerRow]:
        return sorted((self.speaker_row(entry) for entry in self.speakers.values()), key=lambda r: (name_key(r.name), r.id))

    def write(self, output_dir: Path) -> None:
        """Write every row (a full update); see `write_incremental` for an update from a stored state."""
        # The log first: should the process die between the writes, ids are already recorded.
        write_text_atomic(output_dir / MERGES, _jsonl(self.merges))
        org_rows, speaker_rows = self.organisation_rows(), self.speaker_rows()
        write_text_atomic(output_dir / ORGANISATIONS, _jsonl(org_rows))
        write_text_atomic(output_dir / SPEAKERS, _jsonl(speaker_rows))
        self._normalise(org_rows, speaker_rows)
        self._state_orgs = [self._org_state(self.orgs[r.id]) for r in org_rows]
        self._state_speakers = [self._speaker_state(self.speakers[r.id]) for r in speaker_rows]
        self._state_known = _known_from_merges(self.merges)
        self._state_logged = [list(k) for k in dict.fromkeys((m.entity, m.id, m.alias) for m in self.merges)]

    # ---- incremental maintenance: the state of `.locks/state/registry.json`
    #
    # The state is what `Registry.load` would read back from the three files just written (ids,
    # names and aliases as in the rows, the merge log's decisions), plus what the files do not
    # hold: every appearance's type, country and person-name flag, every speaker's name as given
    # in each article. So an incremental update (state + changed records) and a full one (files
    # + every record) start from the same registry and give the same bytes.

    def _normalise(self, org_rows: Iterable[OrganisationRow], speaker_rows: Iterable[SpeakerRow]) -> None:
        """Names and aliases as a reload of the written rows would give them."""
        for row in org_rows:
            entry = self.orgs[row.id]
            entry.name, entry.aliases = row.name, list(row.aliases)
        for row in speaker_rows:
            entry = self.speakers[row.id]
            entry.name, entry.aliases = row.name, list(row.aliases)

    @staticmethod
    def _org_state(entry: _Org) -> list[Any]:
        aps = sorted(entry.appearances, key=_appearance_order)
        return [entry.id, entry.name, entry.aliases, entry.type, entry.country, entry.first_seen_article, aps, name_key(entry.name)]

    @staticmethod
    def _speaker_state(entry: _Speaker) -> list[Any]:
        seen = sorted(entry.seen, key=_seen_order)
        return [entry.id, entry.name, entry.kind, entry.aliases, entry.organisation_id, entry.first_seen_article, seen, name_key(entry.name)]

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Registry:
        """The registry as its last update left it, appearances included (see the comment above)."""
        registry = cls()
        registry._stored = state
        for raw in state["orgs"]:
            entry_id, name, aliases, org_type, country, first, aps, _ = raw
            entry = _Org(id=entry_id, name=name, aliases=list(aliases), type=org_type, country=country, first_seen_article=first)
            entry.appearances = list(map(_Appearance._make, aps))
            registry.orgs[entry_id] = entry
        for article_id, key, entry_id in state["known"]:
            registry.known_names.setdefault((article_id, key), entry_id)
        for entry in registry.orgs.values():
            for ap in entry.appearances:
                registry.known_record_ids[(ap.article_id, ap.record_id)] = entry.id
                registry.known_names[(ap.article_id, ap.key)] = entry.id
        for raw in state["speakers"]:
            entry_id, name, kind, aliases, organisation_id_, first, seen, _ = raw
            entry = _Speaker(id=entry_id, name=name, kind=kind, aliases=list(aliases), organisation_id=organisation_id_, first_seen_article=first)
            entry.seen = list(map(_SpeakerSeen._make, seen))
            registry.speakers[entry_id] = entry
        registry._logged = {tuple(k) for k in state["logged"]}  # type: ignore[misc]
        return registry

    def write_incremental(self, output_dir: Path) -> None:
        """Write the files after an incremental update: rows of untouched entries are copied, not rebuilt."""
        stored = self._stored
        assert stored is not None, "write_incremental needs a registry loaded with from_state"
        # Everything is read and checked before anything is written: a mismatch falls back to a full update.
        merges = read_regular(output_dir / MERGES).decode("utf-8") + _jsonl(self.new_merges)
        renamed = {e for e in self.touched_orgs if e not in self._stored_names or self.orgs[e].name != self._stored_names[e]}
        touched_speakers = set(self.touched_speakers)
        if renamed:  # a speaker row shows the names of its organisations
            for entry in self.speakers.values():
                if entry.organisation_id in renamed or any(s.organisation_id in renamed for s in entry.seen):
                    touched_speakers.add(entry.id)
        old_org_lines = _lines(read_regular(output_dir / ORGANISATIONS).decode("utf-8"))
        old_speaker_lines = _lines(read_regular(output_dir / SPEAKERS).decode("utf-8"))
        orgs = self._merge_rows(
            old_org_lines, stored["orgs"], self.touched_orgs, lambda i: self.organisation_row(self.orgs[i]), self._org_state, self.orgs
        )  # fmt: skip
        speakers = self._merge_rows(
            old_speaker_lines, stored["speakers"], touched_speakers, lambda i: self.speaker_row(self.speakers[i]), self._speaker_state, self.speakers
        )  # fmt: skip
        write_text_atomic(output_dir / MERGES, merges)  # the log first, as in `write`
        write_text_atomic(output_dir / ORGANISATIONS, "".join(line + "\n" for _, line, _ in orgs))
        write_text_atomic(output_dir / SPEAKERS, "".join(line + "\n" for _, line, _ in speakers))
        self._state_orgs = [st for _, _, st in orgs]
        self._state_speakers = [st for _, _, st in speakers]
        self._state_known = stored["known"] + _known_from_merges(self.new_merges)
        self._state_logged = stored["logged"] + [[m.entity, m.id, m.alias] for m in self.new_merges]

    def _merge_rows(self, old_lines: list[str], old_states: list[list[Any]], touched: set[str], make_row, make_state, entries: dict) -> list[tuple[tuple[str, str], str, list[Any]]]:  # noqa: ANN001
        """(sort key, line, state) of every entry in file order: untouched entries keep their line and state."""
        if len(old_lines) != len(old_states):
            raise ValueError("registry file and state disagree")
        out = []
        for line, state in zip(old_lines, old_states, strict=True):
            if state[0] not in touched:
                out.append(((state[-1], state[0]), line, state))
        for entry_id in touched:
            row = make_row(entry_id)
            self._normalise([row], []) if isinstance(row, OrganisationRow) else self._normalise([], [row])
            line = json.dumps(row.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)
            out.append(((name_key(row.name), row.id), line, make_state(entries[entry_id])))
        return sorted(out, key=lambda item: item[0])

    @property
    def _stored_names(self) -> dict[str, str]:
        if not hasattr(self, "_stored_names_cache"):
            self._stored_names_cache = {raw[0]: raw[1] for raw in (self._stored or {}).get("orgs", [])}
        return self._stored_names_cache

    def state(self, records: dict[str, list[Any]], output_dir: Path) -> dict[str, Any]:
        """The state to save after `write` or `write_incremental`: records as [signature, article id]."""
        return {
            "records": records, "orgs": self._state_orgs, "speakers": self._state_speakers, "known": self._state_known, "logged": self._state_logged,
            "files": {name: file_signature(output_dir, name) for name in (MERGES, ORGANISATIONS, SPEAKERS)},
        }  # fmt: skip

    def links(self, article_ids: set[str]) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, int], dict[str, Any]]]:
        """For the review page: (article id, record org id) -> registry organisation; (article id, quote index) -> speaker."""
        orgs: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in self.orgs.values():
            hits = [a for a in entry.appearances if a.article_id in article_ids]
            if hits:
                row = {"id": entry.id, "name": entry.name, "article_ids": list(dict.fromkeys(a.article_id for a in entry.appearances))}
                orgs.update({(a.article_id, a.record_id): row for a in hits})
        speakers: dict[tuple[str, int], dict[str, Any]] = {}
        for speaker in self.speakers.values():
            for s in speaker.seen:
                if s.article_id in article_ids:
                    speakers.update({(s.article_id, i): {"id": speaker.id, "name": speaker.name} for i in s.quote_indices})
        return orgs, speakers


def _appearance_order(a: _Appearance) -> tuple:
    return (a.published is None, a.published or "", a.article_id, a.record_id)


def _seen_order(s: _SpeakerSeen) -> tuple:
    return (s.published is None, s.published or "", s.article_id)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _jsonl(rows: Iterable[BaseModel]) -> str:
    return "".join(json.dumps(r.model_dump(mode="json"), ensure_ascii=False, sort_keys=True) + "\n" for r in rows)


def _lines(text: str) -> list[str]:
    """The rows of a JSONL file as written (split at newlines only: names may hold other line breaks)."""
    return [line for line in text.split("\n") if line]


def _known_from_merges(merges: Iterable[MergeRow]) -> list[list[str]]:
    """What `Registry._replay` learns from merge rows: (article id, name key) -> organisation id, first decision first."""
    return [[m.article_id, name_key(m.alias), m.id] for m in merges if m.entity == "organisation" and m.article_id]


REGISTRY_STATE = "registry.json"


def _valid_state(output_dir: Path) -> dict[str, Any] | None:
    state = load_state(output_dir, REGISTRY_STATE)
    if state is None:
        return None
    if not all(isinstance(state.get(k), list) for k in ("orgs", "speakers", "known", "logged")) or not isinstance(state.get("records"), dict):
        return None
    if state.get("files") != {name: file_signature(output_dir, name) for name in (MERGES, ORGANISATIONS, SPEAKERS)}:
        log.info("The registry files are not the ones its incremental state describes: rebuilding the registry from every record")
        return None
    return state


def update_registry(
    output_dir: Path, *, full: bool = False, cache: RecordCache | None = None, links_for: set[str] | None = None, scan: dict[str, Signature] | None = None
) -> RegistryStats:
    """Bring the registries up to date with `output_dir/records/` and rewrite them.

    Incremental (default): with a valid state in `.locks/state/registry.json`, only the records
    new or changed since the last update are read; the appearances of changed and removed
    records are replaced, every other row is copied. Otherwise (`full=True`, no state, or
    registry files that are not the ones the state describes: a crash between writes, an
    edit) every valid record is folded into the registry read back from the files, as before.
    Both give the same bytes. Idempotent: a second call with the same records changes no byte.
    `links_for`: article ids whose registry links the review page needs (`RegistryStats.links`);
    `scan`: `records/` as `pipeline.write.scan_records` just saw it, under the same output lock.
    """
    output_dir = Path(output_dir)
    state = None if full else _valid_state(output_dir)
    registry = None
    if state is not None:
        try:
            known: dict[str, list[Any]] = state["records"]
            scan, read = read_changed_records(output_dir, {name: entry[0] for name, entry in known.items()}, cache, scan)
            drop = {known[name][1] for name in known if known[name][1] and (name not in scan or name in read)}
            registry = Registry.from_state(state)
            registry.update([r for r in read.values() if r is not None], incremental=True, drop=drop)
            registry.write_incremental(output_dir)
        except (ValueError, OSError, KeyError, TypeError, IndexError) as error:
            log.warning("Incremental registry update failed (%s): rebuilding it from every record", error)
            registry = None
        else:
            records = {
                name: ([sig, read[name].article.id if read[name] is not None else None] if name in read else known[name]) for name, sig in scan.items()
            }  # fmt: skip
    if registry is None:
        scan, read = read_changed_records(output_dir, {}, cache, scan)
        registry = Registry.load(output_dir)
        registry.update([r for r in read.values() if r is not None])
        registry.write(output_dir)
        records = {name: [sig, read[name].article.id if read.get(name) is not None else None] for name, sig in scan.items()}
    save_state(output_dir, REGISTRY_STATE, registry.state(records, output_dir))
    orgs = registry._state_orgs
    stats = RegistryStats(
        organisations=len(orgs),
        organisations_new=registry.new_orgs,
        organisations_in_several_articles=sum(len({a[0] for a in st[6]}) > 1 for st in orgs),
        speakers=len(registry.speakers),
        speakers_new=registry.new_speakers,
        merges_logged=len(registry.new_merges),
        records=sum(1 for value in records.values() if value[1]),
    )
    if links_for is not None:
        stats.links = registry.links(links_for)
    log.info(
        "Registry: %d organisations (%d new, %d in several articles), %d speakers (%d new), %d merges logged",
        stats.organisations, stats.organisations_new, stats.organisations_in_several_articles, stats.speakers, stats.speakers_new, stats.merges_logged,
    )  # fmt: skip
    return stats
