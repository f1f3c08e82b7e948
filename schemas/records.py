"""The per-article record: the contract downstream consumers depend on.

Every validator here does real work: a record that validates is grounded in
its article text (quotes and mentions slice exactly out of `article.text`),
uses only Comparative Agendas Project major-topic codes, and references only
organisations it declares. Field names are part of the public contract; see
README "Record contract" before renaming anything.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = "1.3.0"

# Comparative Agendas Project master codebook, major topics.
CAP_MAJOR_TOPICS: dict[int, str] = {
    1: "Macroeconomics",
    2: "Civil Rights",
    3: "Health",
    4: "Agriculture",
    5: "Labor",
    6: "Education",
    7: "Environment",
    8: "Energy",
    9: "Immigration",
    10: "Transportation",
    12: "Law and Crime",
    13: "Social Welfare",
    14: "Housing",
    15: "Domestic Commerce",
    16: "Defense",
    17: "Technology",
    18: "Foreign Trade",
    19: "International Affairs",
    20: "Government Operations",
    21: "Public Lands",
    23: "Culture",
}

QuoteType = Literal["direct", "indirect"]
SpeakerKind = Literal["person", "organisation"]
OrganisationType = Literal[
    "government",
    "company",
    "university",
    "research_institute",
    "party",
    "ngo",
    "international",
    "media",
    "other",
]


CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 ('EU' for EU bodies).")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


@functools.lru_cache(maxsize=65536)  # a pure function asked about the same names thousands of times an article
def normalise_name(name: str) -> str:
    """Case-, accent-, punctuation- and whitespace-insensitive key for a name."""
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    folded = folded.replace("&", " and ")
    folded = re.sub(r"[^\w\s]", " ", folded)
    return " ".join(folded.split())


def name_in_text(name: str) -> str:
    """A regular expression that finds `name` as a whole word run in article text, whatever spaces the
    article puts between its words (names are stored with plain spaces; an article may print a no-break one)."""
    return r"(?<![\w-])" + r"\s+".join(re.escape(word) for word in name.split()) + r"(?![\w-])"


def organisation_id(canonical_name: str) -> str:
    """Stable id: the same canonical name always yields the same id."""
    digest = hashlib.sha256(normalise_name(canonical_name).encode("utf-8")).hexdigest()
    return f"org_{digest[:12]}"


class Span(_Strict):
    """Half-open character offsets into `article.text`: text[start:end]."""

    start: int = Field(ge=0)
    end: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.end <= self.start:
            raise ValueError(f"span end ({self.end}) must be greater than start ({self.start})")
        return self


class Speaker(_Strict):
    name: str = Field(min_length=1, description="Full name as first given in the article, or the organisation's canonical name.")
    kind: SpeakerKind = "person"
    role: str | None = Field(default=None, description="Title or role as given in the article.")
    organisation_id: str | None = Field(default=None, description="id of the speaker's organisation in this record.")


class Quote(_Strict):
    text: str = Field(min_length=1, description="Exactly article.text[span.start:span.end].")
    type: QuoteType
    speaker: Speaker
    span: Span
    cue: str | None = Field(default=None, description="Speech verb or attribution phrase, e.g. 'said', 'according to'.")


class UnnamedSourceQuote(_Strict):
    """A statement whose source the article does not name: "analysts said", "a senior official said",
    "polls showed". Kept apart from `quotes`, which carry named speakers only."""

    text: str = Field(min_length=1, description="Exactly article.text[span.start:span.end].")
    type: QuoteType
    source: str = Field(min_length=1, description="The source as the article describes it, e.g. 'analysts', 'a senior official'.")
    source_span: Span = Field(description="Where `source` stands: article.text[source_span.start:source_span.end] == source.")
    span: Span
    cue: str | None = Field(default=None, description="Speech verb or attribution phrase, e.g. 'said', 'according to'.")


class Organisation(_Strict):
    id: str = Field(pattern=r"^org_[0-9a-f]{12}$")
    name: str = Field(min_length=1, description="Canonical name.")
    aliases: list[str] = Field(default_factory=list, description="Other names as they appear in the text.")
    type: OrganisationType = "other"
    country: CountryCode | None = None
    mentions: list[Span] = Field(default_factory=list)

    @model_validator(mode="after")
    def _id_from_name(self) -> Organisation:
        expected = organisation_id(self.name)
        if self.id != expected:
            raise ValueError(f"organisation id {self.id!r} is not derived from its name (expected {expected!r})")
        return self


class PolicyArea(_Strict):
    code: int = Field(description="CAP major-topic code.")
    name: str
    evidence: list[Span] = Field(default_factory=list, description="Sentences that discuss the topic.")

    @field_validator("code")
    @classmethod
    def _known_code(cls, code: int) -> int:
        if code not in CAP_MAJOR_TOPICS:
            raise ValueError(f"{code} is not a CAP major-topic code; valid codes: {sorted(CAP_MAJOR_TOPICS)}")
        return code

    @model_validator(mode="after")
    def _name_matches_code(self) -> PolicyArea:
        if self.name != CAP_MAJOR_TOPICS[self.code]:
            raise ValueError(f"CAP code {self.code} is {CAP_MAJOR_TOPICS[self.code]!r}, not {self.name!r}")
        return self


class ArticleMeta(_Strict):
    id: str = Field(description="Content hash of the normalised body.")
    source_file: str
    title: str | None = None
    published: date | None = None
    source: str | None = None
    url: str | None = None
    text: str = Field(description="The article body that every span indexes into.")


class TokenUsage(_Strict):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    retries: int = 0

    def add(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
            retries=self.retries + other.retries,
        )


class ItemCounts(_Strict):
    """What became of one kind of item the model proposed: proposed = kept + merged + sum(dropped)."""

    proposed: int = Field(default=0, ge=0)
    kept: int = Field(default=0, ge=0)
    aligned_fuzzily: int = Field(default=0, ge=0, description="Of the kept: aligned to the text by the fuzzy step, not exactly.")
    merged: int = Field(default=0, ge=0, description="Duplicates merged into a kept item (overlapping chunks, second spellings).")
    dropped: dict[str, int] = Field(default_factory=dict, description="Reason -> count, e.g. not_in_text, speaker_not_in_article.")


class ModelItems(_Strict):
    """Per-article counts of the items the model proposed in the `llm` strategy."""

    quotes: ItemCounts = Field(default_factory=ItemCounts)
    organisations: ItemCounts = Field(default_factory=ItemCounts)
    policy_areas: ItemCounts = Field(default_factory=ItemCounts)


class Provenance(_Strict):
    model: str
    backend: str
    prompt_version: str
    schema_version: str = SCHEMA_VERSION
    extracted_at: datetime
    seconds: float = Field(ge=0)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    strategy: Literal["rules", "assist", "llm"] | None = Field(default=None, description="Who extracted: rules, rules + model questions (assist), or the model (llm).")
    model_items: ModelItems | None = Field(default=None, description="llm strategy: model-proposed items kept, aligned fuzzily, merged, dropped (and why).")
    extractor_version: str | None = Field(
        default=None,
        description="Version of the extraction code and resources that made this record: package version + digest (pipeline/version.py). Null in records made before 1.2.0.",
    )


class ArticleRecord(_Strict):
    """One article's extraction. Validating it proves every span is grounded."""

    schema_version: str = SCHEMA_VERSION
    article: ArticleMeta
    quotes: list[Quote] = Field(default_factory=list)
    unnamed_source_quotes: list[UnnamedSourceQuote] = Field(
        default_factory=list, description="Statements of sources the article does not name (schema 1.3.0; the rules and assist strategies fill it)."
    )
    organisations: list[Organisation] = Field(default_factory=list)
    policy_areas: list[PolicyArea] = Field(default_factory=list, description="Main topic first.")
    provenance: Provenance

    @model_validator(mode="after")
    def _grounded(self) -> ArticleRecord:
        text = self.article.text
        problems: list[str] = []

        def check(span: Span, what: str) -> str | None:
            if span.end > len(text):
                problems.append(f"{what}: span {span.start}-{span.end} runs past the article ({len(text)} chars)")
                return None
            return text[span.start : span.end]

        for i, quote in enumerate(self.quotes):
            sliced = check(quote.span, f"quotes[{i}]")
            if sliced is not None and sliced != quote.text:
                problems.append(f"quotes[{i}]: span {quote.span.start}-{quote.span.end} slices {sliced!r}, not the quote text {quote.text!r}")

        for i, unnamed in enumerate(self.unnamed_source_quotes):
            for span, said, what in ((unnamed.span, unnamed.text, "text"), (unnamed.source_span, unnamed.source, "source")):
                sliced = check(span, f"unnamed_source_quotes[{i}]")
                if sliced is not None and sliced != said:
                    problems.append(f"unnamed_source_quotes[{i}]: span {span.start}-{span.end} slices {sliced!r}, not the {what} {said!r}")

        org_ids = [org.id for org in self.organisations]
        if len(org_ids) != len(set(org_ids)):
            problems.append("organisations: duplicate ids; merge duplicates before writing")
        for org in self.organisations:
            names = {org.name, *org.aliases}
            for span in org.mentions:
                sliced = check(span, f"organisation {org.name!r}")
                if sliced is not None and sliced not in names:
                    problems.append(f"organisation {org.name!r}: mention {sliced!r} is neither its name nor an alias")
        known = set(org_ids)
        for i, quote in enumerate(self.quotes):
            if quote.speaker.organisation_id and quote.speaker.organisation_id not in known:
                problems.append(f"quotes[{i}]: speaker organisation {quote.speaker.organisation_id!r} is not in organisations")

        codes = [area.code for area in self.policy_areas]
        if len(codes) != len(set(codes)):
            problems.append("policy_areas: a CAP code is listed twice")
        for area in self.policy_areas:
            for span in area.evidence:
                check(span, f"policy area {area.code}")
        if problems:
            raise ValueError("record is not grounded in its article: " + "; ".join(problems))
        return self


class FailureRecord(_Strict):
    """What the run keeps of an article it could not extract (outputs/failed/)."""

    schema_version: str = SCHEMA_VERSION
    source_file: str
    article_id: str | None = None
    stage: Literal["ingest", "extract", "validate", "write"]
    reason: str
    attempts: int = 0
    last_model_output: str | None = None
    failed_at: datetime
