"""Pydantic models of the article record and its exported JSON Schemas."""

from schemas.records import (
    CAP_MAJOR_TOPICS,
    SCHEMA_VERSION,
    ArticleMeta,
    ArticleRecord,
    FailureRecord,
    Organisation,
    OrganisationType,
    PolicyArea,
    Provenance,
    Quote,
    QuoteType,
    Span,
    Speaker,
    TokenUsage,
    UnnamedSourceQuote,
    organisation_id,
)

__all__ = [
    "CAP_MAJOR_TOPICS",
    "SCHEMA_VERSION",
    "ArticleMeta",
    "ArticleRecord",
    "FailureRecord",
    "Organisation",
    "OrganisationType",
    "PolicyArea",
    "Provenance",
    "Quote",
    "QuoteType",
    "Span",
    "Speaker",
    "TokenUsage",
    "UnnamedSourceQuote",
    "organisation_id",
]
