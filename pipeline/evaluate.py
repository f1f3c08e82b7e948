"""Evaluation stage: score extracted article records against gold annotations.

Records are `ArticleRecord` JSON dicts (schemas/records.py); gold files are the
JSON annotations in an eval directory (e.g. ../shared/eval-dev/gold), one per
article, keyed by their `source_file`. The rules below follow the README's
"Known ambiguities": span boundaries and quote types are judged leniently.

Quotes
    Text normalisation: curly, low-9 and angle quote marks and the '' / ``
    pairs become ", curly apostrophes and backticks become ', whitespace runs
    collapse to one space, and the text is lowercased. Tokens are runs of word
    characters, keeping inner apostrophes ("don't", "china's"); quote marks and
    other punctuation are not tokens. Comparisons use token *sets*.

    A predicted and a gold quote match on text when
      * Jaccard |P & G| / |P | G| >= 0.5, or
      * containment |P & G| / min(|P|, |G|) >= 0.8 and the shorter of the two
        has at least 3 tokens.
    Quote type (direct/indirect) is not compared. Pairing is one-to-one and
    greedy: candidate pairs are taken best first by (Jaccard, containment,
    speaker correct), ties in input order.

    The speaker is correct when
      * the names are equal after `normalise_name` (case, accents, punctuation,
        whitespace), or
      * the gold speaker is an organisation (its name or an alias equals the
        gold speaker): the predicted name equals the gold speaker or any name or
        alias of that organisation (legal suffixes ignored, as for
        organisations), or
      * the gold speaker is a person and the predicted name refers to the
        surname: the gold name's last token is a token of the predicted name
        ("Jones" for "John Lloyd Jones"), or the predicted name's last token is
        the gold name's first token, for family-name-first names ("Mr. Pan" for
        "Pan Helin").
      A gold speaker that is a whole annotated source mention (converted
      PolNeAR: "Jay Smith, the club's president") is also compared by its
      name part, cut before the first comma, bracket, dash, "who" or "which"
      (`gold_speaker_head`).
    Quote-with-speaker runs the same greedy pairing over the pairs that match
    on text and have the correct speaker.

    Precision leniency: a predicted quote that matches no gold quote on text and
    whose speaker name is empty is left out of the predicted count of both quote
    metrics.

    Statements: the same quote-text figure over the record's `quotes` and its
    `unnamed_source_quotes` together (each unnamed-source quote counts, its
    printed source standing in for a speaker name, so none is left out by the
    leniency above). It is the figure for gold that, like PolNeAR, annotates
    attributions to unnamed sources ("officials said", "polls show"); gold made
    with this project's guidelines lists no such quotes, so there the quote-text
    figure is the one that counts.

Organisations
    A predicted and a gold organisation match when any of the predicted
    {name, aliases} equals any of the gold {name, aliases} after `normalise_name`,
    also comparing forms with trailing legal suffixes (Co, Ltd, Inc, Corp,
    Group, plc, LLC) removed. One-to-one, greedy, preferring equal canonical
    names and then more shared names. Gold entries whose names are equal after
    `normalise_name` count once (converted CoNLL++ lists "ORIOLES" and "Orioles"
    as two entries; a record names one organisation).

Policy areas
    P/R/F1 on the sets of CAP codes; main topic correct when the first predicted
    code equals the first gold code.

Corpus conventions
    A gold file with `"quotes_only": true` annotates attributions only (converted
    PolNeAR): it adds nothing to the organisation, CAP and main-topic figures.
    A gold quote with `"speaker": null` (a source that is not a proper name)
    counts for the quote-text figures only: it is left out of the gold count of
    quote-with-speaker, and a prediction paired with it on text is left out of
    that metric's predicted count.

Speakers' roles and organisations
    Gold files with a `speakers` list ({name, kind, role, organisation}) are
    scored for each gold person speaker that has a quote matched with the
    correct speaker; the first such quote (in gold order) is the one judged.
    A predicted speaker typed as an organisation has neither right.
      * Role: tokens as for quotes ("vice-president" is two tokens). Correct
        when the predicted role holds the whole gold role as a contiguous run
        of tokens, or is a contiguous run of more than half of the gold role's
        tokens; a null gold role is matched only by a null (or empty) role.
      * Organisation: the predicted quote's `speaker.organisation_id` looked up
        in the record's `organisations`; correct when any of its name and
        aliases equals the gold organisation's name or one of the aliases of
        the gold `organisations` entry of that name (keys as for organisations),
        or when both are null (an id the record does not list counts as null).
    Person role accuracy and person organisation accuracy are the correct
    shares of the scored persons; totals sum the counts over articles.

Exact spans
    Share of predicted quotes whose `span` slices exactly their `text` out of
    `article.text`.

Cost
    Seconds and prompt/completion tokens per article from `provenance`; totals
    give median and max over articles with a record.

Conventions: precision = matched / predicted, recall = matched / gold, each 0.0
when its denominator is 0, except that an article with neither gold nor
predictions scores 1.0 on all three; F1 is 0.0 when precision + recall is 0.
Totals are micro-averaged: the counts are summed over articles first. A gold
article without a record scores as all missed.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, astuple, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from schemas.records import ArticleRecord, normalise_name, organisation_id

JACCARD_THRESHOLD = 0.5
CONTAINMENT_THRESHOLD = 0.8
CONTAINMENT_MIN_TOKENS = 3
LEGAL_SUFFIXES = frozenset({"co", "ltd", "inc", "corp", "group", "plc", "llc"})

_QUOTE_MARK_PAIRS = ("''", "``")
_CHAR_FOLDS = str.maketrans(
    {
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033", '"'),
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032`", "'"),
    }
)
_TOKEN = re.compile(r"\w+(?:'\w+)*")
_HEADER_BLOCK = re.compile(r"(?:[A-Za-z][\w-]*:(?:[ \t][^\n]*)?\n)+[ \t\r]*\n")
_HEADER_LINE = re.compile(r"([A-Za-z][\w-]*):(.*)")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Counts:
    """Matched / predicted / gold counts of one category; sums micro-average."""

    matched: int = 0
    predicted: int = 0
    gold: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.matched + other.matched, self.predicted + other.predicted, self.gold + other.gold)

    @property
    def precision(self) -> float:
        if not self.predicted:
            return 1.0 if not self.gold else 0.0
        return self.matched / self.predicted

    @property
    def recall(self) -> float:
        if not self.gold:
            return 1.0 if not self.predicted else 0.0
        return self.matched / self.gold

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def to_json(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "predicted": self.predicted,
            "gold": self.gold,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass(frozen=True)
class WrongSpeaker:
    """A quote whose text matched a gold quote but whose speaker did not."""

    text: str
    predicted: str
    gold: str


@dataclass(frozen=True)
class WrongPersonLink:
    """A person speaker whose predicted role or organisation differs from the gold."""

    speaker: str
    predicted_role: str | None
    gold_role: str | None
    predicted_organisation: str | None
    gold_organisation: str | None
    role_correct: bool
    organisation_correct: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PersonLinks:
    """Person speakers of one article (or summed): gold persons, scored ones, and how many are right."""

    gold: int = 0
    scored: int = 0
    role_correct: int = 0
    organisation_correct: int = 0

    def __add__(self, other: PersonLinks) -> PersonLinks:
        return PersonLinks(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def role_accuracy(self) -> float:
        return _share(self.role_correct, self.scored)

    @property
    def organisation_accuracy(self) -> float:
        return _share(self.organisation_correct, self.scored)

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "role_accuracy": self.role_accuracy,
            "organisation_accuracy": self.organisation_accuracy,
        }


@dataclass(frozen=True)
class ArticleScores:
    source_file: str
    has_record: bool
    quote_text: Counts
    quote_speaker: Counts
    organisations: Counts
    policy_areas: Counts
    main_topic_correct: bool
    quotes_predicted: int
    quotes_with_exact_span: int
    seconds: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    missed_quotes: list[str] = field(default_factory=list)
    spurious_quotes: list[str] = field(default_factory=list)
    wrong_speakers: list[WrongSpeaker] = field(default_factory=list)
    missed_organisations: list[str] = field(default_factory=list)
    spurious_organisations: list[str] = field(default_factory=list)
    organisation_type_correct: int = 0
    organisation_country_correct: int = 0
    quotes_only: bool = False
    """The gold annotates quotes only (`"quotes_only": true`): no organisation, CAP or main-topic figures."""
    person_links: PersonLinks = PersonLinks()
    """Roles and organisations of the gold person speakers (gold files with a `speakers` list)."""
    wrong_person_links: list[WrongPersonLink] = field(default_factory=list)
    statement_text: Counts = Counts()
    """Quote-text counts over `quotes` and `unnamed_source_quotes` together (see "Statements")."""

    @property
    def exact_span_share(self) -> float:
        return _share(self.quotes_with_exact_span, self.quotes_predicted)

    def to_json(self) -> dict[str, Any]:
        return {
            "source_file": self.source_file,
            "has_record": self.has_record,
            "quote_text": self.quote_text.to_json(),
            "quote_speaker": self.quote_speaker.to_json(),
            "statement_text": self.statement_text.to_json(),
            "organisations": self.organisations.to_json(),
            "policy_areas": self.policy_areas.to_json(),
            "main_topic_correct": None if self.quotes_only else self.main_topic_correct,
            "quotes_only": self.quotes_only,
            "exact_span_share": self.exact_span_share,
            "quotes_predicted": self.quotes_predicted,
            "quotes_with_exact_span": self.quotes_with_exact_span,
            "organisation_type_correct": self.organisation_type_correct,
            "organisation_country_correct": self.organisation_country_correct,
            "seconds": self.seconds,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "person_links": self.person_links.to_json(),
            "errors": {
                "missed_quotes": list(self.missed_quotes),
                "spurious_quotes": list(self.spurious_quotes),
                "wrong_speakers": [
                    {"text": w.text, "predicted": w.predicted, "gold": w.gold} for w in self.wrong_speakers
                ],
                "missed_organisations": list(self.missed_organisations),
                "spurious_organisations": list(self.spurious_organisations),
                "wrong_person_links": [w.to_json() for w in self.wrong_person_links],
            },
        }


@dataclass(frozen=True)
class EvaluationReport:
    articles: list[ArticleScores]
    ignored_records: list[str] = field(default_factory=list)
    """source_file of records that have no gold file."""
    duplicate_records: list[str] = field(default_factory=list)
    """source_file of further records for a gold file that already had one (only the first is scored)."""

    def _sum(self, pick: Callable[[ArticleScores], Counts]) -> Counts:
        return sum((pick(a) for a in self.articles), Counts())

    @property
    def quote_text(self) -> Counts:
        return self._sum(lambda a: a.quote_text)

    @property
    def quote_speaker(self) -> Counts:
        return self._sum(lambda a: a.quote_speaker)

    @property
    def statement_text(self) -> Counts:
        return self._sum(lambda a: a.statement_text)

    @property
    def organisations(self) -> Counts:
        return self._sum(lambda a: a.organisations)

    @property
    def policy_areas(self) -> Counts:
        return self._sum(lambda a: a.policy_areas)

    @property
    def main_topic_accuracy(self) -> float:
        topical = [a for a in self.articles if not a.quotes_only]
        return _share(sum(a.main_topic_correct for a in topical), len(topical))

    @property
    def exact_span_share(self) -> float:
        return _share(
            sum(a.quotes_with_exact_span for a in self.articles),
            sum(a.quotes_predicted for a in self.articles),
        )

    @property
    def organisation_type_accuracy(self) -> float:
        """Share of matched organisations whose type equals the gold type."""
        return _share(sum(a.organisation_type_correct for a in self.articles), self.organisations.matched)

    @property
    def organisation_country_accuracy(self) -> float:
        """Share of matched organisations whose country equals the gold country (null for international bodies)."""
        return _share(sum(a.organisation_country_correct for a in self.articles), self.organisations.matched)

    @property
    def person_links(self) -> PersonLinks:
        return sum((a.person_links for a in self.articles), PersonLinks())

    @property
    def missing_records(self) -> list[str]:
        return [a.source_file for a in self.articles if not a.has_record]

    def cost(self) -> dict[str, dict[str, float | None]]:
        """Median and max of seconds and tokens per article, over articles with a record."""
        scored = [a for a in self.articles if a.has_record]
        return {
            name: _median_max([getattr(a, name) for a in scored])
            for name in ("seconds", "prompt_tokens", "completion_tokens")
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "articles": [a.to_json() for a in self.articles],
            "total": {
                "articles": len(self.articles),
                "records": sum(a.has_record for a in self.articles),
                "quote_text": self.quote_text.to_json(),
                "quote_speaker": self.quote_speaker.to_json(),
                "statement_text": self.statement_text.to_json(),
                "organisations": self.organisations.to_json(),
                "policy_areas": self.policy_areas.to_json(),
                "main_topic_accuracy": self.main_topic_accuracy,
                "exact_span_share": self.exact_span_share,
                "organisation_type_accuracy": self.organisation_type_accuracy,
                "organisation_country_accuracy": self.organisation_country_accuracy,
                "person_links": self.person_links.to_json(),
                "person_role_accuracy": self.person_links.role_accuracy,
                "person_organisation_accuracy": self.person_links.organisation_accuracy,
                **self.cost(),
            },
            "missing_records": self.missing_records,
            "ignored_records": list(self.ignored_records),
            "duplicate_records": list(self.duplicate_records),
        }


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def _median_max(values: Iterable[float | int | None]) -> dict[str, float | None]:
    present = [v for v in values if v is not None]
    if not present:
        return {"median": None, "max": None}
    return {"median": statistics.median(present), "max": max(present)}


# --------------------------------------------------------------------------- text


def _fold_with_offsets(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Fold quote marks/apostrophes and collapse whitespace, keeping for every
    folded character the [start, end) range of the original it came from."""
    folded: list[str] = []
    origins: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        if text.startswith(_QUOTE_MARK_PAIRS, i):
            folded.append('"')
            origins.append((i, i + 2))
            i += 2
        elif text[i].isspace():
            j = i
            while j < len(text) and text[j].isspace():
                j += 1
            folded.append(" ")
            origins.append((i, j))
            i = j
        else:
            folded.append(text[i].translate(_CHAR_FOLDS))
            origins.append((i, i + 1))
            i += 1
    return "".join(folded), origins


