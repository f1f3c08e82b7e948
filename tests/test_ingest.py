"""Tests for pipeline.ingest: formats, ids, and every kind of bad input."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

import pipeline.ingest as ingest

from pipeline.ingest import (
    MAX_ARTICLE_BYTES,
    Article,
    IngestError,
    IngestFailure,
    normalise_body_for_id,
    parse_text_article,
    read_articles,
)

# Byte-identical copies of /work/shared/eval-dev/articles/00_new_productive_forces.txt
# and /work/shared/seeds/000_c644d251e1e23a76.txt, so the tests run without /work/shared.
DATA = Path(__file__).parent / "data" / "ingest"
EVAL_DEV_00 = DATA / "00_new_productive_forces.txt"
SEED_000 = DATA / "000_c644d251e1e23a76.txt"

BODY = "The ministry said on Monday it would cut fees.\n\nOfficials called the move “overdue”."

HTML_PAGE = """<!doctype html>
<html><head>
<title>Ministry cuts fees | Example News</title>
<meta property="og:title" content="Ministry cuts fees">
<meta property="og:site_name" content="Example News">
<meta name="date" content="2024-03-01">
<link rel="canonical" href="https://example.com/news/fees">
<script>var tracker = "SCRIPT_IN_HEAD";</script>
<style>.ad { content: "STYLE_TEXT"; }</style>
</head><body>
<nav>Home | World | Business</nav>
<article>
<h1>Ministry cuts fees</h1>
<p>The finance ministry said on Monday that it would cut registration fees for small
businesses by half from next month, in a move aimed at supporting employment.</p>
<script>document.write("SCRIPT_IN_BODY");</script>
<p>Officials said the measure would be reviewed after a year, and that local
governments would be compensated for the lost revenue through transfers.</p>
<p>“This is overdue,” said Jane Smith, an economist at a Beijing think tank, adding
that small firms had struggled with rising costs for several years.</p>
</article>
<footer>Copyright Example News</footer>
</body></html>
"""


def by_file(failures: list[IngestFailure]) -> dict[str, str]:
    return {failure.source_file: failure.reason for failure in failures}


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --- plain-text formats --------------------------------------------------------------


def test_eval_dev_header_format() -> None:
    raw = EVAL_DEV_00.read_text(encoding="utf-8")
    article = parse_text_article(raw, EVAL_DEV_00.name)

    assert article.title == "New productive forces play key role in growth"
    assert article.published == date(2024, 2, 6)
    assert article.source == "China Daily"
    assert article.url is None
    assert article.source_file == "00_new_productive_forces.txt"
    # The body is exactly what follows the first blank line, minus outer whitespace.
    assert article.text == raw.split("\n\n", 1)[1].strip()
    assert article.text.startswith("An employee supervises a smart robot")


def test_seed_date_line_format() -> None:
    raw = SEED_000.read_text(encoding="utf-8")
    assert raw.startswith(" date 2024-02-06 \n")
    article = parse_text_article(raw, SEED_000.name)

    assert article.published == date(2024, 2, 6)
    assert article.title is None
    assert article.text.startswith("An employee supervises")
    assert "2024-02-06" not in article.text.splitlines()[0]


def test_eval_dev_00_and_seed_share_an_id() -> None:
    eval_dev = parse_text_article(EVAL_DEV_00.read_text(encoding="utf-8"), EVAL_DEV_00.name)
    seed = parse_text_article(SEED_000.read_text(encoding="utf-8"), SEED_000.name)

    assert eval_dev.text == seed.text
    assert eval_dev.id == seed.id
    assert re.fullmatch(r"art_[0-9a-f]{16}", eval_dev.id)


def test_header_with_url_and_date_alias() -> None:
    raw = "Title: EU probe\nDATE: 2025-12-11\nurl: https://example.com/a?b=1\n\n" + BODY + "\n"
    article = parse_text_article(raw, "a.txt")

    assert article.title == "EU probe"
    assert article.published == date(2025, 12, 11)
    assert article.url == "https://example.com/a?b=1"
    assert article.text == BODY


def test_block_with_a_non_header_line_is_all_body() -> None:
    raw = "Title: not really a header\nBRUSSELS 1996-08-22\n\nSecond paragraph."
    article = parse_text_article(raw, "a.txt")

    assert article.title is None
    assert article.text == raw


def test_body_is_kept_verbatim_except_outer_whitespace_and_crlf() -> None:
    raw = "title: T\r\n\r\n\r\n  First “quoted” line.\r\n\r\n\r\nIt’s after two blank lines.  \r\n\r\n"
    article = parse_text_article(raw, "a.txt")

    assert article.text == "First “quoted” line.\n\n\nIt’s after two blank lines."


def test_non_iso_published_is_none_not_a_failure() -> None:
    article = parse_text_article("published: 6 February 2024\n\n" + BODY, "a.txt")

    assert article.published is None
    assert article.text == BODY


def test_header_without_body_raises_ingest_error() -> None:
    with pytest.raises(IngestError, match="no article body"):
        parse_text_article("title: Only a title\nsource: Nobody\n", "a.txt")
    assert issubclass(IngestError, ValueError)


def test_id_ignores_quote_style_whitespace_and_unicode_form() -> None:
    original = "Café owners said “it’s over”.\n\nThe end."
    reformatted = "  Cafe\u0301 owners   said \"it's over\".\nThe\tend.  "

    assert normalise_body_for_id(original) == "Café owners said \"it's over\". The end."
    assert normalise_body_for_id(reformatted) == normalise_body_for_id(original)
    assert parse_text_article(original, "a.txt").id == parse_text_article(reformatted, "b.txt").id


# --- HTML and JSONL ------------------------------------------------------------------


def test_html_main_text_without_scripts_or_styles(tmp_path: Path) -> None:
    write(tmp_path, "page.html", HTML_PAGE)
    articles, failures = read_articles(tmp_path)

    assert failures == []
    [article] = articles
    assert "registration fees for small" in article.text
    assert "Jane Smith" in article.text
    for leaked in ("SCRIPT_IN_HEAD", "SCRIPT_IN_BODY", "STYLE_TEXT", "document.write", "Copyright"):
        assert leaked not in article.text
    assert article.title == "Ministry cuts fees"
    assert article.published == date(2024, 3, 1)
    assert article.url == "https://example.com/news/fees"
    assert article.source_file == "page.html"


def test_html_without_article_text_fails(tmp_path: Path) -> None:
    write(tmp_path, "shell.htm", "<html><head><script>load()</script></head><body><div id=app></div></body></html>")
    articles, failures = read_articles(tmp_path)

    assert articles == []
    assert by_file(failures)["shell.htm"].startswith("no article text found in HTML")


def test_jsonl_good_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        '{"text": "  First article body.  ", "title": "One", "published": "2024-01-02", "url": "https://x.test/1"}',
        "",
        '{"title": "no text field"',
        '{"body": "Second article, from the body field.", "published": "yesterday"}',
        '["not", "an", "object"]',
        '{"text": "Third article.", "title": 42}',
    ]
    write(tmp_path, "feed.jsonl", "\n".join(lines) + "\n")
    articles, failures = read_articles(tmp_path)

    assert [a.source_file for a in articles] == ["feed.jsonl#L1", "feed.jsonl#L4"]
    first, second = articles
    assert (first.text, first.title, first.published, first.url) == (
        "First article body.",
        "One",
        date(2024, 1, 2),
        "https://x.test/1",
    )
    assert (second.text, second.published) == ("Second article, from the body field.", None)
    reasons = by_file(failures)
    assert set(reasons) == {"feed.jsonl#L3", "feed.jsonl#L5", "feed.jsonl#L6"}
    assert reasons["feed.jsonl#L3"].startswith("invalid JSON")
    assert "got an array" in reasons["feed.jsonl#L5"]
    assert "'title' must be a string" in reasons["feed.jsonl#L6"]


# --- bad input -----------------------------------------------------------------------


def test_bad_files_fail_with_reasons_and_good_files_still_load(tmp_path: Path) -> None:
    write(tmp_path, "a_good.txt", "title: Good\nsource: Wire\n\n" + BODY)
    write(tmp_path, "b_empty.txt", b"")
    write(tmp_path, "c_blank.md", " \n\t\r\n  \n")
    write(tmp_path, "d_binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    latin1 = "title: Café\n\nLe café de la gare a rouvert lundi, après des mois de travaux à Noël.\n"
    write(tmp_path, "e_latin1.txt", latin1.encode("latin-1"))
    with (tmp_path / "f_huge.txt").open("wb") as handle:
        handle.truncate(5_000_000)  # sparse: 5 MB on stat, nothing on disk
    write(tmp_path, "g_report.pdf", b"%PDF-1.7\n")
    write(tmp_path, "h_undecodable.txt", bytes(range(0x80, 0x100)) * 4)
    # Same article, different file name and layout: a duplicate of a_good.txt.
    write(tmp_path, "sub/z_copy.txt", BODY.replace("“", '"').replace("”", '"').replace("\n\n", "\n   "))
    write(tmp_path, "sub/y_other.txt", "A different article entirely.")

    articles, failures = read_articles(tmp_path)

    assert [a.source_file for a in articles] == ["a_good.txt", "e_latin1.txt", "sub/y_other.txt"]
    good, latin, _ = articles
    assert (good.title, good.source, good.text) == ("Good", "Wire", BODY)
    assert latin.title == "Café"
    assert latin.text == "Le café de la gare a rouvert lundi, après des mois de travaux à Noël."

    reasons = by_file(failures)
    assert set(reasons) == {
        "b_empty.txt",
        "c_blank.md",
        "d_binary.txt",
        "f_huge.txt",
        "g_report.pdf",
        "h_undecodable.txt",
        "sub/z_copy.txt",
    }
    assert reasons["b_empty.txt"].startswith("empty file")
    assert reasons["c_blank.md"].startswith("whitespace-only file")
    assert reasons["d_binary.txt"].startswith("binary file")
    assert "5,000,000 bytes" in reasons["f_huge.txt"]
    assert f"{MAX_ARTICLE_BYTES:,}-byte limit" in reasons["f_huge.txt"]
    assert reasons["g_report.pdf"].startswith("unsupported file type '.pdf'")
    assert reasons["h_undecodable.txt"].startswith("not decodable text")
    assert reasons["sub/z_copy.txt"] == "duplicate of a_good.txt (same article text)"


@pytest.mark.parametrize(
    "text",
    [
        # charset_normalizer alone reads this one as cp1250 ("aprčs"); the cp1252 preference fixes it.
        "Le café de la gare a rouvert ses portes lundi matin, après des mois de travaux.",
        "Der Bürgermeister äußerte sich zur Lage: Die Straße bleibt gesperrt.",
        "The café reopened on Monday, señor.",
    ],
)
def test_latin1_text_is_decoded(tmp_path: Path, text: str) -> None:
    write(tmp_path, "legacy.txt", (text + "\n").encode("latin-1"))
    articles, failures = read_articles(tmp_path)

    assert failures == []
    assert [a.text for a in articles] == [text]


@pytest.mark.parametrize(
    "content",
    [
        b"mostly printable text " * 50 + b"\x00" + b"more text " * 50,  # a single NUL is enough
        bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15]) * 30 + b"some ascii",  # control bytes, no NUL
    ],
    ids=["nul-byte", "control-bytes"],
)
def test_binary_content_is_reported(tmp_path: Path, content: bytes) -> None:
    write(tmp_path, "blob.txt", content)
    articles, failures = read_articles(tmp_path)

    assert articles == []
    assert [f.reason.split(" (")[0] for f in failures] == ["binary file"]


def test_too_large_file_is_refused_without_reading_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "big.txt", "x" * 101)
    write(tmp_path, "small.txt", "y" * 100)
    real_open = ingest._open_input

    def guarded_open(folder: Path, relative: str, *args: object):  # type: ignore[no-untyped-def]
        assert relative != "big.txt", "an oversized file must be refused from stat() alone"
        return real_open(folder, relative, *args)

    monkeypatch.setattr(ingest, "_open_input", guarded_open)
    articles, failures = read_articles(tmp_path, max_bytes=100)

    assert [a.source_file for a in articles] == ["small.txt"]
    assert failures == [
        IngestFailure(
            "big.txt",
            "file too large: 101 bytes is over the 100-byte limit; "
            "split it into one article per file or raise max_bytes",
        )
    ]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (FileNotFoundError, "file disappeared while reading"),
        (PermissionError, "permission denied"),
    ],
)
def test_os_errors_become_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[OSError], expected: str
) -> None:
    write(tmp_path, "ok.txt", BODY)
    write(tmp_path, "trouble.txt", "Some other article.")
    real_open = ingest._open_input

    def flaky_open(folder: Path, relative: str, *args: object):  # type: ignore[no-untyped-def]
        if relative == "trouble.txt":
            raise error(2, "simulated", str(folder / relative))
        return real_open(folder, relative, *args)

    monkeypatch.setattr(ingest, "_open_input", flaky_open)
    articles, failures = read_articles(tmp_path)

    assert [a.source_file for a in articles] == ["ok.txt"]
    [failure] = failures
    assert failure.source_file == "trouble.txt"
    assert failure.reason.startswith(expected)


def test_utf8_bom_and_utf16_are_text(tmp_path: Path) -> None:
    write(tmp_path, "bom.txt", "\ufefftitle: With BOM\n\nBody one.".encode("utf-8"))
    write(tmp_path, "wide.txt", "title: Wide\n\nBody two, naïve.".encode("utf-16"))
    articles, failures = read_articles(tmp_path)

    assert failures == []
    assert [(a.title, a.text) for a in articles] == [("With BOM", "Body one."), ("Wide", "Body two, naïve.")]


def test_walk_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    write(tmp_path, "b.txt", "Article b.")
    write(tmp_path, "a/c.md", "Article c.")
    write(tmp_path, ".hidden.txt", "Hidden file.")
    write(tmp_path, ".git/notes.txt", "Hidden directory.")
    write(tmp_path, "a/.DS_Store", b"\x00\x01")
    articles, failures = read_articles(tmp_path)

    assert failures == []
    assert [a.source_file for a in articles] == ["a/c.md", "b.txt"]


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        read_articles(tmp_path / "nope")


def test_article_is_frozen() -> None:
    article = parse_text_article(BODY, "a.txt")
    assert isinstance(article, Article)
    with pytest.raises(AttributeError):
        article.text = "changed"  # type: ignore[misc]
