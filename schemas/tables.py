"""Rows of the JSONL tables in the output folder: the contract analytics tools load.

One model per table; every line of the table validates against it
(`tests/test_duckdb.py` checks this on the dev set):

- `quotes.jsonl`        -> QuoteRow        (one row per quote, from `pipeline.write.table_rows`)
- `policy_areas.jsonl`  -> PolicyAreaRow   (one row per CAP code of an article, main topic rank 1)
- `unnamed_source_quotes.jsonl` -> UnnamedSourceQuoteRow (one row per statement of a source the article does not name)
- `article_organisations.jsonl` -> ArticleOrganisationRow (a record's organisation, flattened, per article)
- `organisations.jsonl` -> OrganisationRow (the cross-article registry, `pipeline.registry`)
- `speakers.jsonl`      -> SpeakerRow      (one row per person or organisation quoted, across articles)
- `merges.jsonl`        -> MergeRow        (append-only log: which name joined which registry id, and why)

Registry ids (`org_...`, `spk_...`) are assigned once and kept for ever: a later
run attaches new aliases and articles to existing ids and never renumbers.
A per-article record's organisation id (`Organisation.id`, derived from the
name used in that article) is not the registry id; `OrganisationRow.appearances`
maps every (article_id, record_id) pair to its registry entry.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.records import CountryCode, OrganisationType, QuoteType, Span, Speaker, SpeakerKind

ORG_ID_PATTERN = r"^org_[0-9a-f]{12}$"
SPEAKER_ID_PATTERN = r"^spk_[0-9a-f]{12}$"


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ArticleRow(_Row):
    """A row of a per-article table: the article it comes from first."""

    article_id: str
    source_file: str
    published: date | None = None


class QuoteRow(_ArticleRow):
    """quotes.jsonl: a record's quote, flattened, with the article it comes from."""

    quote_index: int = Field(ge=0, description="Position of the quote in the record's `quotes`.")
    text: str = Field(min_length=1)
    type: QuoteType
    speaker: Speaker = Field(description="As in the record: `speaker.organisation_id` is the record's organisation id (see OrganisationRow.appearances).")
    span: Span
    cue: str | None = None


class UnnamedSourceQuoteRow(_ArticleRow):
    """unnamed_source_quotes.jsonl: a record's unnamed-source quote, flattened, with the article it comes from."""

    quote_index: int = Field(ge=0, description="Position in the record's `unnamed_source_quotes`.")
    text: str = Field(min_length=1)
    type: QuoteType
    source: str = Field(min_length=1, description="The source as the article describes it ('analysts', 'a senior official').")
    source_span: Span
    span: Span
    cue: str | None = None


class PolicyAreaRow(_ArticleRow):
    """policy_areas.jsonl: one CAP major topic of one article."""

    rank: int = Field(ge=1, description="1 = the article's main topic.")
    code: int
    name: str
    evidence: list[Span] = Field(default_factory=list)


class ArticleOrganisationRow(_ArticleRow):
    """article_organisations.jsonl: a record's organisation, flattened, with the article it comes from."""

    id: str = Field(pattern=ORG_ID_PATTERN, description="The record's organisation id (see OrganisationRow.appearances for the registry id).")
    name: str
    aliases: list[str] = Field(default_factory=list)
    type: OrganisationType
    country: CountryCode | None = None
    mentions: list[Span] = Field(default_factory=list)


class OrganisationAppearance(_Row):
    article_id: str
    published: date | None = None
    record_id: str = Field(description="The organisation's id inside that article's record (Organisation.id).")
    name: str = Field(description="The organisation's name in that record.")
    mentions: int = Field(ge=0, description="Number of mention spans in that record.")


