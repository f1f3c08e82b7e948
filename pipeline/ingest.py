"""Ingestion: turn a folder of article files into `Article`s and readable failures.

Supported inputs are plain text (`.txt`, `.md`, with an optional `key: value`
header or a leading ` date YYYY-MM-DD ` line), HTML (`.html`, `.htm`, main
text via trafilatura) and JSON Lines (`.jsonl`, one article per line).
`read_articles` never raises for a bad input file: every problem becomes an
`IngestFailure` whose reason tells a person what is wrong and what to do.

Limits: a file over `MAX_ARTICLE_BYTES` is refused from its size alone
(never read), and an article body over `MAX_ARTICLE_CHARS` characters is
refused (news articles are far shorter; rule-based analysis of a longer text
would take minutes). Article text is only ever data: it is never executed and
never used to build a path.

Confinement: nothing outside the input folder is read. Entries are listed
with lstat, symbolic links (to files or folders, at any depth) are not
followed, and each file is opened component by component with O_NOFOLLOW
and O_NONBLOCK (`pipeline.paths.open_beneath`) and checked to be the very
regular file that was listed, so a link or FIFO swapped in after the listing
is refused. Links, FIFOs, sockets and device files become failures whose
reason begins "skipped:". The operator can allow links (`follow_links`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import stat
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
import trafilatura

from pipeline.paths import FOLLOW_LINKS_ENV, LinkRefused, open_beneath

__all__ = [
    "MAX_ARTICLE_BYTES",
    "MAX_ARTICLE_CHARS",
    "Article",
    "IngestError",
    "IngestFailure",
    "normalise_body_for_id",
    "parse_text_article",
    "read_articles",
]

MAX_ARTICLE_BYTES: int = 2_000_000  # a whole file (HTML pages carry a lot of markup)
MAX_ARTICLE_CHARS: int = 150_000  # an article's body text, about 25,000 words

_TEXT_SUFFIXES = frozenset({".txt", ".md"})
_HTML_SUFFIXES = frozenset({".html", ".htm"})
_JSONL_SUFFIX = ".jsonl"
_SUPPORTED_LIST = ".txt, .md, .html, .htm or .jsonl"

_HEADER_LINE = re.compile(r"^\s*(title|published|date|source|url)\s*:\s*.*$", re.IGNORECASE)
_DATE_LINE = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s*$", re.IGNORECASE)

# Curly and prime quote marks that editors and converters swap for straight ones.
_QUOTES_TO_ASCII = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
    }
)

# Checked before the NUL test: UTF-16/32 text is full of NUL bytes. UTF-32-LE
# comes first because its BOM starts with the UTF-16-LE one.
_UNICODE_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
# C0 controls other than the whitespace ones, plus DEL: rare in any real text.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\v") + b"\x7f"
_BINARY_SNIFF_BYTES = 8192
_MAX_CONTROL_RATIO = 0.1


class IngestError(ValueError):
    """An input that cannot become an article; the message says why and what to do."""


@dataclass(frozen=True)
class Article:
    """One article body plus the metadata its file declared."""

    id: str
    source_file: str
    text: str
    title: str | None
    published: datetime.date | None
    source: str | None
    url: str | None
    # When the text was read (epoch seconds): a record written after this by another run is reused.
    read_at: float = field(default_factory=time.time, compare=False, repr=False)


@dataclass(frozen=True)
class IngestFailure:
    """An input (file or JSONL line) that was not loaded, and why."""

    source_file: str
    reason: str


def read_articles(
    folder: Path, *, max_bytes: int = MAX_ARTICLE_BYTES, follow_links: bool = False
) -> tuple[list[Article], list[IngestFailure]]:
    """Load every article under `folder` (recursively, sorted by relative path).

    Hidden files and directories are skipped. Symbolic links are not followed
    unless `follow_links` (an operator's choice): each is listed as a failure
    that says where it leads, as are FIFOs, sockets and device files, which are
    never opened. Returns the articles and one failure per input that could not
    be loaded; raises `NotADirectoryError` only if `folder` itself is not a
    directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"input folder {str(folder)!r} does not exist or is not a directory")

    files, failures = _list_files(folder, follow_links=follow_links)
    articles: list[Article] = []
    first_seen: dict[str, str] = {}
    for relative, _path in files:
        for result in _ingest_file(folder, relative, max_bytes, follow_links):
            if isinstance(result, IngestFailure):
                failures.append(result)
            elif result.id in first_seen:
                reason = f"duplicate of {first_seen[result.id]} (same article text)"
                failures.append(IngestFailure(result.source_file, reason))
            else:
                first_seen[result.id] = result.source_file
                articles.append(result)
    return articles, failures