def normalise_quote_text(text: str) -> str:
    """Quote-mark, apostrophe, whitespace and case normalisation used for quotes."""
    return _fold_with_offsets(text)[0].strip().lower()


def quote_tokens(text: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(normalise_quote_text(text)))


def _text_score(predicted: frozenset[str], gold: frozenset[str]) -> tuple[float, float] | None:
    """(Jaccard, containment) when the two token sets match under the quote rule, else None."""
    shared = len(predicted & gold)
    if not shared:
        return None
    shorter = min(len(predicted), len(gold))
    jaccard = shared / len(predicted | gold)
    containment = shared / shorter
    if jaccard >= JACCARD_THRESHOLD or (containment >= CONTAINMENT_THRESHOLD and shorter >= CONTAINMENT_MIN_TOKENS):
        return jaccard, containment
    return None


def quotes_match(predicted: str, gold: str) -> bool:
    """Whether two quote texts match under the module's text rule."""
    return _text_score(quote_tokens(predicted), quote_tokens(gold)) is not None


# --------------------------------------------------------------------------- names


def name_keys(name: str) -> set[str]:
    """`normalise_name` of a name, plus its form without trailing legal suffixes."""
    key = normalise_name(name)
    if not key:
        return set()
    tokens = key.split()
    while len(tokens) > 1 and tokens[-1] in LEGAL_SUFFIXES:
        tokens.pop()
    return {key, " ".join(tokens)}


