"""Writing: atomic record files, JSONL tables rebuilt from records, the run manifest.

Crash safety: every file is written to a hidden temporary sibling
(`.<name>.<pid>.<random>.tmp`), fsynced and renamed into place, so a reader
(or a crash, even SIGKILL) never sees half a file; a temporary file left by a
killed writer is removed by the next run (`remove_stale_temp_files`). The
JSONL tables are derived from `records/` rather than appended to, so a re-run
or a crash can never leave duplicate rows.

Incremental maintenance: a run reads only the records that changed since the
tables were last written. `scan_records` lists `records/` with one stat per
file (inode, size, mtime in ns: an atomic rename always gives a new inode);
`.locks/state/tables.json` holds, per record file, that signature, its source
file, extractor version and number of rows in each table, plus the signature
of each table file as written. A run re-reads the records whose signature is
new or changed, drops the rows of records gone, keeps every other record's
lines of the old tables verbatim (tables are ordered by record file name, each
record's rows contiguous) and writes the tables atomically, then the state. If
the state is missing, unreadable, of another version, or a table file is not
the one it describes (a crash between the two writes, a table edited or
deleted), the tables are rebuilt from every record (`update_tables(...,
full=True)` does that on demand); both ways give the same bytes.

Concurrency: two runs may share an input and output folder (a scheduled run
and one started from the UI). We chose advisory `fcntl.flock` locks in
`<output>/.locks/` over per-run staging plus an atomic publish, because
records are per-article files that are already published atomically; what
needs protecting is (a) two runs extracting the same article at once and
(b) the table rebuild. So:

* `article_lock(output, id)`: held while one article is extracted and its
  record (or failure) written. A run that had to wait for it re-checks the
  record first and reuses the one the other run just wrote, so two runs at
  once do the work about once, not twice. Locks are striped over 256 files
  by article id (never deleted, so no unlink race).
* `output_lock(output)`: held while the JSONL tables are rebuilt and the
  manifest written, so the last rebuild always sees every record.

flock locks are released by the kernel when a process dies, so a killed run
never leaves a folder locked. Without `fcntl` (Windows) locking is skipped.

Links: the run never writes through a symbolic link in its output folder.
Records, failure records, tables, run manifests and locks are written relative
to folder descriptors opened with O_NOFOLLOW (`pipeline.paths`), temporary
files are created with O_NOFOLLOW, and the rename replaces a link at the
target rather than following it. `move_aside_links` renames links that sit
where the run's own entries belong; records are read only from regular files.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

from pydantic import BaseModel

from pipeline.paths import LinkRefused, open_dir_beneath
from schemas.records import ArticleRecord, FailureRecord

RECORDS_DIR = "records"
FAILED_DIR = "failed"
SUPERSEDED_DIR = "superseded"
RUNS_DIR = "runs"
LOCKS_DIR = ".locks"
# Private bookkeeping of incremental maintenance (tables, registry): derived, safe to delete (full rebuild).
STATE_DIR = (LOCKS_DIR, "state")
TABLES_STATE = "tables.json"
STATE_VERSION = 1
# organisations.jsonl is the cross-article registry (pipeline/registry.py); per-article rows live here.
TABLES = ("quotes.jsonl", "article_organisations.jsonl", "policy_areas.jsonl", "unnamed_source_quotes.jsonl")
MANIFEST = "manifest.json"
_LOCK_STRIPES = 256
_TMP_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]+\.tmp$")
_STALE_TMP_S = 6 * 3600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)  # a temp file this old is abandoned even if its pid was reused

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- secrets

REDACTED = "[REDACTED]"
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_KEY_SHAPED = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}|(?i:bearer)\s+[A-Za-z0-9._\-~+/]{6,}=*")


def register_secret(value: str) -> None:
    """Remember a credential (an API key) so `redact` removes it wherever it shows up."""
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)
            _redact_log_records()


def _redact_log_records() -> None:
    """Every log record made from now on, by any library, has registered credentials removed from its message
    (e.g. instructor logs a 401 body that quotes the key). Installed once, when the first secret is registered."""
    make = logging.getLogRecordFactory()
    if getattr(make, "redacts", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        message = record.getMessage()
        if (clean := redact(message)) != message:
            record.msg, record.args = clean, None
        return record

    redacting.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)


def redact(text: str | None) -> str | None:
    """`text` without any registered credential or key-shaped token ('sk-...', 'Bearer ...').

    Applied to everything written about failures (failure records, manifest
    reasons). Never applied to records: an article's own text is kept exactly.
    """
    if not text:
        return text
    with _SECRETS_LOCK:
        known = sorted(_SECRETS, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, REDACTED)
    return _KEY_SHAPED.sub(REDACTED, text)



def write_text_atomic(path: Path, content: str | bytes, *, root: Path | None = None) -> None:
    """Write `content` (text, written as UTF-8, or bytes) to `path` so that `path` is always either the old or the whole new file.

    With `root` (the output folder), no folder between `root` and `path` may be a symbolic link:
    each is opened with O_NOFOLLOW (`pipeline.paths.open_dir_beneath`, raising `LinkRefused`), the
    temporary file is created and renamed relative to that folder's descriptor, and a link at
    `path` itself is replaced, never written through. Without `root` the same holds from
    `path`'s own folder down.
    """
    root = Path(root) if root is not None else path.parent
    dir_fd = open_dir_beneath(root, path.parent.relative_to(root).parts, create=True)
    tmp = f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644, dir_fd=dir_fd)
        try:
            binary = isinstance(content, bytes)
            with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": "\n"})) as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable, where the filesystem allows
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(output_dir: Path) -> list[Path]:
    """Delete temporary files left by writers that died (killed runs); returns what was removed."""
    removed: list[Path] = []
    if not output_dir.is_dir():
        return removed
    now = time.time()
    for folder in (output_dir, output_dir / RECORDS_DIR, output_dir / FAILED_DIR, output_dir / RUNS_DIR, output_dir / SUPERSEDED_DIR, output_dir.joinpath(*STATE_DIR)):
        if folder.is_symlink() or not folder.is_dir():  # never reach through a link
            continue
        for path in folder.iterdir():
            match = _TMP_NAME.match(path.name)
            if not match or not path.is_file():
                continue
            try:
                age = now - path.stat().st_mtime
            except OSError:
                continue
            if not _pid_alive(int(match.group(1))) or age > _STALE_TMP_S:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    if removed:
        log.info("Removed %d temporary file(s) left by an interrupted run in %s", len(removed), output_dir)
    return removed


def _open_lock(output_dir: Path, name: str) -> int:
    """The lock file `.locks/<name>`, opened without following links (a link put there is replaced)."""
    dir_fd = open_dir_beneath(output_dir, [LOCKS_DIR], create=True)
    try:
        for _ in range(2):
            try:
                return os.open(name, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o644, dir_fd=dir_fd)
            except OSError as error:
                if error.errno != errno.ELOOP:
                    raise
                os.unlink(name, dir_fd=dir_fd)  # a link, never a lock anyone holds: remove the link itself
        raise LinkRefused(f"{LOCKS_DIR}/{name} keeps being replaced by a symbolic link")
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def output_lock(output_dir: Path) -> Iterator[None]:
    """Exclusive lock for whole-folder writes (tables, manifest)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = _open_lock(output_dir, "output.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def article_lock(output_dir: Path, article_id: str) -> Iterator[bool]:
    """Exclusive lock for one article; yields True if another holder had to be waited for."""
    stripe = int(hashlib.sha256(article_id.encode("utf-8")).hexdigest()[:8], 16) % _LOCK_STRIPES
    if fcntl is None:  # pragma: no cover
        yield False
        return
    fd = _open_lock(output_dir, f"article-{stripe:03d}.lock")
    try:
        waited = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield waited
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: BaseModel | dict[str, Any], *, root: Path | None = None) -> None:
    text = data.model_dump_json(indent=2) if isinstance(data, BaseModel) else json.dumps(data, indent=2, ensure_ascii=False, default=str)
    write_text_atomic(path, text + "\n", root=root)