def parse_text_article(raw: str, source_file: str) -> Article:
    """Parse a plain-text article: optional header block or date line, then the body.

    Raises `IngestError` if there is no body text.
    """
    lines = raw.replace("\r\n", "\n").split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    meta: dict[str, str] = {}
    body_lines = lines

    if start < len(lines) and (date_line := _DATE_LINE.match(lines[start])):
        meta["published"] = date_line.group(1)
        body_lines = lines[start + 1 :]
    else:
        end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
        block = lines[start:end]
        # All-or-nothing, so a body that merely opens with "Source: ..." stays body.
        if block and all(_HEADER_LINE.match(line) for line in block):
            for line in block:
                key, _, value = line.partition(":")
                meta.setdefault(key.strip().lower(), value.strip())
            body_lines = lines[end:]

    body = "\n".join(body_lines)
    if not body.strip():
        hint = "add the article text after the header and a blank line" if meta else "add the article text"
        raise IngestError(f"no article body; {hint}")
    return _make_article(
        body,
        source_file,
        title=meta.get("title") or None,
        published=_parse_date(meta.get("published") or meta.get("date")),
        source=meta.get("source") or None,
        url=meta.get("url") or None,
    )


def normalise_body_for_id(text: str) -> str:
    """NFC, straight quotes and single spaces: the form an article's id is hashed from."""
    text = unicodedata.normalize("NFC", text).translate(_QUOTES_TO_ASCII)
    return " ".join(text.split())


def _make_article(
    body: str,
    source_file: str,
    *,
    title: str | None = None,
    published: datetime.date | None = None,
    source: str | None = None,
    url: str | None = None,
) -> Article:
    # Spans index into `text`, so only the outer whitespace and CRLFs are touched.
    text = body.replace("\r\n", "\n").strip()
    if len(text) > MAX_ARTICLE_CHARS:
        raise IngestError(
            f"article text too long: {len(text):,} characters is over the {MAX_ARTICLE_CHARS:,}-character limit; "
            "split it into one article per file"
        )
    digest = hashlib.sha256(normalise_body_for_id(text).encode("utf-8")).hexdigest()
    return Article(
        id=f"art_{digest[:16]}",
        source_file=source_file,
        text=text,
        title=title,
        published=published,
        source=source,
        url=url,
    )


def _parse_date(value: str | None) -> datetime.date | None:
    # Unparseable dates are common in scraped metadata and must not cost the article.
    if not value:
        return None
    value = value.strip()
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(value).date()
    except ValueError:
        return None