def _organisation_keys(organisation: dict) -> set[str]:
    names = [organisation.get("name") or "", *(organisation.get("aliases") or [])]
    return set().union(*(name_keys(n) for n in names))


def _find_organisation(name: str, organisations: Sequence[dict]) -> dict | None:
    keys = name_keys(name)
    return next((org for org in organisations if keys & _organisation_keys(org)), None)


_SOURCE_TAIL = re.compile(r"\s*(?:[,(\u2014\u2013]|\s-\s|\s(?:who|which)\s).*$", re.S)


_NAME_OF = re.compile(r"^((?:[A-Z][\w'\u2019.-]*\s+)+?[A-Z][\w'\u2019.-]*)\s+of\s+(?:the\s+)?[A-Z]", re.S)


def gold_speaker_head(gold: str) -> str:
    """The name part of a gold speaker that is a whole annotated source mention (converted corpora):
    "Jay Smith, the club's president" -> "Jay Smith"; "Gov. Mary Olsen of Vermont" -> "Gov. Mary Olsen"
    (only when two or more capitalised words, none of them "The", come before "of": "Bank of England",
    "The Republic of Turkey" and "aides to Gov. Ann Lee of New Mexico" stay whole); clean names
    come back unchanged."""
    head = _SOURCE_TAIL.sub("", gold).strip() or gold
    if (named := _NAME_OF.match(head)) and named.group(1).split()[0] != "The":
        return named.group(1)
    return head


