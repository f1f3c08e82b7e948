"""The review page: one self-contained HTML file to look at a run's records (`outputs/review.html`).

`write_review_page(output_dir, manifest)` writes every article of the run with its quotes,
speakers and organisation mentions highlighted in the text (from the record's spans), a side
list of what was extracted (speaker, CAP codes, grounding status: does the span slice exactly
the text?) and the run's failures with their reasons. One file, inline CSS and JS, no
network: it opens from disk, offline, and can be mailed around.

The page's HTML is the Jinja2 template `pipeline/templates/review.html` (its CSS and script are
`review.css` and `review.js` beside it), so the page can be changed without touching Python.
This module only loads the run and computes plain values for the template.

Article text is untrusted. The template is rendered with autoescaping: every value is
HTML-escaped (quote marks included, so nothing can leave an attribute) unless it is the page's
own CSS, script or Content-Security-Policy; the CSP allows no network and only the page's own
script (by hash), so even text that escaped escaping could not load or run anything.

The terminal output of a run lives in `pipeline.terminal`, the Prefect artifacts in `flows.artifacts`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from pydantic import ValidationError

from pipeline.write import FAILED_DIR, MANIFEST, RECORDS_DIR, read_regular, write_text_atomic
from schemas.records import CAP_MAJOR_TOPICS, ArticleRecord, name_in_text

REVIEW_PAGE = "review.html"
TEMPLATES = Path(__file__).resolve().parent / "templates"
SCRIPT = (TEMPLATES / "review.js").read_text(encoding="utf-8")
STYLE = (TEMPLATES / "review.css").read_text(encoding="utf-8")

# Annotation layers, outermost first when spans start together.
LAYERS = ("cap", "quote", "org", "speaker")


def _escape(value: object) -> object:
    """Every template value, escaped as `html.escape(quote=True)` does; values marked safe pass as they are."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


@functools.cache
def _template(name: str = REVIEW_PAGE) -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, finalize=_escape, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    return env.get_template(name)


# --------------------------------------------------------------------------- highlighting


@dataclass(frozen=True)
class Annotation:
    start: int
    end: int
    layer: str  # one of LAYERS
    ann: str  # id shared by every fragment of this annotation (data-ann)
    classes: str
    title: str
    group: str | None = None  # e.g. every mention of one organisation (data-group)


@dataclass(frozen=True)
class Piece:
    """One step of highlighted text for the template: open a mark, close one, or a run of text."""

    open: Annotation | None = None
    frag: int = 0
    close: bool = False
    text: str = ""


def pieces(text: str, annotations: list[Annotation]) -> list[Piece]:
    """`text` cut at every annotation boundary, with the marks to open and close in between.

    Overlapping annotations nest; one that crosses another's end is split in fragments
    that share its data-ann, so the fragments of one annotation, read in document order,
    always spell exactly text[start:end].
    """
    anns = [a for a in annotations if 0 <= a.start < a.end <= len(text)]
    order = {id(a): (a.start, -a.end, LAYERS.index(a.layer), a.ann) for a in anns}
    points = sorted({0, len(text), *(a.start for a in anns), *(a.end for a in anns)})
    out: list[Piece] = []
    stack: list[Annotation] = []
    fragments: dict[str, int] = {}
    for left, right in zip(points, points[1:], strict=False):
        wanted = sorted((a for a in anns if a.start <= left and right <= a.end), key=lambda a: order[id(a)])
        keep = 0
        while keep < len(stack) and keep < len(wanted) and stack[keep] is wanted[keep]:
            keep += 1
        for _ in range(len(stack) - keep):
            stack.pop()
            out.append(Piece(close=True))
        for a in wanted[keep:]:
            fragments[a.ann] = fragments.get(a.ann, -1) + 1
            out.append(Piece(open=a, frag=fragments[a.ann]))
            stack.append(a)
        out.append(Piece(text=text[left:right]))
    out.extend(Piece(close=True) for _ in stack)
    return out


def highlight(text: str, annotations: list[Annotation]) -> str:
    """Escaped `text` with every annotation wrapped in <mark> elements (the template's `marked` macro)."""
    return str(_template("marks.html").module.marked(pieces(text, annotations)))


# --------------------------------------------------------------------------- loading a run