def _list_files(folder: Path, *, follow_links: bool = False) -> tuple[list[tuple[str, Path]], list[IngestFailure]]:
    """Regular files under `folder`, and a reason for every entry that is not read.

    Entries are classified with lstat: a symbolic link is never followed unless the operator
    allowed it (`follow_links`), and FIFOs, sockets and device files are never opened (reading a
    FIFO would block the run). Hidden files and folders are skipped silently.
    """
    files: list[tuple[str, Path]] = []
    failures: list[IngestFailure] = []
    root = Path(os.path.realpath(folder))
    visited: set[tuple[int, int]] = set()  # folders entered, so following links cannot loop

    def visit(directory: Path, prefix: str) -> None:
        try:
            info = os.stat(directory)
            visited.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as error:
            failures.append(IngestFailure(prefix.rstrip("/") or ".", f"could not list directory ({error.strerror}); check its permissions"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            relative, path = prefix + entry.name, Path(entry.path)
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode) and follow_links:
                    info = os.stat(path)  # the link's target (raises for a dangling link or a loop)
                    mode = info.st_mode
                    if stat.S_ISDIR(mode) and (info.st_dev, info.st_ino) in visited:
                        failures.append(IngestFailure(relative, "skipped: symbolic link back to a folder already read (a link loop)"))
                        continue
            except FileNotFoundError:
                failures.append(IngestFailure(relative, _link_reason(path, root) if entry.is_symlink() else "file disappeared while listing"))
                continue
            except OSError as error:
                failures.append(IngestFailure(relative, f"could not inspect ({error.strerror}); check it and re-run"))
                continue
            if stat.S_ISDIR(mode):
                visit(path, relative + "/")
            elif stat.S_ISREG(mode):
                files.append((relative, path))
            elif stat.S_ISLNK(mode):
                failures.append(IngestFailure(relative, _link_reason(path, root)))
            else:
                failures.append(IngestFailure(relative, _special_reason(mode)))

    visit(Path(folder), "")
    files.sort()
    return files, failures


def _link_reason(path: Path, root: Path) -> str:
    """Why a symbolic link was not read: where it leads (inside or outside the folder), never its target's content."""
    target = Path(os.path.realpath(path))
    if not os.path.lexists(target) or target.is_symlink():
        return "skipped: broken symbolic link (its target does not exist, or the links loop)"
    if target == root or target.is_relative_to(root):
        where = target.relative_to(root).as_posix() or "the input folder itself"
        return f"skipped: symbolic link to {where} inside the input folder; links are not followed (the target is read under its own name)"
    return (
        "skipped: symbolic link leading outside the input folder; links are not followed, so nothing outside "
        f"the input folder is read (an operator can allow links with --follow-links or {FOLLOW_LINKS_ENV}=1)"
    )


def _special_reason(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device file"
    else:
        kind = "a special file"
    return f"skipped: {kind}, not a regular file; it is never opened (reading it could block the run or touch a device)"


def _ingest_file(folder: Path, relative: str, max_bytes: int, follow_links: bool) -> list[Article | IngestFailure]:
    suffix = Path(relative).suffix.lower()
    if suffix not in _TEXT_SUFFIXES | _HTML_SUFFIXES | {_JSONL_SUFFIX}:
        kind = repr(suffix) if suffix else "(no extension)"
        return [IngestFailure(relative, f"unsupported file type {kind}; save articles as {_SUPPORTED_LIST}")]
    try:
        raw = _read_text(folder, relative, max_bytes, follow_links)
        if not raw.strip():
            raise IngestError("whitespace-only file: there is no article text; remove it or add the text")
        if suffix == _JSONL_SUFFIX:
            return _parse_jsonl(raw, relative)
        if suffix in _HTML_SUFFIXES:
            return [_parse_html(raw, relative)]
        return [parse_text_article(raw, relative)]
    except IngestError as error:
        return [IngestFailure(relative, str(error))]


_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_input(folder: Path, relative: str, follow_links: bool) -> int:
    """A read descriptor of `folder/relative`; no link below `folder` is followed unless allowed.

    O_NONBLOCK: a FIFO swapped in after the listing opens without blocking and is then refused.
    """
    if follow_links:
        return os.open(folder / relative, _READ_FLAGS)
    return open_beneath(folder, relative, _READ_FLAGS)


def _read_text(folder: Path, relative: str, max_bytes: int, follow_links: bool = False) -> str:
    path = folder / relative
    try:
        # stat first so an oversized file is refused without opening it; the opened file must then be this very file.
        listed = os.stat(path) if follow_links else os.lstat(path)
        if stat.S_ISLNK(listed.st_mode):
            raise IngestError("skipped: replaced by a symbolic link after it was listed; links are not followed")
        if not stat.S_ISREG(listed.st_mode):
            raise IngestError(_special_reason(listed.st_mode))
        if listed.st_size > max_bytes:
            raise _too_large(listed.st_size, max_bytes)
        fd = _open_input(folder, relative, follow_links)
        with os.fdopen(fd, "rb") as handle:
            opened = os.fstat(handle.fileno())
            if (opened.st_dev, opened.st_ino) != (listed.st_dev, listed.st_ino) or not stat.S_ISREG(opened.st_mode):
                raise IngestError("skipped: the file was replaced while it was being read (another file or a link took its place); re-run")
            os.set_blocking(handle.fileno(), True)
            data = handle.read(max_bytes + 1)
    except LinkRefused:
        raise IngestError("skipped: a symbolic link took the place of this file or one of its folders after listing; links are not followed") from None
    except FileNotFoundError:
        raise IngestError(
            "file disappeared while reading: it was listed but removed before it could be read; "
            "make sure nothing else moves files in the input folder during a run"
        ) from None
    except PermissionError:
        raise IngestError("permission denied while reading; make the file readable and re-run") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise IngestError(f"could not read file ({reason}); check the file and re-run") from None
    if len(data) > max_bytes:  # it grew after stat()
        raise _too_large(len(data), max_bytes)
    if not data:
        raise IngestError("empty file (0 bytes): there is no article text; remove it or add the text")
    return _decode(data)


def _too_large(size: int, max_bytes: int) -> IngestError:
    return IngestError(
        f"file too large: {size:,} bytes is over the {max_bytes:,}-byte limit; "
        "split it into one article per file or raise max_bytes"
    )


def _decode(data: bytes) -> str:
    for bom, codec in _UNICODE_BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError:
                raise IngestError(
                    f"not decodable text: the file starts with a {codec} byte-order mark "
                    f"but is not valid {codec}; re-save it as UTF-8"
                ) from None
    if _looks_binary(data):
        raise IngestError(f"binary file (NUL or control bytes), not text; supply articles as {_SUPPORTED_LIST}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    text = _decode_legacy(data)
    if text is None:
        raise IngestError(
            "not decodable text: it is not UTF-8 and no other encoding fits confidently; "
            "re-save the file as UTF-8"
        )
    return text


def _looks_binary(data: bytes) -> bool:
    if b"\x00" in data:
        return True
    sample = data[:_BINARY_SNIFF_BYTES]
    control = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return control / len(sample) > _MAX_CONTROL_RATIO


def _decode_legacy(data: bytes) -> str | None:
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:  # nothing under charset_normalizer's chaos threshold
        return None
    # Western single-byte code pages tie on chaos (cp1250 and cp1252 both read
    # French as clean text) and the tie is broken arbitrarily; Windows-1252, a
    # superset of Latin-1's printable range, is by far the likeliest for news text.
    for match in matches:
        if match.chaos <= best.chaos and "cp1252" in match.could_be_from_charset:
            try:
                return data.decode("cp1252")
            except UnicodeDecodeError:
                break
    return str(best)


def _parse_html(html: str, source_file: str) -> Article:
    try:
        body = trafilatura.extract(html, include_comments=False, include_tables=False, favor_precision=True)
        meta = trafilatura.extract_metadata(html)
    except Exception as error:  # lxml and trafilatura raise assorted types on malformed markup
        reason = f"{type(error).__name__}: {error}"
        raise IngestError(f"HTML could not be parsed ({reason}); check the file is a web page") from None
    if not body or not body.strip():
        raise IngestError(
            "no article text found in HTML; check the file is the article page itself, "
            "not a page that loads its text with JavaScript"
        )
    return _make_article(
        body,
        source_file,
        title=meta.title or None,
        published=_parse_date(meta.date),
        source=meta.sitename or None,
        url=meta.url or None,
    )


def _parse_jsonl(raw: str, source_file: str) -> list[Article | IngestFailure]:
    results: list[Article | IngestFailure] = []
    # split("\n"), not splitlines(): U+2028 and friends may sit raw inside JSON strings.
    for number, line in enumerate(raw.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{source_file}#L{number}"
        try:
            results.append(_parse_jsonl_record(line, where))
        except IngestError as error:
            results.append(IngestFailure(where, str(error)))
    return results


def _parse_jsonl_record(line: str, source_file: str) -> Article:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise IngestError(
            f"invalid JSON ({error.msg} at column {error.colno}); each line must be one JSON object"
        ) from None
    if not isinstance(record, dict):
        raise IngestError(f"expected a JSON object with a 'text' field, got {_json_type(record)}")

    body = record.get("text")
    if body is None:
        body = record.get("body")
    if not isinstance(body, str) or not body.strip():
        raise IngestError("no article text: the object needs a non-empty string 'text' (or 'body') field")

    fields: dict[str, str | None] = {}
    for key in ("title", "source", "url"):
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise IngestError(f"field {key!r} must be a string or null, got {_json_type(value)}")
        fields[key] = (value or "").strip() or None
    published = record.get("published")
    return _make_article(
        body,
        source_file,
        title=fields["title"],
        published=_parse_date(published) if isinstance(published, str) else None,
        source=fields["source"],
        url=fields["url"],
    )


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