def record_path(output_dir: Path, article_id: str) -> Path:
    return output_dir / RECORDS_DIR / f"{article_id}.json"


def failure_path(output_dir: Path, source_file: str) -> Path:
    """`failed/<sanitised name>-<hash>.json`: always a plain file name inside `failed/`.

    The input's relative name is reduced to letters, digits, '.', '_' and '-'
    (so '/', '..' and leading dots cannot escape or hide) and shortened; the
    hash of the full name keeps distinct inputs ('a/b.txt', 'a_b.txt') apart.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", source_file).strip("._-")[:100].strip("._-") or "unnamed"
    digest = hashlib.sha256(source_file.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return output_dir / FAILED_DIR / f"{safe}-{digest}.json"


def write_record(output_dir: Path, record: ArticleRecord) -> Path:
    path = record_path(output_dir, record.article.id)
    write_json_atomic(path, record, root=output_dir)
    _remove_inside(output_dir, failure_path(output_dir, record.article.source_file))
    return path


def _remove_inside(output_dir: Path, path: Path) -> None:
    """Delete `path` (an entry of the output folder) if present, without reaching through a linked folder."""
    try:
        dir_fd = open_dir_beneath(output_dir, path.parent.relative_to(output_dir).parts)
    except OSError:
        return  # no such folder, or a link where it should be: nothing of ours to remove
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path.name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def write_failure(output_dir: Path, failure: FailureRecord) -> Path:
    """Write a quarantine record (credentials redacted from its reason and model output)."""
    failure = failure.model_copy(update={"reason": redact(failure.reason) or "", "last_model_output": redact(failure.last_model_output)})
    path = failure_path(output_dir, failure.source_file)
    write_json_atomic(path, failure, root=output_dir)
    return path


def read_regular(path: Path, *, dir_fd: int | None = None) -> bytes:
    """The bytes of `path` if it is a regular file; a link or special file there raises OSError, never followed."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(handle.fileno(), True)
        return handle.read()