@dataclass
class ArticleView:
    source_file: str
    article_id: str | None
    status: str
    data: dict[str, Any] | None  # the record as stored (raw JSON), None when missing
    valid: bool
    problem: str | None


def _load_record(output_dir: Path, article_id: str) -> tuple[dict[str, Any] | None, bool, str | None]:
    path = output_dir / RECORDS_DIR / f"{article_id}.json"
    try:
        raw = read_regular(path).decode("utf-8")
        data = json.loads(raw)
    except (OSError, ValueError) as error:
        return None, False, f"record not readable: {error}"
    try:
        ArticleRecord.model_validate_json(raw)
    except ValidationError as error:
        return data, False, "record does not validate: " + "; ".join(e["msg"] for e in error.errors())[:2000]
    return data, True, None


def _articles(output_dir: Path, manifest: dict[str, Any]) -> list[ArticleView]:
    listed = manifest.get("articles")
    if listed is None:  # no per-article list: every stored record
        listed = [{"source_file": p.stem, "article_id": p.stem, "status": "stored"} for p in sorted((output_dir / RECORDS_DIR).glob("*.json"))]
    views = []
    for item in sorted(listed, key=lambda a: a.get("source_file") or ""):
        article_id = item.get("article_id")
        if item.get("status") == "failed" or not article_id:
            views.append(ArticleView(item.get("source_file", "?"), article_id, "failed", None, False, item.get("reason")))
            continue
        data, valid, problem = _load_record(output_dir, article_id)
        views.append(ArticleView(item.get("source_file") or (data or {}).get("article", {}).get("source_file", "?"), article_id, item.get("status", "?"), data, valid, problem))
    return views