def speaker_matches(predicted: str, gold: str, gold_organisations: Sequence[dict] = ()) -> bool:
    """Whether a predicted speaker name is acceptable for a gold speaker (see module docstring)."""
    head = gold_speaker_head(gold)
    if head != gold and _speaker_matches(predicted, head, gold_organisations):
        return True
    return _speaker_matches(predicted, gold, gold_organisations)


def _speaker_matches(predicted: str, gold: str, gold_organisations: Sequence[dict]) -> bool:
    predicted_keys = name_keys(predicted)
    if not predicted_keys:
        return False
    gold_keys = name_keys(gold)
    organisation = _find_organisation(gold, gold_organisations)
    if organisation is not None:
        return bool(predicted_keys & (gold_keys | _organisation_keys(organisation)))
    if predicted_keys & gold_keys:
        return True
    predicted_tokens = normalise_name(predicted).split()
    gold_tokens = normalise_name(gold).split()
    if not gold_tokens:
        return False
    return gold_tokens[-1] in predicted_tokens or predicted_tokens[-1] == gold_tokens[0]


# --------------------------------------------------------------------------- matching


def _greedy_pairs(candidates: Iterable[tuple[Any, int, int]]) -> dict[int, int]:
    """One-to-one pairs (predicted -> gold) from (score, predicted, gold), best score first."""
    ordered = sorted(candidates, key=lambda c: c[0], reverse=True)  # stable: ties keep input order
    pairs: dict[int, int] = {}
    used_gold: set[int] = set()
    for _, p, g in ordered:
        if p not in pairs and g not in used_gold:
            pairs[p] = g
            used_gold.add(g)
    return pairs


def _speaker_name(quote: dict) -> str:
    return ((quote.get("speaker") or {}).get("name") or "").strip()


@dataclass(frozen=True)
class _QuoteResult:
    text: Counts
    speaker: Counts
    missed: list[str]
    spurious: list[str]
    wrong_speakers: list[WrongSpeaker]
    speaker_pairs: dict[int, int] = field(default_factory=dict)
    """predicted index -> gold index of the quotes matched with the correct speaker."""