def load_record(path: Path) -> ArticleRecord | None:
    """A stored record, or None when it is missing, no longer valid, or not a regular file (a link is not followed)."""
    try:
        return ArticleRecord.model_validate_json(read_regular(path))
    except (OSError, ValueError):
        return None


def iter_records(output_dir: Path) -> Iterable[ArticleRecord]:
    """Every valid record in `records/`, read without following links (a linked folder or file is skipped)."""
    try:
        dir_fd = open_dir_beneath(output_dir, [RECORDS_DIR])
    except OSError:
        return
    try:
        names = sorted(name for name in os.listdir(dir_fd) if name.endswith(".json") and not name.startswith("."))
        for name in names:
            try:
                yield ArticleRecord.model_validate_json(read_regular(Path(name), dir_fd=dir_fd))
            except (OSError, ValueError):
                continue
    finally:
        os.close(dir_fd)


def move_aside_links(output_dir: Path, names: Iterable[str], *, tag: str) -> list[dict[str, str]]:
    """Rename each entry among `names` of the output folder that is a symbolic link to `<name>.link-<tag>`.

    The run owns these names (records/, failed/, tables, manifest...). A link there would make
    it read or write wherever the link leads, so the link itself is moved aside (never followed,
    never deleted) and the run creates its own entry. Returns what was moved and why.
    """
    moved: list[dict[str, str]] = []
    for name in names:
        path = output_dir / name
        if not path.is_symlink():
            continue
        target = Path(os.path.realpath(path))
        where = "inside" if target.is_relative_to(output_dir.resolve()) else "outside"
        aside = f"{name}.link-{tag}"
        os.replace(path, output_dir / aside)  # renames the link, not what it points to
        reason = f"{name} was a symbolic link leading {where} the output folder; the run never writes through links, so the link was renamed to {aside} and a new {name} is used"
        log.warning("%s", reason)
        moved.append({"entry": name, "moved_to": aside, "reason": reason})
    return moved