class OrganisationRow(_Row):
    """organisations.jsonl: one entity across all articles and runs."""

    id: str = Field(pattern=ORG_ID_PATTERN, description="Registry id, assigned when first seen and never changed.")
    name: str = Field(min_length=1, description="Canonical name: the name most articles use (the first-seen name on ties).")
    aliases: list[str] = Field(default_factory=list, description="Every other form seen, as printed.")
    type: OrganisationType = "other"
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2 ('EU' for EU bodies); the most common value across articles.")
    article_ids: list[str] = Field(default_factory=list, description="Articles (current records) it appears in.")
    appearances: list[OrganisationAppearance] = Field(default_factory=list)
    first_seen_article: str | None = Field(default=None, description="Article in which the id was assigned.")


class SpeakerAffiliation(_Row):
    article_id: str
    published: date | None = None
    role: str | None = None
    organisation_id: str | None = Field(default=None, description="Registry id of the organisation the speaker spoke for in that article.")
    organisation_name: str | None = None


class QuoteRef(_Row):
    article_id: str
    quote_index: int = Field(ge=0)


class SpeakerRow(_Row):
    """speakers.jsonl: one person (or organisation speaking as itself) across articles."""

    id: str = Field(pattern=SPEAKER_ID_PATTERN, description="Registry id, assigned when first seen and never changed.")
    name: str = Field(min_length=1)
    kind: SpeakerKind
    aliases: list[str] = Field(default_factory=list)
    organisation_id: str | None = Field(default=None, description="For kind 'organisation': the registry id of that organisation.")
    organisation_ids: list[str] = Field(default_factory=list, description="Registry ids of the organisations the speaker spoke for, oldest first.")
    affiliations: list[SpeakerAffiliation] = Field(default_factory=list, description="Role and organisation per article, oldest first.")
    article_ids: list[str] = Field(default_factory=list)
    quotes: list[QuoteRef] = Field(default_factory=list)
    first_seen_article: str | None = None


MergeRule = Literal[
    "new",  # the entry was created with this name
    "article_alias",  # the article's own record lists it as an alias of the name that matched
    "same_name",  # equal after case, accents, punctuation, whitespace and a leading "the"
    "acronym",  # an acronym introduced in an article ("... (MIIT)") that the entry already carries
    "legal_suffix",  # equal once legal suffixes are dropped (Co., Ltd, Group, Inc., Corp ...)
    "subunit_order",  # "X's Institute of Y" / "X Institute of Y" = "Institute of Y, X"
    "short_form",  # leading words of a company name that carries a legal suffix ("TCL" < "TCL Technology Group")
    "initials",  # an all-capitals acronym equal to the initials of the entry's name
    "name_order",  # speakers: the same name tokens in another order ("Jinping Xi")
    "organisation",  # speakers: an organisation speaking, matched through its registry organisation id
]


class MergeRow(_Row):
    """merges.jsonl: the log of identity decisions, one row per (entity, id, alias), never rewritten."""

    entity: Literal["organisation", "speaker"] = Field(description="Which registry: organisations.jsonl or speakers.jsonl.")
    id: str = Field(description="Registry id the alias was attached to.")
    alias: str = Field(description="The name as printed in the article.")
    rule: MergeRule
    matched: str | None = Field(default=None, description="The entry's existing name or alias that it matched.")
    reason: str
    article_id: str | None = Field(default=None, description="Article in which the alias was first seen.")
    speaker_kind: SpeakerKind | None = Field(default=None, description="speaker rows only.")
    organisation_id: str | None = Field(default=None, description="speakers of kind 'organisation': their registry organisation id.")


# File names of the JSON Schemas to publish next to the record schemas (schemas/export.py).
TABLE_SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "quote_row.schema.json": QuoteRow,
    "unnamed_source_quote_row.schema.json": UnnamedSourceQuoteRow,
    "policy_area_row.schema.json": PolicyAreaRow,
    "article_organisation_row.schema.json": ArticleOrganisationRow,
    "organisation_row.schema.json": OrganisationRow,
    "speaker_row.schema.json": SpeakerRow,
    "merge_row.schema.json": MergeRow,
}