def _failures(output_dir: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's failures, with the stored failure record's details when there is one."""
    stored: dict[str, dict[str, Any]] = {}
    failed = output_dir / FAILED_DIR
    for path in [] if failed.is_symlink() else sorted(failed.glob("*.json")):
        try:
            item = json.loads(read_regular(path))
            stored[item["source_file"]] = item
        except (OSError, ValueError, KeyError, TypeError):
            continue
    listed = manifest.get("failures")
    if listed is None:
        return list(stored.values())
    out = []
    for f in listed:
        detail = stored.get(f.get("source_file"), {})
        record_file = f.get("failure_record")
        if record_file:  # the exact quarantine record, when the manifest names it (inside the output folder only)
            path = (output_dir / record_file).resolve()
            if path.is_relative_to(output_dir.resolve()):
                with contextlib.suppress(OSError, ValueError):
                    detail = json.loads(read_regular(output_dir / record_file))
        out.append({**detail, **{k: v for k, v in f.items() if v is not None}})
    return out


def _registry_links(output_dir: Path) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, int], dict[str, Any]]]:
    """(article id, record org id) -> registry organisation; (article id, quote index) -> registry speaker."""
    orgs: dict[tuple[str, str], dict[str, Any]] = {}
    speakers: dict[tuple[str, int], dict[str, Any]] = {}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        for line in read_regular(output_dir / "organisations.jsonl").decode("utf-8").splitlines():
            row = json.loads(line)
            for ap in row.get("appearances", []):
                orgs[(ap["article_id"], ap["record_id"])] = row
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        for line in read_regular(output_dir / "speakers.jsonl").decode("utf-8").splitlines():
            row = json.loads(line)
            for ref in row.get("quotes", []):
                speakers[(ref["article_id"], ref["quote_index"])] = row
    return orgs, speakers


# --------------------------------------------------------------------------- values for the template


def _slice(text: str, span: dict[str, Any] | None) -> str | None:
    try:
        start, end = int(span["start"]), int(span["end"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None
    return text[start:end] if 0 <= start < end <= len(text) else None


def _speaker_spans(text: str, names: list[str]) -> list[tuple[int, int, str]]:
    spans = []
    for name in sorted(set(names), key=len, reverse=True):
        if len(name) < 2:
            continue
        for m in re.finditer(name_in_text(name), text):
            if not any(s < m.end() and m.start() < e for s, e, _ in spans):
                spans.append((m.start(), m.end(), name))
    return spans


def _caps(text: str, areas: list[dict[str, Any]], dom_id: str, annotations: list[Annotation]) -> list[dict[str, Any]]:
    """Policy areas with their evidence spans (highlighted) and whether code and name agree."""
    rows = []
    for rank, area in enumerate(areas, 1):
        code, name = area.get("code"), area.get("name")
        evidence = area.get("evidence") or []
        in_bounds = [e for e in evidence if _slice(text, e) is not None]
        for k, span in enumerate(in_bounds):
            annotations.append(Annotation(span["start"], span["end"], "cap", f"{dom_id}-c{rank}-{k}", f"cap-{code}", f"CAP {code} {name}: evidence", group=f"{dom_id}-c{rank}"))
        rows.append({"rank": rank, "code": code, "name": name, "in_text": len(in_bounds), "evidence": len(evidence), "known": CAP_MAJOR_TOPICS.get(code) == name})
    return rows


def _orgs(text: str, orgs: list[dict[str, Any]], aid: str, dom_id: str, reg_orgs: dict, annotations: list[Annotation]) -> list[dict[str, Any]]:
    """Organisations with their mentions (highlighted), grounding and registry entry."""
    rows = []
    for j, org in enumerate(orgs):
        names = {org.get("name"), *(org.get("aliases") or [])}
        mentions = org.get("mentions") or []
        sliced = [_slice(text, m) for m in mentions]
        for k, (span, s) in enumerate(zip(mentions, sliced, strict=True)):
            if s is not None:
                annotations.append(Annotation(span["start"], span["end"], "org", f"{dom_id}-o{j}-{k}", f"org-{org.get('type', 'other')}", f"{org.get('name')} ({org.get('type')}, {org.get('country') or 'no country'})", group=f"{dom_id}-o{j}"))
        reg = reg_orgs.get((aid, org.get("id")))
        rows.append({
            "index": j, "type": org.get("type"), "name": org.get("name"), "country": org.get("country"), "aliases": ", ".join(org.get("aliases") or []),
            "mentions": len(mentions), "grounded": all(s is not None and s in names for s in sliced),
            "registry": {"id": reg["id"], "name": reg["name"], "articles": len(reg.get("article_ids", []))} if reg else None,
        })  # fmt: skip
    return rows


def _quotes(text: str, data: dict[str, Any], aid: str, dom_id: str, reg_speakers: dict, annotations: list[Annotation]) -> list[dict[str, Any]]:
    """Quotes with their spans (highlighted), speaker, CAP codes, grounding and registry speaker; speakers highlighted too."""
    areas = data.get("policy_areas") or []
    org_by_id = {o.get("id"): o for o in data.get("organisations") or []}
    rows, person_names = [], []
    for i, quote in enumerate(data.get("quotes") or []):
        speaker = quote.get("speaker") or {}
        span = quote.get("span")
        sliced = _slice(text, span)
        if sliced is not None:
            annotations.append(Annotation(span["start"], span["end"], "quote", f"{dom_id}-q{i}", f"quote-{quote.get('type')}", f"{quote.get('type')} quote, {speaker.get('name')}"))
        if speaker.get("kind", "person") == "person" and speaker.get("name"):
            person_names.append(speaker["name"])
        codes = [
            a.get("code") for a in areas
            if span and any(e.get("start", 0) < span.get("end", 0) and span.get("start", 0) < e.get("end", 0) for e in a.get("evidence") or [])
        ]  # fmt: skip
        reg = reg_speakers.get((aid, i))
        excerpt = quote.get("text") or ""
        rows.append({
            "index": i, "type": quote.get("type"), "who": speaker.get("name"), "is_org": speaker.get("kind") == "organisation",
            "role": speaker.get("role"), "org_name": (org_by_id.get(speaker.get("organisation_id")) or {}).get("name"),
            "excerpt": excerpt[:240], "cut": len(excerpt) > 240, "codes": ", ".join(str(c) for c in codes),
            "grounded": sliced is not None and sliced == quote.get("text"),
            "bad": "span slices " + (repr(sliced[:80]) if sliced is not None else "outside the text") + ", not the quote text",
            "cue": quote.get("cue"), "speaker_id": reg["id"] if reg else None,
        })  # fmt: skip
    for n, (start, end, name) in enumerate(_speaker_spans(text, person_names)):
        annotations.append(Annotation(start, end, "speaker", f"{dom_id}-s{n}", "speaker", f"speaker: {name}", group=f"{dom_id}-speaker-{name}"))
    return rows


def _unnamed(text: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements of sources the article does not name: the source as printed, the excerpt, grounding."""
    rows = []
    for quote in data.get("unnamed_source_quotes") or []:
        excerpt = quote.get("text") or ""
        grounded = _slice(text, quote.get("span")) == excerpt and _slice(text, quote.get("source_span")) == quote.get("source")
        rows.append({"type": quote.get("type"), "source": quote.get("source"), "excerpt": excerpt[:240], "cut": len(excerpt) > 240, "cue": quote.get("cue"), "grounded": grounded})
    return rows


def _article(index: int, view: ArticleView, reg_orgs: dict, reg_speakers: dict) -> dict[str, Any]:
    """Everything the template shows of one article."""
    data = view.data or {}
    article = data.get("article") or {}
    text: str = article.get("text") or ""
    aid = view.article_id or f"failed{index}"
    dom_id = f"a-{index}"
    annotations: list[Annotation] = []
    caps = _caps(text, data.get("policy_areas") or [], dom_id, annotations)
    orgs = _orgs(text, data.get("organisations") or [], aid, dom_id, reg_orgs, annotations)
    quotes = _quotes(text, data, aid, dom_id, reg_speakers, annotations)
    meta: list[dict[str, str | None]] = [{"text": view.source_file, "url": None}, {"text": aid, "url": None}]
    meta += [{"text": str(article[key]), "url": None} for key in ("published", "source") if article.get(key)]
    url = article.get("url") or ""
    if re.match(r"^https?://", url):  # the only link on the page: web addresses only, never javascript: or file:
        meta.append({"text": url, "url": url})
    prov = data.get("provenance") or {}
    if prov:
        made = f"model {prov.get('model')} ({prov.get('backend')}), prompt {prov.get('prompt_version')}, extractor {prov.get('extractor_version') or 'unversioned'}"
        meta.append({"text": f"{made}, {prov.get('seconds')} s", "url": None})
    return {
        "dom_id": dom_id, "aid": aid, "source_file": view.source_file, "title": article.get("title") or view.source_file,
        "status": view.status, "valid": view.valid, "problem": view.problem, "meta": meta,
        "text": text, "pieces": pieces(text, annotations), "quotes": quotes, "orgs": orgs, "caps": caps,
        "unnamed": _unnamed(text, data),
    }  # fmt: skip


def render_review_page(output_dir: Path, manifest: dict[str, Any], links: tuple[dict, dict] | None = None) -> str:
    """The review page of one run as a string (see write_review_page).

    `links`: the registry's (organisation, speaker) links of the run's articles, as
    `pipeline.registry.Registry.links` gives them; None reads them from the registry files."""
    output_dir = Path(output_dir)
    views = _articles(output_dir, manifest)
    failures = [
        {
            "source_file": f.get("source_file"), "stage": f.get("stage"), "reason": f.get("reason"), "attempts": f.get("attempts"),
            "failed_at": f.get("failed_at"), "last_model_output": str(f["last_model_output"])[:4000] if f.get("last_model_output") else None,
        }
        for f in _failures(output_dir, manifest)
    ]  # fmt: skip
    reg_orgs, reg_speakers = links if links is not None else _registry_links(output_dir)
    articles = [_article(index, view, reg_orgs, reg_speakers) for index, view in enumerate(v for v in views if v.data is not None)]
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:; base-uri 'none'; form-action 'none'"
    run = {key: manifest.get(key, "?") for key in ("run_id", "model", "backend", "extractor_version", "records_written", "records_cached")}
    run.update(finished_at=manifest.get("finished_at", ""), inputs_seen=manifest.get("inputs_seen", len(views)))
    return _template().render(
        run=run, articles=articles, failures=failures, output_links=manifest.get("output_links") or [],
        csp=Markup(csp), style=Markup(STYLE), script=Markup(SCRIPT),  # the page's own, never article text
    )  # fmt: skip


def write_review_page(output_dir: Path, manifest: dict[str, Any] | None = None, links: tuple[dict, dict] | None = None) -> Path:
    """Write `output_dir/review.html` for the run in `manifest` (default: output_dir/manifest.json), atomically."""
    output_dir = Path(output_dir)
    if manifest is None:
        manifest = json.loads(read_regular(output_dir / MANIFEST))
    path = output_dir / REVIEW_PAGE
    write_text_atomic(path, render_review_page(output_dir, manifest, links), root=output_dir)
    return path