def table_rows(record: ArticleRecord) -> dict[str, list[dict[str, Any]]]:
    """Flat rows for analytics tools; every row carries its article id."""
    article = {"article_id": record.article.id, "source_file": record.article.source_file, "published": record.article.published}
    quotes = [
        {**article, "quote_index": i, **q.model_dump(mode="json")} for i, q in enumerate(record.quotes)
    ]
    orgs = [{**article, **o.model_dump(mode="json")} for o in record.organisations]
    areas = [{**article, "rank": i + 1, **p.model_dump(mode="json")} for i, p in enumerate(record.policy_areas)]
    unnamed = [{**article, "quote_index": i, **u.model_dump(mode="json")} for i, u in enumerate(record.unnamed_source_quotes)]
    return {"quotes.jsonl": quotes, "article_organisations.jsonl": orgs, "policy_areas.jsonl": areas, "unnamed_source_quotes.jsonl": unnamed}


# --------------------------------------------------------------------------- incremental state

Signature = list[int]  # [inode, size, mtime in ns] of a file, as seen without following links


def _signature(st: os.stat_result) -> Signature:
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def file_signature(output_dir: Path, name: str) -> Signature | None:
    """The signature of the regular file `name` at the top of the output folder (None: missing, a link, not a file)."""
    try:
        st = os.stat(output_dir / name, follow_symlinks=False)
    except OSError:
        return None
    return _signature(st) if stat.S_ISREG(st.st_mode) else None


def scan_records(output_dir: Path) -> dict[str, Signature]:
    """Record file name -> signature, for every regular `*.json` file of `records/` (links skipped, nothing read)."""
    try:
        dir_fd = open_dir_beneath(output_dir, [RECORDS_DIR])
    except OSError:
        return {}
    found: dict[str, Signature] = {}
    try:
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                if not entry.name.endswith(".json") or entry.name.startswith("."):
                    continue
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        found[entry.name] = _signature(entry.stat(follow_symlinks=False))
    finally:
        os.close(dir_fd)
    return found


def _read_record_signed(dir_fd: int, name: str) -> tuple[ArticleRecord | None, Signature]:
    """A record file read without following links, and the signature of exactly what was read (None: invalid)."""
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{name} is not a regular file")
        os.set_blocking(handle.fileno(), True)
        data = handle.read()
    try:
        return ArticleRecord.model_validate_json(data), _signature(st)
    except ValueError:
        return None, _signature(st)


RecordCache = dict[str, tuple[Signature, ArticleRecord | None]]  # record file name -> (signature, record or None if invalid)


def read_changed_records(
    output_dir: Path, known: dict[str, Signature], cache: RecordCache | None = None, scan: dict[str, Signature] | None = None
) -> tuple[dict[str, Signature], dict[str, ArticleRecord | None]]:
    """(signatures of records/ now, the records whose signature is not the one in `known`, read now or taken from `cache`).

    A file that vanished or became a link between the scan and the read is left out, as
    `iter_records` would; an invalid record is read as None (it has no rows and no registry entries).
    `scan`: a scan of `records/` made under the same output lock (not made again).
    """
    scan = dict(scan) if scan is not None else scan_records(output_dir)
    changed = sorted(name for name, sig in scan.items() if known.get(name) != sig)
    read: dict[str, ArticleRecord | None] = {}
    if not changed:
        return scan, read
    dir_fd = open_dir_beneath(output_dir, [RECORDS_DIR])
    try:
        for name in changed:
            if cache is not None and name in cache and cache[name][0] == scan[name]:
                read[name] = cache[name][1]
                continue
            try:
                record, sig = _read_record_signed(dir_fd, name)
            except OSError:
                del scan[name]
                continue
            scan[name] = sig
            read[name] = record
            if cache is not None:
                cache[name] = (sig, record)
    finally:
        os.close(dir_fd)
    return scan, read