def _score_quotes(predicted: Sequence[dict], gold: Sequence[dict], gold_organisations: Sequence[dict]) -> _QuoteResult:
    predicted_tokens = [quote_tokens(q.get("text") or "") for q in predicted]
    gold_tokens = [quote_tokens(q["text"]) for q in gold]
    text_scores = {
        (p, g): score
        for p, p_tokens in enumerate(predicted_tokens)
        for g, g_tokens in enumerate(gold_tokens)
        if (score := _text_score(p_tokens, g_tokens)) is not None
    }
    named = {g for g, q in enumerate(gold) if q.get("speaker")}
    speaker_ok = {
        (p, g): g in named and speaker_matches(_speaker_name(predicted[p]), gold[g]["speaker"], gold_organisations)
        for p, g in text_scores
    }
    text_pairs = _greedy_pairs((score + (speaker_ok[p, g],), p, g) for (p, g), score in text_scores.items())
    speaker_pairs = _greedy_pairs((score, p, g) for (p, g), score in text_scores.items() if speaker_ok[p, g])

    has_candidate = {p for p, _ in text_scores}
    lenient = {p for p, q in enumerate(predicted) if p not in has_candidate and not _speaker_name(q)}
    counted = len(predicted) - len(lenient)
    # A gold quote with `"speaker": null` (a converted corpus whose source is not a proper name) counts
    # for quote text only: it and the prediction paired with it on text leave the speaker figures.
    unnamed_pairs = {p for p, g in text_pairs.items() if g not in named and p not in speaker_pairs}
    matched_gold = set(text_pairs.values())
    return _QuoteResult(
        text=Counts(len(text_pairs), counted, len(gold)),
        speaker=Counts(len(speaker_pairs), counted - len(unnamed_pairs), len(named)),
        missed=[q["text"] for g, q in enumerate(gold) if g not in matched_gold],
        spurious=[q.get("text") or "" for p, q in enumerate(predicted) if p not in text_pairs and p not in lenient],
        wrong_speakers=[
            WrongSpeaker(gold[g]["text"], _speaker_name(predicted[p]), gold[g]["speaker"])
            for p, g in sorted(text_pairs.items())
            if g in named and not speaker_ok[p, g]
        ],
        speaker_pairs=speaker_pairs,
    )


def _score_organisations(predicted: Sequence[dict], gold: Sequence[dict]) -> tuple[Counts, list[str], list[str], int, int]:
    gold = list({normalise_name(o["name"]): o for o in reversed(gold)}.values())[::-1]  # first of each name
    predicted_keys = [_organisation_keys(o) for o in predicted]
    gold_keys = [_organisation_keys(o) for o in gold]
    candidates = [
        ((normalise_name(predicted[p].get("name") or "") == normalise_name(gold[g]["name"]), len(shared)), p, g)
        for p, p_keys in enumerate(predicted_keys)
        for g, g_keys in enumerate(gold_keys)
        if (shared := p_keys & g_keys)
    ]
    pairs = _greedy_pairs(candidates)
    matched_gold = set(pairs.values())
    missed = [o["name"] for g, o in enumerate(gold) if g not in matched_gold]
    spurious = [o.get("name") or "" for p, o in enumerate(predicted) if p not in pairs]
    # Of the matched organisations: how many have the gold type, and the gold country (null included).
    type_right = sum(predicted[p].get("type") == gold[g].get("type") for p, g in pairs.items())
    country_right = sum(predicted[p].get("country") == gold[g].get("country") for p, g in pairs.items())
    return Counts(len(pairs), len(predicted), len(gold)), missed, spurious, type_right, country_right


def role_matches(predicted: str | None, gold: str | None) -> bool:
    """Whether a predicted role is acceptable for a gold role (see module docstring)."""
    gold_tokens = _TOKEN.findall(normalise_quote_text(gold or ""))
    predicted_tokens = _TOKEN.findall(normalise_quote_text(predicted or ""))
    if not gold_tokens or not predicted_tokens:
        return not gold_tokens and not predicted_tokens
    if _holds_run(predicted_tokens, gold_tokens):
        return True
    return 2 * len(predicted_tokens) > len(gold_tokens) and _holds_run(gold_tokens, predicted_tokens)


def _holds_run(tokens: list[str], run: list[str]) -> bool:
    return any(tokens[i : i + len(run)] == run for i in range(len(tokens) - len(run) + 1))


