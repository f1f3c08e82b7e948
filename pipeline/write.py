"""Writing: atomic record files, JSONL tables rebuilt from records, the run manifest.

Crash safety: every file is written to a hidden temporary sibling
(`.<name>.<pid>.<random>.tmp`), fsynced and renamed into place, so a reader
(or a crash, even SIGKILL) never sees half a file; a temporary file left by a
killed writer is removed by the next run (`remove_stale_temp_files`). The
JSONL tables are derived from `records/` on every run rather than appended
to, so a re-run or a crash can never leave duplicate rows.

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
# organisations.jsonl is the cross-article registry (pipeline/registry.py); per-article rows live here.
TABLES = ("quotes.jsonl", "article_organisations.jsonl", "policy_areas.jsonl")
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



def write_text_atomic(path: Path, content: str, *, root: Path | None = None) -> None:
    """Write `content` to `path` so that `path` is always either the old or the whole new file.

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
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
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
    for folder in (output_dir, output_dir / RECORDS_DIR, output_dir / FAILED_DIR, output_dir / RUNS_DIR, output_dir / SUPERSEDED_DIR):
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
    return {"quotes.jsonl": quotes, "article_organisations.jsonl": orgs, "policy_areas.jsonl": areas}


def supersede_records(output_dir: Path, current: dict[str, str]) -> list[str]:
    """Move aside records of inputs whose text has changed since they were extracted.

    `current` maps each input's source file to its article id in this run. A
    record for the same source file under another id (the file was edited,
    perhaps during a run) is moved to `superseded/`, so the tables hold only
    the current version. Records of ids still among the inputs are kept.
    """
    live_ids = set(current.values())
    moved: list[str] = []
    for record in list(iter_records(output_dir)):
        if record.article.id in live_ids:
            continue
        if current.get(record.article.source_file) not in (None, record.article.id):
            name = f"{record.article.id}.json"
            src_fd = open_dir_beneath(output_dir, [RECORDS_DIR])
            try:
                dst_fd = open_dir_beneath(output_dir, [SUPERSEDED_DIR], create=True)
                try:
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
                        moved.append(record.article.id)
                finally:
                    os.close(dst_fd)
            finally:
                os.close(src_fd)
    return moved


def rebuild_tables(output_dir: Path) -> dict[str, int]:
    """Rewrite the JSONL tables from every valid record; returns row counts."""
    rows: dict[str, list[str]] = {name: [] for name in TABLES}
    for record in iter_records(output_dir):
        for name, table in table_rows(record).items():
            rows[name].extend(json.dumps(row, ensure_ascii=False, default=str, sort_keys=True) for row in table)
    for name, lines in rows.items():
        write_text_atomic(output_dir / name, "".join(line + "\n" for line in lines), root=output_dir)
    return {name: len(lines) for name, lines in rows.items()}
