"""Looking at a run: a self-contained HTML review page, run summaries, terminal progress and a dry-run plan.

`write_review_page(output_dir, manifest)` writes `outputs/review.html`: every
article of the run with its quotes, speakers and organisation mentions
highlighted in the text (from the record's spans), a side list of what was
extracted (speaker, CAP codes, grounding status: does the span slice exactly
the text?) and the run's failures with their reasons. One file, inline CSS and
JS, no network: it opens from disk, offline, and can be mailed around.

Article text is untrusted. Every piece of it is HTML-escaped, and the page's
Content-Security-Policy allows no network and only the page's own script (by
hash), so even text that escaped escaping could not load or run anything.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pipeline.write import FAILED_DIR, MANIFEST, RECORDS_DIR, write_text_atomic
from schemas.records import CAP_MAJOR_TOPICS, ArticleRecord

if TYPE_CHECKING:
    from pipeline.run import ArticleOutcome, RunConfig

REVIEW_PAGE = "review.html"

# Annotation layers, outermost first when spans start together.
LAYERS = ("cap", "quote", "org", "speaker")


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


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


def highlight(text: str, annotations: list[Annotation]) -> str:
    """Escaped `text` with every annotation wrapped in <mark> elements.

    Overlapping annotations nest; one that crosses another's end is split in
    fragments that share its data-ann, so the fragments of one annotation,
    read in document order, always spell exactly text[start:end].
    """
    anns = [a for a in annotations if 0 <= a.start < a.end <= len(text)]
    order = {id(a): (a.start, -a.end, LAYERS.index(a.layer), a.ann) for a in anns}
    points = sorted({0, len(text), *(a.start for a in anns), *(a.end for a in anns)})
    out: list[str] = []
    stack: list[Annotation] = []
    fragments: dict[str, int] = {}
    for left, right in zip(points, points[1:], strict=False):
        wanted = sorted((a for a in anns if a.start <= left and right <= a.end), key=lambda a: order[id(a)])
        keep = 0
        while keep < len(stack) and keep < len(wanted) and stack[keep] is wanted[keep]:
            keep += 1
        for _ in range(len(stack) - keep):
            stack.pop()
            out.append("</mark>")
        for a in wanted[keep:]:
            fragments[a.ann] = fragments.get(a.ann, -1) + 1
            group = f' data-group="{esc(a.group)}"' if a.group else ""
            out.append(f'<mark class="hl hl-{a.layer} {esc(a.classes)}" data-layer="{a.layer}" data-ann="{esc(a.ann)}" data-frag="{fragments[a.ann]}"{group} title="{esc(a.title)}">')
            stack.append(a)
        out.append(esc(text[left:right]))
    out.extend("</mark>" for _ in stack)
    return "".join(out)


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
        raw = path.read_text(encoding="utf-8")
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
    for path in sorted((output_dir / FAILED_DIR).glob("*.json")):
        try:
            item = json.loads(path.read_text(encoding="utf-8"))
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
                    detail = json.loads(path.read_text(encoding="utf-8"))
        out.append({**detail, **{k: v for k, v in f.items() if v is not None}})
    return out


def _registry_links(output_dir: Path) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, int], dict[str, Any]]]:
    """(article id, record org id) -> registry organisation; (article id, quote index) -> registry speaker."""
    orgs: dict[tuple[str, str], dict[str, Any]] = {}
    speakers: dict[tuple[str, int], dict[str, Any]] = {}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        for line in (output_dir / "organisations.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for ap in row.get("appearances", []):
                orgs[(ap["article_id"], ap["record_id"])] = row
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        for line in (output_dir / "speakers.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for ref in row.get("quotes", []):
                speakers[(ref["article_id"], ref["quote_index"])] = row
    return orgs, speakers


# --------------------------------------------------------------------------- rendering


def _slice(text: str, span: dict[str, Any] | None) -> str | None:
    try:
        start, end = int(span["start"]), int(span["end"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None
    return text[start:end] if 0 <= start < end <= len(text) else None


def _status(ok: bool, good: str, bad: str) -> str:
    return f'<span class="ok" title="{esc(good)}">✓ {esc(good)}</span>' if ok else f'<span class="bad" title="{esc(bad)}">✗ {esc(bad)}</span>'


def _speaker_spans(text: str, names: list[str]) -> list[tuple[int, int, str]]:
    spans = []
    for name in sorted(set(names), key=len, reverse=True):
        if len(name) < 2:
            continue
        for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text):
            if not any(s < m.end() and m.start() < e for s, e, _ in spans):
                spans.append((m.start(), m.end(), name))
    return spans


def _render_article(index: int, view: ArticleView, reg_orgs: dict, reg_speakers: dict) -> str:
    data = view.data or {}
    article = data.get("article") or {}
    text: str = article.get("text") or ""
    aid = view.article_id or f"failed{index}"
    dom_id = f"a-{index}"
    orgs = data.get("organisations") or []
    quotes = data.get("quotes") or []
    areas = data.get("policy_areas") or []
    org_by_id = {o.get("id"): o for o in orgs}
    annotations: list[Annotation] = []

    # Policy areas: evidence spans, and which codes each quote falls under.
    cap_rows = []
    for rank, area in enumerate(areas, 1):
        code, name = area.get("code"), area.get("name")
        evidence = area.get("evidence") or []
        in_bounds = [e for e in evidence if _slice(text, e) is not None]
        for k, span in enumerate(in_bounds):
            annotations.append(Annotation(span["start"], span["end"], "cap", f"{dom_id}-c{rank}-{k}", f"cap-{code}", f"CAP {code} {name}: evidence", group=f"{dom_id}-c{rank}"))
        known = CAP_MAJOR_TOPICS.get(code) == name
        cap_rows.append(
            f'<li class="item" data-target="{dom_id}-c{rank}" data-kind="cap"><span class="badge cap">{esc(code)}</span> {esc(name)}'
            f'{" (main topic)" if rank == 1 else ""}<div class="meta">{len(in_bounds)}/{len(evidence)} evidence sentences in the text · '
            f'{_status(known, "CAP code and name agree", "not a CAP major topic")}</div></li>'
        )

    # Organisations and their mentions.
    org_rows = []
    for j, org in enumerate(orgs):
        names = {org.get("name"), *(org.get("aliases") or [])}
        mentions = org.get("mentions") or []
        sliced = [_slice(text, m) for m in mentions]
        grounded = all(s is not None and s in names for s in sliced)
        for k, (span, s) in enumerate(zip(mentions, sliced, strict=True)):
            if s is not None:
                annotations.append(Annotation(span["start"], span["end"], "org", f"{dom_id}-o{j}-{k}", f"org-{org.get('type', 'other')}", f"{org.get('name')} ({org.get('type')}, {org.get('country') or 'no country'})", group=f"{dom_id}-o{j}"))
        reg = reg_orgs.get((aid, org.get("id")))
        reg_html = (
            f'<div class="meta">registry <code>{esc(reg["id"])}</code> {esc(reg["name"])} · in {len(reg.get("article_ids", []))} article(s)</div>' if reg else ""
        )
        aliases = ", ".join(org.get("aliases") or [])
        org_rows.append(
            f'<li class="item" data-target="{dom_id}-o{j}" data-kind="org"><span class="badge org-{esc(org.get("type"))}">{esc(org.get("type"))}</span> '
            f'<b>{esc(org.get("name"))}</b> {esc(org.get("country") or "")}'
            f'{f"<div class=meta>aliases: {esc(aliases)}</div>" if aliases else ""}'
            f'<div class="meta">{len(mentions)} mention(s) · {_status(grounded, "mentions slice its names", "a mention does not slice its name or an alias")}</div>{reg_html}</li>'
        )

    # Quotes.
    quote_rows = []
    person_names = []
    for i, quote in enumerate(quotes):
        speaker = quote.get("speaker") or {}
        span = quote.get("span")
        sliced = _slice(text, span)
        grounded = sliced is not None and sliced == quote.get("text")
        if sliced is not None:
            annotations.append(Annotation(span["start"], span["end"], "quote", f"{dom_id}-q{i}", f"quote-{quote.get('type')}", f"{quote.get('type')} quote, {speaker.get('name')}"))
        if speaker.get("kind", "person") == "person" and speaker.get("name"):
            person_names.append(speaker["name"])
        codes = [
            a.get("code") for a in areas
            if span and any(e.get("start", 0) < span.get("end", 0) and span.get("start", 0) < e.get("end", 0) for e in a.get("evidence") or [])
        ]  # fmt: skip
        org = org_by_id.get(speaker.get("organisation_id"))
        reg = reg_speakers.get((aid, i))
        bad = "span slices " + (repr(sliced[:80]) if sliced is not None else "outside the text") + ", not the quote text"
        excerpt = quote.get("text") or ""
        extra = []
        if speaker.get("role"):
            extra.append(f'<div class="meta">{esc(speaker["role"])}</div>')
        if org:
            extra.append(f'<div class="meta">for {esc(org.get("name"))}</div>')
        tail = [f"CAP {esc(', '.join(str(c) for c in codes) or 'none')}", _status(grounded, "grounded", bad)]
        if quote.get("cue"):
            tail.append(f"cue {esc(quote['cue'])}")
        if reg:
            tail.append(f"speaker <code>{esc(reg['id'])}</code>")
        quote_rows.append(
            f'<li class="item" data-target="{dom_id}-q{i}" data-kind="quote" data-quote-index="{i}">'
            f'<span class="badge quote-{esc(quote.get("type"))}">{esc(quote.get("type"))}</span> '
            f'<b class="who">{esc(speaker.get("name"))}</b>{" (organisation)" if speaker.get("kind") == "organisation" else ""}'
            f'{"".join(extra)}<div class="excerpt">{esc(excerpt[:240])}{"…" if len(excerpt) > 240 else ""}</div>'
            f'<div class="meta">{" · ".join(tail)}</div></li>'
        )
    for n, (start, end, name) in enumerate(_speaker_spans(text, person_names)):
        annotations.append(Annotation(start, end, "speaker", f"{dom_id}-s{n}", "speaker", f"speaker: {name}", group=f"{dom_id}-speaker-{name}"))

    status_note = ""
    if view.problem:
        status_note = f'<p class="problem">{esc(view.problem)}</p>'
    meta_bits = [esc(view.source_file), esc(aid)]
    for key in ("published", "source"):
        if article.get(key):
            meta_bits.append(esc(article[key]))
    url = article.get("url") or ""
    if re.match(r"^https?://", url):
        meta_bits.append(f'<a href="{esc(url)}" rel="noopener noreferrer nofollow" target="_blank">{esc(url)}</a>')
    prov = data.get("provenance") or {}
    if prov:
        meta_bits.append(esc(f"model {prov.get('model')} ({prov.get('backend')}), prompt {prov.get('prompt_version')}, {prov.get('seconds')} s"))
    body = highlight(text, annotations) if text else '<p class="problem">No text.</p>'
    return f"""