def load_state(output_dir: Path, name: str) -> dict[str, Any] | None:
    """A state file of `.locks/state/` (None: missing, unreadable, a link, or of another version)."""
    try:
        dir_fd = open_dir_beneath(output_dir, list(STATE_DIR))
    except OSError:
        return None
    try:
        data = json.loads(read_regular(Path(name), dir_fd=dir_fd))
    except (OSError, ValueError):
        return None
    finally:
        os.close(dir_fd)
    return data if isinstance(data, dict) and data.get("version") == STATE_VERSION else None


def save_state(output_dir: Path, name: str, data: dict[str, Any]) -> None:
    write_text_atomic(output_dir.joinpath(*STATE_DIR, name), json.dumps({**data, "version": STATE_VERSION}, ensure_ascii=False, separators=(",", ":")) + "\n", root=output_dir)


# --------------------------------------------------------------------------- records catalogue, supersede, tables


@dataclass
class Catalogue:
    """What the tables hold of each record file: name -> {sig, id, source_file, extractor, rows: [row count per table of TABLES]}.

    `rows` is None for a file that is not a valid record. `read` holds the records read to make
    it (new or changed since the state; every record when `full`); `cache` is shared with the
    registry so that a run reads each changed record once.
    """

    entries: dict[str, dict[str, Any]]
    full: bool
    cache: RecordCache = field(default_factory=dict)
    state: dict[str, Any] | None = None  # the tables state it was made against (None: full)

    @property
    def scan(self) -> dict[str, Signature]:
        """Record file name -> signature, as `scan_records` gave it (less what `supersede_records` moved)."""
        return {name: entry["sig"] for name, entry in self.entries.items()}

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return ((name, entry) for name, entry in self.entries.items() if entry["rows"] is not None)


def _catalogue_entry(record: ArticleRecord | None, sig: Signature) -> dict[str, Any]:
    if record is None:
        return {"sig": sig, "rows": None}
    return {
        "sig": sig, "id": record.article.id, "source_file": record.article.source_file, "extractor": record.provenance.extractor_version,
        "rows": [len(record.quotes), len(record.organisations), len(record.policy_areas), len(record.unnamed_source_quotes)],
    }  # fmt: skip


def _tables_state(output_dir: Path) -> dict[str, Any] | None:
    """The tables state, if the table files are exactly the ones it describes."""
    state = load_state(output_dir, TABLES_STATE)
    if state is None:
        return None
    records = state.get("records")
    well_formed = isinstance(records, dict) and all(
        isinstance(e, dict) and isinstance(e.get("sig"), list) and (e.get("rows") is None or (isinstance(e["rows"], list) and len(e["rows"]) == len(TABLES) and "id" in e))
        for e in records.values()
    )  # fmt: skip
    if not well_formed or state.get("tables") != {name: file_signature(output_dir, name) for name in TABLES}:
        log.info("The tables' incremental state does not match the tables: rebuilding them from every record")
        return None
    return state


def record_catalogue(output_dir: Path, *, full: bool = False, cache: RecordCache | None = None) -> Catalogue:
    """The catalogue of `records/` now, reading only the records changed since the tables were written."""
    state = None if full else _tables_state(output_dir)
    known = state["records"] if state else {}
    cache = {} if cache is None else cache
    scan, read = read_changed_records(output_dir, {name: entry["sig"] for name, entry in known.items()}, cache)
    entries = {name: (_catalogue_entry(read[name], sig) if name in read else known[name]) for name, sig in sorted(scan.items())}
    return Catalogue(entries, full=state is None, cache=cache, state=state)


