"""An OpenAI-compatible server that answers the `llm` strategy from gold annotations, with the noise of real models.

The pipeline reaches it through its production path (`openai` + `instructor`,
TOOLS mode). For each chunk request it finds the chunk (the text between
<<< and >>> of the system prompt) in one of the articles it was given, and
answers with that article's gold items that stand in the chunk, as a real
model would get them wrong:

* quote boundaries off by a few words (a quote starting three words early, or
  missing its last two words), curly marks written straight, a word with a
  letter dropped (needs the fuzzy alignment), long quotes given as first/last-word
  anchors;
* a speaker given by surname only after the first quote by that person;
* per article and chunk, **invented items**: a paraphrased quote that is not in
  the text, a statement attributed to someone the article never mentions, and
  an organisation under a second spelling;
* the same quote from two overlapping chunks (whatever the windows overlap);
* **an invalid answer once per article** (a CAP code outside the codebook), which
  instructor must re-ask.

Requests for the compact shape (slow local models: quotes by first and last
words, organisation names, bare codes) get the same items in that shape.

What it invented is listed in `invented` (article index, kind, text) so a test
can check that none of it reached a record. Gold is read, never hard-coded:
the server knows nothing about any particular article.

    with OracleServer([(article.text, gold_dict), ...]) as server:
        endpoint = server.endpoint_config()
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.support.fake_openai import FakeOpenAI, _Handler, _request_schema

INVENTED_SPEAKER = "Jordan Whitfield"  # nobody of this name is in any test article
PARAPHRASE_FILLERS = ("broadly", "notably", "clearly", "largely", "frankly")
INVALID_CAP_CODE = 11  # not a CAP major topic (the codebook skips 11 and 22)
_FOLD = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
_CHUNK = re.compile(r"<<<\n(.*?)\n>>>", re.S)


@dataclass(frozen=True)
class Invented:
    article: int
    kind: str  # "paraphrase", "unmentioned_speaker", "second_spelling"
    text: str


def locate(needle: str, chunk: str) -> tuple[int, int] | None:
    """Offsets of gold text in a chunk, quote-mark style and whitespace aside (the oracle's own, simple matcher)."""
    words = needle.translate(_FOLD).split()
    if not words:
        return None
    m = re.search(r"\s+".join(re.escape(w) for w in words), chunk.translate(_FOLD))
    return (m.start(), m.end()) if m else None


def _word_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


class OracleServer(FakeOpenAI):
    """Answers chunk requests from gold; every other request gets the fake server's schema-driven answer."""

    def __init__(self, articles: list[tuple[str, dict]], *, noise: bool = True, **options: Any) -> None:
        super().__init__(**options)
        self.articles = articles
        self.noise = noise
        self.invented: list[Invented] = []
        self.invalid_sent: set[int] = set()
        self.chunk_requests = 0
        self.prompt_chars: list[int] = []

    def start(self) -> OracleServer:
        super().start()
        assert self._httpd is not None
        self._httpd.RequestHandlerClass = type("_OracleBound", (_OracleHandler,), {"fake": self})
        return self

    # ---- answering

    def answer(self, body: dict[str, Any]) -> dict[str, Any] | None:
        system = next((m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "system"), "")
        found = _CHUNK.search(system)
        if not found or "quotes" not in json.dumps(_request_schema(body)[0]):
            return None
        chunk = found.group(1)
        article = next((i for i, (text, _) in enumerate(self.articles) if chunk in text), None)
        if article is None:
            return {"quotes": [], "organisations": [], "policy_areas": []}
        with self._lock:
            self.chunk_requests += 1
            self.prompt_chars.append(sum(len(m.get("content") or "") for m in body.get("messages", [])))
            first_of_article = article not in self.invalid_sent
            self.invalid_sent.add(article)
        if self.noise and first_of_article:  # a CAP code outside the codebook: instructor re-asks with the error
            return {"quotes": [], "organisations": [], "policy_areas": [{"code": INVALID_CAP_CODE, "evidence": None}]}
        text, gold = self.articles[article]
        answer = {
            "quotes": self._quotes(article, text, gold, chunk),
            "organisations": self._organisations(article, gold, chunk),
            "policy_areas": [{"code": a["code"], "evidence": self._first_sentence(chunk)} for a in gold.get("policy_areas", [])][:3],
        }
        return self._compact(answer) if "topics" in json.dumps(_request_schema(body)[0]) else answer

    @staticmethod
    def _compact(answer: dict) -> dict:
        """The compact shape slow local models are asked for: quotes by first/last 4 words, names, codes."""
        def anchors(text: str) -> tuple[str, str]:
            words = text.replace(" ... ", " ").split()
            return " ".join(words[:4]), " ".join(words[-4:])

        return {
            "quotes": [dict(zip(("start", "end"), anchors(q["text"]), strict=True), speaker=q["speaker"], type=q["type"]) for q in answer["quotes"]],
            "organisations": [o["name"] for o in answer["organisations"]],
            "topics": [a["code"] for a in answer["policy_areas"]],
        }

    def _first_sentence(self, chunk: str) -> str:
        return re.split(r"(?<=[.!?])\s", chunk.strip(), maxsplit=1)[0]

    def _speaker(self, gold: dict, name: str | None, seen: set[str], text: str) -> str:
        if not name:
            return ""
        person = next((s for s in gold.get("speakers", []) if s.get("name") == name), {})
        first = name not in seen
        seen.add(name)
        if not self.noise or first or person.get("kind") == "organisation" or len(name.split()) < 2:
            return name
        # Surname only: the part of the name the article also uses on its own.
        parts = name.split()
        return max((parts[0], parts[-1]), key=lambda p: len(re.findall(rf"(?<!\w){re.escape(p)}(?!\w)", text)))

    def _quotes(self, article: int, text: str, gold: dict, chunk: str) -> list[dict]:
        speakers = {s.get("name"): s for s in gold.get("speakers", [])}
        seen: set[str] = set()
        out: list[dict] = []
        spans = _word_spans(chunk)
        for i, quote in enumerate(gold.get("quotes", [])):
            where = locate(quote["text"], chunk)
            if where is None:
                continue
            shown = self._noisy_text(i, chunk, where, spans) if self.noise else chunk[where[0] : where[1]]
            info = speakers.get(quote.get("speaker"), {})
            out.append({
                "text": shown,
                "type": quote.get("type", "indirect"),
                "speaker": self._speaker(gold, quote.get("speaker"), seen, text),
                "speaker_role": info.get("role"),
                "speaker_organisation": info.get("organisation"),
                "cue": None,
            })  # fmt: skip
        if self.noise and out:
            real = out[0]
            words = real["text"].split()
            paraphrase = " ".join(w if k % 2 == 0 else PARAPHRASE_FILLERS[k % len(PARAPHRASE_FILLERS)] for k, w in enumerate(words)) + ", and that matters a great deal"
            out.append({**real, "text": paraphrase})
            out.append({**real, "speaker": INVENTED_SPEAKER, "speaker_role": "adviser", "speaker_organisation": None})
            with self._lock:
                self.invented += [Invented(article, "paraphrase", paraphrase), Invented(article, "unmentioned_speaker", real["text"])]
        return out

    def _noisy_text(self, i: int, chunk: str, where: tuple[int, int], spans: list[tuple[int, int]]) -> str:
        start, end = where
        inside = [k for k, (s, e) in enumerate(spans) if s >= start and e <= end]
        variant = i % 5
        if variant == 0 and inside:  # starts three words early ("he said that ...")
            first = max(0, inside[0] - 3)
            return chunk[spans[first][0] : end]
        if variant == 1 and len(inside) >= 8:  # misses its last two words
            return chunk[start : spans[inside[-3]][1]]
        if variant == 2:  # curly marks written straight
            return chunk[start:end].translate(_FOLD)
        if variant == 4 and len(inside) >= 10:  # a word "corrected": one letter of a long word dropped
            k = max(inside[2:-2] or inside, key=lambda k: spans[k][1] - spans[k][0])
            s, e = spans[k]
            return chunk[start:s] + chunk[s : e - 2] + chunk[e - 1 : end] if e - s >= 5 else chunk[start:end]
        if variant == 3 and len(inside) >= 14:  # first and last words only
            head = chunk[spans[inside[0]][0] : spans[inside[4]][1]]
            tail = chunk[spans[inside[-5]][0] : spans[inside[-1]][1]]
            return f"{head} ... {tail}"
        return chunk[start:end]

    def _organisations(self, article: int, gold: dict, chunk: str) -> list[dict]:
        out: list[dict] = []
        for org in gold.get("organisations", []):
            forms = [org["name"], *org.get("aliases", [])]
            written = [f for f in forms if locate(f, chunk)]
            if not written:
                continue
            out.append({
                "name": written[0], "canonical_name": org["name"], "aliases": written[1:],
                "type": org.get("type", "other"), "country": org.get("country"),
            })  # fmt: skip
        if self.noise and out:
            # The same organisation again under a second spelling, as a model listing it twice would.
            first = out[0]
            second = first["aliases"][0] if first["aliases"] else first["name"].lower()
            out.append({"name": second, "canonical_name": None, "aliases": [], "type": first["type"], "country": first["country"]})
            with self._lock:
                self.invented.append(Invented(article, "second_spelling", second))
        return out


class _OracleHandler(_Handler):
    fake: OracleServer

    def _answer(self, body: dict[str, Any], fault: Any) -> None:
        answer = self.fake.answer(body) if fault.kind == "good" else None
        if answer is None:
            super()._answer(body, fault)
            return
        _, tool_name = _request_schema(body)
        arguments = json.dumps(answer)
        self._send_json(200, self._completion(body, arguments, tool_name, "tool_calls" if tool_name else "stop"))