<section class="article" id="{dom_id}" data-article-id="{esc(aid)}" data-source-file="{esc(view.source_file)}">
  <h2>{esc(article.get("title") or view.source_file)}</h2>
  <p class="meta">{" · ".join(meta_bits)} · <span class="status status-{esc(view.status)}">{esc(view.status)}</span> · {_status(view.valid, "valid record", "invalid record")}</p>
  {status_note}
  <div class="cols">
    <div class="text" lang="en">{body}</div>
    <aside>
      <h3>Quotes ({len(quotes)})</h3><ol class="items">{"".join(quote_rows) or "<li class=meta>none</li>"}</ol>
      <h3>Organisations ({len(orgs)})</h3><ul class="items">{"".join(org_rows) or "<li class=meta>none</li>"}</ul>
      <h3>CAP policy areas ({len(areas)})</h3><ul class="items">{"".join(cap_rows) or "<li class=meta>none</li>"}</ul>
    </aside>
  </div>
</section>"""


def _render_failures(failures: list[dict[str, Any]]) -> str:
    if not failures:
        return '<section class="article failures" id="failures"><h2>Failures</h2><p class="meta">No article failed in this run.</p></section>'
    rows = []
    for f in failures:
        output = f.get("last_model_output")
        details = f"<details><summary>last model output</summary><pre>{esc(str(output)[:4000])}</pre></details>" if output else ""
        rows.append(
            f'<tr class="failure"><td>{esc(f.get("source_file"))}</td><td>{esc(f.get("stage", ""))}</td>'
            f'<td class="reason">{esc(f.get("reason"))}{details}</td><td>{esc(f.get("attempts", ""))}</td><td>{esc(f.get("failed_at", ""))}</td></tr>'
        )
    return f"""
