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
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOTS_ENV = "NEWS_RECORDS_ROOTS"

__all__ = ["ROOTS_ENV", "PathNotAllowed", "allowed_roots", "confine"]


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