def supersede_records(output_dir: Path, current: dict[str, str], catalogue: Catalogue | None = None) -> list[str]:
    """Move aside records of inputs whose text has changed since they were extracted.

    `current` maps each input's source file to its article id in this run. A
    record for the same source file under another id (the file was edited,
    perhaps during a run) is moved to `superseded/`, so the tables hold only
    the current version. Records of ids still among the inputs are kept.
    With `catalogue`, no record is read: ids and source files come from it.
    """
    catalogue = catalogue or record_catalogue(output_dir)
    live_ids = set(current.values())
    moved: list[str] = []
    for name, entry in list(catalogue.records()):
        if entry["id"] in live_ids:
            continue
        if current.get(entry["source_file"]) not in (None, entry["id"]):
            src_fd = open_dir_beneath(output_dir, [RECORDS_DIR])
            try:
                dst_fd = open_dir_beneath(output_dir, [SUPERSEDED_DIR], create=True)
                try:
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
                        moved.append(entry["id"])
                        del catalogue.entries[name]
                finally:
                    os.close(dst_fd)
            finally:
                os.close(src_fd)
    return moved


def _row_lines(record: ArticleRecord) -> dict[str, list[str]]:
    return {name: [json.dumps(row, ensure_ascii=False, default=str, sort_keys=True) for row in table] for name, table in table_rows(record).items()}


def _old_table_lines(output_dir: Path, known: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[bytes]]] | None:
    """The lines of each table as written (bytes), cut into each known record's block (None: they do not add up)."""
    names = sorted(known)
    blocks: dict[str, dict[str, list[bytes]]] = {name: {} for name in names}
    for t, table in enumerate(TABLES):
        try:
            data = read_regular(output_dir / table)
        except OSError:
            return None
        lines = data.split(b"\n")  # rows never hold a raw newline (JSON escapes it); other line breaks may be in text
        if lines[-1] != b"":
            return None
        lines.pop()
        at = 0
        for name in names:
            n = known[name]["rows"][t] if known[name]["rows"] is not None else 0
            blocks[name][table] = lines[at : at + n]
            at += n
        if at != len(lines):
            return None
    return blocks


def update_tables(output_dir: Path, *, full: bool = False, catalogue: Catalogue | None = None) -> dict[str, int]:
    """Bring the JSONL tables up to date with `records/`; returns row counts.

    Incremental (see the module docstring): only records new or changed since the tables'
    state are read; `full=True`, or a state that does not match the tables, rewrites them from
    every record. Either way the tables are the rows of every valid record, in record file
    name order, each row serialised the same way.
    """
    catalogue = catalogue if catalogue is not None else record_catalogue(output_dir, full=full)
    blocks, known = None, {}
    if not catalogue.full:
        state = catalogue.state
        known = state["records"] if state else {}
        blocks = _old_table_lines(output_dir, known) if state else None
        if blocks is None:
            log.info("The tables do not match their incremental state: rebuilding them from every record")
            catalogue = record_catalogue(output_dir, full=True, cache=catalogue.cache)
    rows: dict[str, list[bytes]] = {name: [] for name in TABLES}
    for name, entry in catalogue.entries.items():
        if entry["rows"] is None:
            continue
        old = blocks.get(name) if blocks is not None and known.get(name, {}).get("sig") == entry["sig"] else None
        if old is not None:
            for table in TABLES:
                rows[table].extend(old[table])
            continue
        cached = catalogue.cache.get(name)
        record = cached[1] if cached and cached[0] == entry["sig"] else None
        if record is None:  # pragma: no cover - every changed record was read into the cache
            record = load_record(output_dir / RECORDS_DIR / name)
        if record is None:
            continue
        for table, lines in _row_lines(record).items():
            rows[table].extend(line.encode("utf-8") for line in lines)
    for name, lines in rows.items():
        write_text_atomic(output_dir / name, b"".join(line + b"\n" for line in lines), root=output_dir)
    save_state(output_dir, TABLES_STATE, {"records": catalogue.entries, "tables": {name: file_signature(output_dir, name) for name in TABLES}})
    return {name: len(lines) for name, lines in rows.items()}