<section class="article failures" id="failures">
  <h2>Failures ({len(failures)})</h2>
  <table><thead><tr><th>file</th><th>stage</th><th>reason</th><th>attempts</th><th>failed at</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
</section>"""


STYLE = """
:root { --quote: #fff1a8; --quote-ind: #e4f3ff; --org: #d9f5d0; --speaker: #ffd9e8; --cap: #7a5cc9; --ink: #1d2230; --muted: #5f6878; --line: #dde1e8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f6f7f9; }
header { padding: 10px 18px; background: #1d2230; color: #fff; display: flex; flex-wrap: wrap; gap: 6px 22px; align-items: center; }
header h1 { font-size: 17px; margin: 0; }
header .stats span { margin-right: 14px; white-space: nowrap; }
header .bad-count { color: #ffb3b3; font-weight: 600; }
.legend { display: flex; gap: 10px; flex-wrap: wrap; }
.legend label { background: #fff; color: var(--ink); border-radius: 4px; padding: 1px 8px; cursor: pointer; font-size: 13px; }
.layout { display: grid; grid-template-columns: 250px 1fr; min-height: calc(100vh - 50px); }
nav { border-right: 1px solid var(--line); background: #fff; padding: 8px 0; position: sticky; top: 0; align-self: start; max-height: 100vh; overflow: auto; }
nav a { display: block; overflow-wrap: anywhere; padding: 7px 14px; color: var(--ink); text-decoration: none; border-left: 3px solid transparent; font-size: 14px; }
nav a:hover { background: #f0f2f6; }
nav a.current { border-left-color: #3a6ff7; background: #eef3ff; }
nav a .meta { display: block; }
nav a.failed-link { color: #b3261e; }
main { padding: 12px 20px; min-width: 0; }
section.article { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 18px; margin-bottom: 18px; }
h2 { font-size: 19px; margin: 2px 0 4px; }
h3 { font-size: 14px; margin: 12px 0 4px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.meta { color: var(--muted); font-size: 12.5px; }
.cols { display: grid; grid-template-columns: minmax(0, 1.6fr) minmax(300px, 1fr); gap: 20px; }
.text { white-space: pre-wrap; font: 15.5px/1.65 Georgia, "Times New Roman", serif; overflow-wrap: anywhere; }
aside { border-left: 1px solid var(--line); padding-left: 14px; max-height: 80vh; overflow: auto; position: sticky; top: 8px; align-self: start; }
.items { padding-left: 20px; margin: 0; }
.item { padding: 5px 4px; border-bottom: 1px dotted var(--line); cursor: pointer; font-size: 13.5px; }
.item:hover { background: #f5f7fb; }
.excerpt { font-family: Georgia, serif; font-size: 13px; color: #333; border-left: 3px solid var(--line); padding-left: 6px; margin: 2px 0; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 3px; background: #e9ecf1; font-weight: 600; }
.badge.quote-direct { background: var(--quote); }
.badge.quote-indirect { background: var(--quote-ind); }
.badge.cap { background: var(--cap); color: #fff; }
.badge[class*="org-"] { background: var(--org); }
.ok { color: #1b7a32; }
.bad { color: #b3261e; font-weight: 600; }
.problem { color: #b3261e; background: #fff0ef; padding: 6px 10px; border-radius: 4px; }
mark.hl { color: inherit; padding: 0; border-radius: 2px; }
mark.hl-quote { background: var(--quote); box-shadow: 0 1px 0 #d8b900; }
mark.hl-quote.quote-indirect { background: var(--quote-ind); box-shadow: 0 1px 0 #6aaee8; }
mark.hl-org { background: var(--org); outline: 1px solid #6cbf58; }
mark.hl-speaker { background: var(--speaker); outline: 1px solid #e0709b; font-weight: 600; }
mark.hl-cap { background: transparent; border-bottom: 2px solid var(--cap); }
body.hide-quote mark.hl-quote, body.hide-org mark.hl-org, body.hide-speaker mark.hl-speaker, body.hide-cap mark.hl-cap { background: transparent; outline: none; box-shadow: none; border: 0; font-weight: inherit; }
mark.flash { animation: flash 1.2s ease-out; }
@keyframes flash { 0% { outline: 3px solid #3a6ff7; } 100% { outline: 3px solid transparent; } }
.status-failed { color: #b3261e; font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { text-align: left; border-bottom: 1px solid var(--line); padding: 5px 8px; vertical-align: top; }
td.reason { white-space: pre-wrap; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f7f9; padding: 6px; max-height: 300px; overflow: auto; }
code { font-size: 12px; }
"""

SCRIPT = """
(function () {
  var sections = Array.prototype.slice.call(document.querySelectorAll("main > section"));
  var links = Array.prototype.slice.call(document.querySelectorAll("nav a"));
  function show(id) {
    if (!document.getElementById(id)) { id = sections.length ? sections[0].id : ""; }
    sections.forEach(function (s) { s.hidden = s.id !== id; });
    links.forEach(function (a) { a.classList.toggle("current", a.getAttribute("href") === "#" + id); });
  }
  links.forEach(function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); var id = a.getAttribute("href").slice(1); history.replaceState(null, "", "#" + id); show(id); window.scrollTo(0, 0); });
  });
  Array.prototype.slice.call(document.querySelectorAll(".legend input")).forEach(function (box) {
    function apply() { document.body.classList.toggle("hide-" + box.value, !box.checked); }
    box.addEventListener("change", apply); apply();
  });
  document.addEventListener("click", function (e) {
    var item = e.target.closest ? e.target.closest(".item[data-target]") : null;
    if (!item) { return; }
    var target = item.getAttribute("data-target");
    var marks = document.querySelectorAll('[data-ann="' + CSS.escape(target) + '"], [data-group="' + CSS.escape(target) + '"]');
    if (!marks.length) { return; }
    marks[0].scrollIntoView({ block: "center", behavior: "smooth" });
    Array.prototype.forEach.call(marks, function (m) { m.classList.remove("flash"); void m.offsetWidth; m.classList.add("flash"); });
  });
  show(location.hash ? location.hash.slice(1) : "");
})();
"""


def render_review_page(output_dir: Path, manifest: dict[str, Any]) -> str:
    """The review page of one run as a string (see write_review_page)."""
    output_dir = Path(output_dir)
    views = _articles(output_dir, manifest)
    failures = _failures(output_dir, manifest)
    reg_orgs, reg_speakers = _registry_links(output_dir)
    sections, nav = [], []
    shown = [v for v in views if v.data is not None]
    for index, view in enumerate(shown):
        data = view.data or {}
        title = (data.get("article") or {}).get("title") or view.source_file
        counts = f"{len(data.get('quotes') or [])} quotes · {len(data.get('organisations') or [])} orgs · CAP {', '.join(str(a.get('code')) for a in data.get('policy_areas') or []) or '-'}"
        flag = "" if view.valid else " · invalid"
        nav.append(f'<a href="#a-{index}" data-article-id="{esc(view.article_id)}">{esc(title)}<span class="meta">{esc(view.source_file)} · {esc(view.status)}{flag}<br>{esc(counts)}</span></a>')
        sections.append(_render_article(index, view, reg_orgs, reg_speakers))
    nav.append(f'<a href="#failures" class="{"failed-link" if failures else ""}">Failures ({len(failures)})</a>')
    sections.append(_render_failures(failures))
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:; base-uri 'none'; form-action 'none'"
    samples = {
        "quote": '<mark class="hl hl-quote quote-direct">direct</mark> / <mark class="hl hl-quote quote-indirect">indirect quotes</mark>',
        "speaker": '<mark class="hl hl-speaker">speakers</mark>',
        "org": '<mark class="hl hl-org">organisations</mark>',
        "cap": '<mark class="hl hl-cap">CAP evidence</mark>',
    }
    legend = "".join(
        f'<label><input type="checkbox" value="{layer}"{"" if layer == "cap" else " checked"}> {samples[layer]}</label>' for layer in ("quote", "speaker", "org", "cap")
    )
    stats = [
        f"run <code>{esc(manifest.get('run_id', '?'))}</code>",
        f"{esc(manifest.get('finished_at', ''))}",
        f"model {esc(manifest.get('model', '?'))} ({esc(manifest.get('backend', '?'))})",
        f"{esc(manifest.get('inputs_seen', len(views)))} inputs",
        f"{esc(manifest.get('records_written', '?'))} extracted",
        f"{esc(manifest.get('records_cached', '?'))} up to date",
        f'<span class="{"bad-count" if failures else ""}">{len(failures)} failed</span>',
    ]
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Review: run {esc(manifest.get("run_id", ""))}</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>News records review</h1><div class="stats">{"".join(f"<span>{s}</span>" for s in stats)}</div><div class="legend">{legend}</div></header>
<div class="layout">
<nav aria-label="articles">{"".join(nav)}</nav>
<main>{"".join(sections)}</main>
</div>
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_review_page(output_dir: Path, manifest: dict[str, Any] | None = None) -> Path:
    """Write `output_dir/review.html` for the run in `manifest` (default: output_dir/manifest.json), atomically."""
    output_dir = Path(output_dir)
    if manifest is None:
        manifest = json.loads((output_dir / MANIFEST).read_text(encoding="utf-8"))
    path = output_dir / REVIEW_PAGE
    write_text_atomic(path, render_review_page(output_dir, manifest), root=output_dir)
    return path


# --------------------------------------------------------------------------- Prefect artifacts (plain data)


def artifact_table(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-article counts for `prefect.artifacts.create_table_artifact(table=...)`."""
    return [
        {
            "file": a.get("source_file"),
            "status": a.get("status"),
            "quotes": a.get("quotes", 0),
            "organisations": a.get("organisations", 0),
            "cap_codes": ", ".join(str(c) for c in a.get("cap_codes") or []),
            "seconds": a.get("seconds", 0.0),
            "reason": a.get("reason") or "",
        }
        for a in manifest.get("articles", [])
    ]


def run_summary_markdown(manifest: dict[str, Any], review_page: Path | None = None, registry: dict[str, int] | None = None) -> str:
    """A markdown summary of the run for `prefect.artifacts.create_markdown_artifact(markdown=...)`."""
    failures = manifest.get("failures") or []
    lines = [
        f"# Run `{manifest.get('run_id')}`",
        "",
        f"- **{manifest.get('inputs_seen', 0)}** inputs: **{manifest.get('records_written', 0)}** extracted, "
        f"**{manifest.get('records_cached', 0)}** up to date, **{len(failures)}** failed ({manifest.get('seconds', 0)} s)",
        f"- model `{manifest.get('model')}` ({manifest.get('backend')}), prompt `{manifest.get('prompt_version')}`, schema `{manifest.get('schema_version')}`",
        f"- output: `{manifest.get('output_dir')}`",
    ]
    tables = manifest.get("tables") or {}
    if tables:
        lines.append("- tables: " + ", ".join(f"`{name}` {rows} rows" for name, rows in tables.items()))
    if registry:
        lines.append(f"- registry: {registry.get('organisations', 0)} organisations ({registry.get('organisations_new', 0)} new), {registry.get('speakers', 0)} speakers ({registry.get('speakers_new', 0)} new)")
    if review_page is not None:
        lines.append(f"- review page: `{review_page}` (open it in a browser; it needs no network)")
    if failures:
        lines += ["", "## Failures", "", "| file | reason |", "|---|---|"]
        for f in failures:
            reason = str(f.get("reason") or "").replace("|", "\\|").replace("\n", " ")[:300]
            lines.append(f"| {f.get('source_file')} | {reason} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- terminal: dry run and progress


def plan_rows(config: RunConfig) -> list[dict[str, Any]]:
    """What a run with `config` would do, per input, without writing anything (`--dry-run`)."""
    from pipeline.ingest import read_articles
    from pipeline.run import is_current

    articles, failures = read_articles(config.input_dir)
    rows = []
    for article in articles:
        current = config.rerun == "missing" and is_current(config, article) is not None
        rows.append({"source_file": article.source_file, "article_id": article.id, "chars": len(article.text), "action": "up to date" if current else "extract", "reason": None})
    rows += [{"source_file": f.source_file, "article_id": None, "chars": None, "action": "unreadable", "reason": f.reason} for f in failures]
    return sorted(rows, key=lambda r: r["source_file"])


def print_plan(rows: list[dict[str, Any]], console: Any = None) -> None:
    """The dry-run plan as a table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title="Dry run: nothing is written")
    for column in ("file", "article id", "chars", "action", "reason"):
        table.add_column(column, overflow="fold")
    styles = {"extract": "cyan", "up to date": "green", "unreadable": "red"}
    for r in rows:
        table.add_row(r["source_file"], r["article_id"] or "", "" if r["chars"] is None else str(r["chars"]), f"[{styles[r['action']]}]{r['action']}[/]", r["reason"] or "")
    console.print(table)
    counts = {a: sum(r["action"] == a for r in rows) for a in styles}
    console.print(f"{counts['extract']} to extract, {counts['up to date']} up to date, {counts['unreadable']} unreadable")


@contextlib.contextmanager
def progress_reporter(total: int, console: Any = None) -> Iterator[Callable[[ArticleOutcome], None]]:
    """A rich progress bar over the articles to extract; yields the `on_article` callback for `run_batch`.

        with progress_reporter(n_to_extract) as on_article:
            manifest = run_batch(config, on_article=on_article)
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]extracting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"), console=console, transient=False,
    )  # fmt: skip
    started = time.monotonic()
    with progress:
        task = progress.add_task("articles", total=total or None, last="")

        def on_article(outcome: ArticleOutcome) -> None:
            if outcome.status == "failed":
                line = f"[red]FAILED[/] {outcome.source_file}: {outcome.reason}"
            else:
                line = f"[green]{outcome.status}[/] {outcome.source_file}: {outcome.quotes} quotes, {outcome.organisations} orgs, CAP {outcome.cap_codes} ({outcome.seconds:.1f} s)"
            progress.console.print(line, markup=True, highlight=False)
            progress.update(task, advance=1, last=outcome.source_file)

        yield on_article
        progress.update(task, last=f"done in {time.monotonic() - started:.1f} s")
