"""Path confinement for folders given as run parameters.

Input and output folders can come from the Prefect UI, a deployment's
parameters or the command line. Each is resolved (symlinks followed, `..`
collapsed, relative paths taken from the current working directory) and must
then lie inside one of the allowed roots; anything else is refused with a
`PathNotAllowed` error that says which roots are allowed and how to add one.

Allowed roots come from the environment variable `NEWS_RECORDS_ROOTS`
(folders separated by `os.pathsep`, ":" on Linux and macOS); by default they
are the current working directory and the system temporary directory.

Only folders named by the operator are ever used as paths. Nothing read from
an article (its text, title, URL or metadata) becomes part of a path: record
files are named by the article's content hash and failure files by a
sanitised, hashed form of the input file's relative name.

Below a confined folder, links are not followed: `open_beneath` and
`open_dir_beneath` open every path component relative to its parent with
O_NOFOLLOW, so neither the reader of the input folder (`pipeline.ingest`) nor
the writer of the output folder (`pipeline.write`) can be led outside it, even
by a link swapped in after a check. Only the operator can allow following
input links (`links_allowed`: `--follow-links`, or NEWS_RECORDS_FOLLOW_LINKS=1
where a worker runs); the Prefect UI offers no such parameter.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

ROOTS_ENV = "NEWS_RECORDS_ROOTS"

__all__ = [
    "FOLLOW_LINKS_ENV",
    "ROOTS_ENV",
    "LinkRefused",
    "PathNotAllowed",
    "allowed_roots",
    "confine",
    "links_allowed",
    "open_beneath",
    "open_dir_beneath",
]


class PathNotAllowed(ValueError):
    """A run parameter names a folder outside the configured roots."""


def allowed_roots() -> list[Path]:
    """The resolved roots: `NEWS_RECORDS_ROOTS`, or the working directory and the temp directory."""
    configured = os.environ.get(ROOTS_ENV, "")
    entries = [entry.strip() for entry in configured.split(os.pathsep) if entry.strip()]
    if not entries:
        entries = [str(Path.cwd()), tempfile.gettempdir()]
    roots: list[Path] = []
    for entry in entries:
        root = Path(entry)
        if not root.is_absolute():
            raise PathNotAllowed(f"{ROOTS_ENV} entry {entry!r} is not an absolute path; list absolute folders separated by {os.pathsep!r}")
        resolved = root.resolve()
        if resolved not in roots:
            roots.append(resolved)
    return roots


def confine(path: str | os.PathLike[str], *, what: str = "folder", roots: list[Path] | None = None) -> Path:
    """`path` resolved, if it lies inside an allowed root; raises `PathNotAllowed` otherwise."""
    raw = os.fspath(path)
    if not raw or not raw.strip():
        raise PathNotAllowed(f"{what} is empty; give a folder path")
    if "\x00" in raw:
        raise PathNotAllowed(f"{what} contains a NUL character; give a plain folder path")
    roots = allowed_roots() if roots is None else [Path(r).resolve() for r in roots]
    resolved = Path(raw).resolve()  # relative paths from the cwd; symlinks and '..' resolved
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    listing = ", ".join(str(r) for r in roots)
    raise PathNotAllowed(
        f"{what} {raw!r} resolves to {str(resolved)!r}, outside the allowed folders ({listing}); "
        f"use a folder inside one of them, or add its parent to {ROOTS_ENV} (separated by {os.pathsep!r})"
    )


# --------------------------------------------------------------------------- links below a root

FOLLOW_LINKS_ENV = "NEWS_RECORDS_FOLLOW_LINKS"


class LinkRefused(OSError):
    """A path below a run folder goes through a symbolic link (or a non-folder) where a folder was expected."""


def links_allowed() -> bool:
    """True when the operator allowed following symbolic links in the input folder.

    Set only by the operator: `news-records run --follow-links`, or NEWS_RECORDS_FOLLOW_LINKS=1 in the
    environment of a worker or `serve` process. It is deliberately not a flow parameter, so a run
    started from the Prefect UI cannot turn it on.
    """
    return os.environ.get(FOLLOW_LINKS_ENV, "").strip().lower() in {"1", "true", "yes"}


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_dir_beneath(root: Path, parts: tuple[str, ...] | list[str], *, create: bool = False) -> int:
    """A descriptor of the folder `root/parts...`, reached without following any link below `root`.

    Each component is opened relative to its parent's descriptor with O_NOFOLLOW, so a folder swapped
    for a link at any moment is refused (`LinkRefused`), never followed. With `create`, missing
    folders are made. The caller closes the descriptor.
    """
    if create:
        Path(root).mkdir(parents=True, exist_ok=True)  # the confined folder itself: the operator's path
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise LinkRefused(f"{part!r} is not a plain folder name")
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LinkRefused(f"{part!r} is a symbolic link or not a folder; links are not followed") from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_beneath(root: Path, relative: str, flags: int, mode: int = 0o644) -> int:
    """Open the file `root/relative` without following a link anywhere below `root` (O_NOFOLLOW on each step)."""
    *folders, name = relative.split("/")
    dir_fd = open_dir_beneath(root, folders)
    try:
        try:
            return os.open(name, flags | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode, dir_fd=dir_fd)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise LinkRefused(f"{name!r} is a symbolic link; links are not followed") from None
            raise
    finally:
        os.close(dir_fd)