def _score_person_links(
    predicted: Sequence[dict], record_organisations: Sequence[dict], gold: dict, speaker_pairs: dict[int, int]
) -> tuple[PersonLinks, list[WrongPersonLink]]:
    """Role and organisation of each gold person speaker, judged on its first quote matched with the right speaker."""
    gold_quotes = gold.get("quotes") or []
    gold_organisations = gold.get("organisations") or []
    by_gold = {g: p for p, g in speaker_pairs.items()}
    by_id = {o.get("id"): o for o in record_organisations}
    persons = [s for s in gold.get("speakers") or [] if s.get("kind") == "person"]
    counts, wrong = PersonLinks(gold=len(persons)), []
    for person in persons:
        first = next((g for g in sorted(by_gold) if gold_quotes[g].get("speaker") == person["name"]), None)
        if first is None:
            continue
        speaker = predicted[by_gold[first]].get("speaker") or {}
        is_person = speaker.get("kind", "person") == "person"
        organisation = by_id.get(speaker.get("organisation_id")) if is_person else None
        role_ok = is_person and role_matches(speaker.get("role"), person.get("role"))
        organisation_ok = is_person and _organisation_matches(organisation, person.get("organisation"), gold_organisations)
        counts += PersonLinks(0, 1, int(role_ok), int(organisation_ok))
        if not (role_ok and organisation_ok):
            wrong.append(
                WrongPersonLink(
                    person["name"], speaker.get("role"), person.get("role"),
                    (organisation or {}).get("name"), person.get("organisation"), role_ok, organisation_ok,
                )  # fmt: skip
            )
    return counts, wrong


def _organisation_matches(predicted: dict | None, gold_name: str | None, gold_organisations: Sequence[dict]) -> bool:
    if predicted is None or not gold_name:
        return predicted is None and not gold_name
    gold_entry = next((o for o in gold_organisations if o.get("name") == gold_name), {"name": gold_name})
    return bool(_organisation_keys(predicted) & _organisation_keys(gold_entry))


def _codes(policy_areas: Iterable[dict]) -> list[int]:
    return list(dict.fromkeys(int(area["code"]) for area in policy_areas))


def _has_exact_span(quote: dict, text: str) -> bool:
    span = quote.get("span") or {}
    start, end = span.get("start"), span.get("end")
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
        return False
    return text[start:end] == quote.get("text")


# --------------------------------------------------------------------------- public API


def load_gold(gold_dir: Path) -> dict[str, dict]:
    """Gold annotations in `gold_dir/*.json`, keyed by their `source_file`."""
    gold: dict[str, dict] = {}
    for path in sorted(Path(gold_dir).glob("*.json")):
        try:
            annotation = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:  # also UnicodeDecodeError
            raise ValueError(f"{path}: not a JSON gold annotation ({error})") from None
        source_file = annotation.get("source_file") if isinstance(annotation, dict) else None
        if not source_file:
            raise ValueError(f"{path}: gold annotation has no source_file")
        if source_file in gold:
            raise ValueError(f"{path}: second gold annotation for {source_file!r}")
        gold[source_file] = annotation
    if not gold:
        raise FileNotFoundError(f"no gold annotations (*.json) in {gold_dir}")
    return gold


def score_article(record: dict, gold: dict) -> ArticleScores:
    """Score one ArticleRecord dict against its gold annotation."""
    text = record["article"]["text"]
    predicted_quotes = record.get("quotes") or []
    gold_organisations = gold.get("organisations") or []
    quotes = _score_quotes(predicted_quotes, gold.get("quotes") or [], gold_organisations)
    unnamed = [{"text": u.get("text") or "", "speaker": {"name": u.get("source") or "unnamed source"}} for u in record.get("unnamed_source_quotes") or []]
    statements = _score_quotes([*predicted_quotes, *unnamed], gold.get("quotes") or [], gold_organisations).text if unnamed else quotes.text
    organisations, missed_orgs, spurious_orgs, type_right, country_right = _score_organisations(record.get("organisations") or [], gold_organisations)

    predicted_codes = _codes(record.get("policy_areas") or [])
    gold_codes = _codes(gold.get("policy_areas") or [])
    policy = Counts(len(set(predicted_codes) & set(gold_codes)), len(predicted_codes), len(gold_codes))
    quotes_only = bool(gold.get("quotes_only"))
    if quotes_only:
        # The gold annotates attributions only (a converted corpus): organisation and CAP figures skip it.
        organisations, missed_orgs, spurious_orgs, type_right, country_right = Counts(), [], [], 0, 0
        policy = Counts()

    person_links, wrong_person_links = _score_person_links(predicted_quotes, record.get("organisations") or [], gold, quotes.speaker_pairs)
    provenance = record.get("provenance") or {}
    usage = provenance.get("usage") or {}
    return ArticleScores(
        source_file=gold["source_file"],
        has_record=True,
        quote_text=quotes.text,
        quote_speaker=quotes.speaker,
        statement_text=statements,
        organisations=organisations,
        policy_areas=policy,
        main_topic_correct=predicted_codes[:1] == gold_codes[:1],
        quotes_only=quotes_only,
        quotes_predicted=len(predicted_quotes),
        quotes_with_exact_span=sum(_has_exact_span(q, text) for q in predicted_quotes),
        seconds=provenance.get("seconds"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        missed_quotes=quotes.missed,
        spurious_quotes=quotes.spurious,
        wrong_speakers=quotes.wrong_speakers,
        missed_organisations=missed_orgs,
        spurious_organisations=spurious_orgs,
        organisation_type_correct=type_right,
        organisation_country_correct=country_right,
        person_links=person_links,
        wrong_person_links=wrong_person_links,
    )


def _missing_record(gold: dict) -> ArticleScores:
    empty = {"article": {"source_file": gold["source_file"], "text": ""}}
    return replace(score_article(empty, gold), has_record=False)


def evaluate(records: list[dict], gold_dir: Path) -> EvaluationReport:
    """Score `records` against every gold annotation in `gold_dir`.

    A record belongs to the gold file with the same `source_file`, or else with the
    same file-name stem. Gold files without a record score as all missed; records
    without a gold file are ignored and listed in the report.
    """
    gold = load_gold(gold_dir)
    by_stem = {Path(source_file).stem: source_file for source_file in gold}
    assigned: dict[str, dict] = {}
    ignored: list[str] = []
    duplicates: list[str] = []
    for record in records:
        source_file = record["article"]["source_file"]
        key = source_file if source_file in gold else by_stem.get(Path(source_file).stem)
        if key is None:
            ignored.append(source_file)
        elif key in assigned:
            duplicates.append(source_file)
        else:
            assigned[key] = record
    articles = [
        score_article(assigned[key], annotation) if key in assigned else _missing_record(annotation)
        for key, annotation in gold.items()
    ]
    return EvaluationReport(articles, ignored, duplicates)


def split_article(raw: str) -> tuple[dict[str, str], str]:
    """(header, body) of an article file: the leading `key: value` block ends at a
    blank line; the body is the rest, stripped. Without such a block the whole
    file is the body."""
    match = _HEADER_BLOCK.match(raw)
    if match is None:
        return {}, raw.strip()
    header = {}
    for line in match.group(0).splitlines():
        if parsed := _HEADER_LINE.fullmatch(line.strip()):
            header[parsed[1].lower()] = parsed[2].strip()
    return header, raw[match.end() :].strip()


def _span_finder(body: str) -> Callable[[str], tuple[int, int]]:
    """Locate texts in `body` modulo quote-mark/whitespace folding; returns original
    offsets and prefers an occurrence not handed out before."""
    folded, origins = _fold_with_offsets(body)
    taken: set[tuple[int, int]] = set()

    def find(needle: str) -> tuple[int, int]:
        target = _fold_with_offsets(needle.strip())[0]
        occurrences: list[tuple[int, int]] = []
        at = folded.find(target) if target else -1
        while at >= 0:
            occurrences.append((origins[at][0], origins[at + len(target) - 1][1]))
            at = folded.find(target, at + 1)
        if not occurrences:
            raise ValueError(f"text not found in the article: {needle!r}")
        span = next((o for o in occurrences if o not in taken), occurrences[0])
        taken.add(span)
        return span

    return find


def gold_as_records(gold_dir: Path, articles_dir: Path) -> list[dict]:
    """ArticleRecord dicts that restate the gold annotations (for testing the scorer).

    Quote spans are located in the article body; speakers that name a gold
    organisation become organisation speakers. Every record is validated
    against the record contract.
    """
    records = []
    for source_file, gold in load_gold(gold_dir).items():
        header, body = split_article((Path(articles_dir) / source_file).read_text(encoding="utf-8"))
        find = _span_finder(body)
        organisations = [
            {
                "id": organisation_id(org["name"]),
                "name": org["name"],
                "aliases": list(org.get("aliases") or []),
                "type": org.get("type") or "other",
                "country": org.get("country"),
            }
            for org in gold.get("organisations") or []
        ]
        quotes = []
        persons = {s["name"]: s for s in gold.get("speakers") or [] if s.get("kind") == "person"}
        for quote in gold.get("quotes") or []:
            start, end = find(quote["text"])
            organisation = _find_organisation(quote["speaker"], organisations)
            person = persons.get(quote["speaker"]) if organisation is None else None
            if person is not None:
                employer = next((o for o in organisations if o["name"] == person.get("organisation")), None)
                organisation_fields = {"role": person.get("role"), "organisation_id": employer["id"] if employer else None}
            else:
                organisation_fields = {"organisation_id": None if organisation is None else organisation["id"]}
            quotes.append(
                {
                    "text": body[start:end],
                    "type": quote["type"],
                    "speaker": {
                        "name": quote["speaker"],
                        "kind": "person" if organisation is None else "organisation",
                        **organisation_fields,
                    },
                    "span": {"start": start, "end": end},
                }
            )
        record = {
            "article": {
                "id": hashlib.sha256(body.encode("utf-8")).hexdigest()[:16],  # scoring never reads it
                "source_file": source_file,
                **{key: header[key] for key in ("title", "published", "source", "url") if header.get(key)},
                "text": body,
            },
            "quotes": quotes,
            "organisations": organisations,
            "policy_areas": [{"code": a["code"], "name": a["name"]} for a in gold.get("policy_areas") or []],
            "provenance": {
                "model": "gold",
                "backend": "gold",
                "prompt_version": "gold",
                "extracted_at": datetime.now(timezone.utc),
                "seconds": 0.0,
            },
        }
        records.append(ArticleRecord.model_validate(record).model_dump(mode="json"))
    return records


# --------------------------------------------------------------------------- rendering


def _fmt(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _quotes_predicted(scores: ArticleScores | EvaluationReport) -> int:
    articles = scores.articles if isinstance(scores, EvaluationReport) else [scores]
    return sum(a.quotes_predicted for a in articles)


_COLUMNS: list[tuple[str, Callable[[ArticleScores | EvaluationReport], str]]] = [
    ("quote P", lambda s: _fmt(s.quote_text.precision)),
    ("R", lambda s: _fmt(s.quote_text.recall)),
    ("F1", lambda s: _fmt(s.quote_text.f1)),
    ("+spk P", lambda s: _fmt(s.quote_speaker.precision)),
    ("R", lambda s: _fmt(s.quote_speaker.recall)),
    ("F1", lambda s: _fmt(s.quote_speaker.f1)),
    ("org P", lambda s: _fmt(s.organisations.precision)),
    ("R", lambda s: _fmt(s.organisations.recall)),
    ("F1", lambda s: _fmt(s.organisations.f1)),
    ("CAP F1", lambda s: _fmt(s.policy_areas.f1)),
    ("main", lambda s: ("-" if s.quotes_only else _fmt(float(s.main_topic_correct))) if isinstance(s, ArticleScores) else _fmt(s.main_topic_accuracy)),
    ("role", lambda s: _fmt(s.person_links.role_accuracy) if s.person_links.scored else "-"),
    ("p.org", lambda s: _fmt(s.person_links.organisation_accuracy) if s.person_links.scored else "-"),
    ("span", lambda s: _fmt(s.exact_span_share) if _quotes_predicted(s) else "-"),
    ("sec", lambda s: _fmt(s.seconds, 1) if isinstance(s, ArticleScores) else ""),
    ("tok in", lambda s: _fmt(s.prompt_tokens) if isinstance(s, ArticleScores) else ""),
    ("tok out", lambda s: _fmt(s.completion_tokens) if isinstance(s, ArticleScores) else ""),
]


def render_report(report: EvaluationReport) -> str:
    """Plain-text table: one row per gold article and a TOTAL (micro-averaged) row."""
    labels = [a.source_file + ("" if a.has_record else " (no record)") for a in report.articles]
    rows = [[label, *(cell(a) for _, cell in _COLUMNS)] for label, a in zip(labels, report.articles)]
    total = ["TOTAL", *(cell(report) for _, cell in _COLUMNS)]
    header = ["article", *(name for name, _ in _COLUMNS)]
    widths = [max(len(row[i]) for row in [header, *rows, total]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(header))
    out = [line(header), rule, *(line(r) for r in rows), rule, line(total)]
    out.append(
        "quote = quote text, +spk = quote with correct speaker, main = main-topic accuracy, "
        "role / p.org = person role / organisation accuracy, "
        "span = exact-span share; TOTAL is micro-averaged over counts"
    )
    cost = report.cost()
    out.append(
        "per article: "
        + "; ".join(f"{name} median {_fmt(s['median'], 1)} max {_fmt(s['max'], 1)}" for name, s in cost.items())
    )
    counts = {"quotes": report.quote_text, "orgs": report.organisations, "CAP codes": report.policy_areas}
    out.append(
        "matched/predicted/gold: "
        + "; ".join(f"{name} {c.matched}/{c.predicted}/{c.gold}" for name, c in counts.items())
        + f"; quotes with speaker {report.quote_speaker.matched}"
    )
    if report.statement_text != report.quote_text:
        s = report.statement_text
        out.append(
            f"statements (quotes + unnamed-source quotes, for gold that annotates unnamed sources): "
            f"P {s.precision:.2f} R {s.recall:.2f} F1 {s.f1:.2f} ({s.matched}/{s.predicted}/{s.gold})"
        )
    out.append(
        f"matched organisations with the gold type {report.organisation_type_accuracy:.2f}, "
        f"with the gold country {report.organisation_country_accuracy:.2f}"
    )
    links = report.person_links
    if links.gold:
        out.append(
            f"person role accuracy {links.role_accuracy:.2f}, person organisation accuracy "
            f"{links.organisation_accuracy:.2f} ({links.scored} of {links.gold} gold persons quoted with the right speaker)"
        )
    if report.ignored_records:
        out.append("records without gold (ignored): " + ", ".join(report.ignored_records))
    if report.duplicate_records:
        out.append("duplicate records (ignored): " + ", ".join(report.duplicate_records))
    return "\n".join(out)
