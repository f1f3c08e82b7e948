"""CAP coding stage: which Comparative Agendas Project major topics an article discusses, main topic first.

Keyword scoring over the title, lead and body (`keyword_topics`), the sentences a reviewer should read
for each code (`topic_evidence`), and the embedded model's tie-break between two close keyword leaders
(`llm_tie_break`). `pipeline/process.py` calls these; nothing here knows about runs or records.
"""

from __future__ import annotations

import re

from pipeline.extract import ask_main_topic, topic_system
from pipeline.llm import StructuredLLM
from pipeline.segment import SegmentedArticle

# Stems of words that signal each CAP major topic (general news vocabulary, matched at word starts).
TOPIC_STEMS: dict[int, tuple[str, ...]] = {
    1: ("econom", "gdp", "growth", "inflation", "deflation", "fiscal", "monetary", "stimul", "deficit", "budget", "tax", "interest rate", "recession", "consumption", "demand", "productiv", "industrial polic", "overcapacity", "central bank", "bond", "spending"),
    2: ("civil right", "discriminat", "minorit", "privacy", "free speech", "gender equal", "racis"),
    3: ("health", "hospital", "disease", "patient", "medic", "drug", "vaccin", "smok", "epidemic", "virus"),
    4: ("agricultur", "farm", "livestock", "cattle", "sheep", "lamb", "crop", "grain", "harvest", "veterinar", "meat", "dairy", "fisher"),
    5: ("labor", "labour", "worker", "wage", "employ", "layoff", "job", "union", "working condition"),
    6: ("educat", "school", "student", "teacher", "universit", "curricul"),
    7: ("environment", "pollut", "climate", "emission", "carbon", "conservation", "wildlife"),
    8: ("energy", "oil", "gas", "electricit", "power plant", "nuclear", "renewabl", "solar", "wind power", "coal"),
    9: ("immigra", "migrant", "refugee", "asylum", "visa"),
    10: ("transport", "rail", "road", "airline", "aviation", "shipping", "vehicle", "traffic"),
    12: ("crime", "criminal", "police", "court", "prosecut", "prison", "fraud", "lawsuit"),
    13: ("welfare", "pension", "elderly", "poverty", "social security", "low-income", "subsid"),
    14: ("housing", "property", "real estate", "home", "mortgage", "construction", "rent"),
    15: ("competition", "antitrust", "monopol", "merger", "acquisition", "consumer", "market", "compan", "business", "firm", "bank", "financ", "stock", "investor", "patent", "regulat", "fine"),
    16: ("defen", "military", "army", "weapon", "troop", "missile"),
    17: ("technolog", "innovat", "scien", "research", "artificial intelligence", "ai", "digital", "internet", "software", "semiconductor", "chip", "data", "online", "platform", "telecom", "search engine"),
    18: ("export", "import", "tariff", "trade", "foreign investment", "joint venture", "foreign compan", "customs"),
    19: ("diplomat", "foreign minister", "sanction", "treaty", "summit", "bilateral", "united nations", "embassy"),
    20: ("election", "government operation", "bureaucra", "civil servant", "parliament", "ministry", "cabinet", "administration"),
    21: ("public land", "water resource", "national park", "forest", "mining", "natural resource"),
    23: ("culture", "cultural", "arts", "museum", "sport", "film", "music", "tourism"),
}  # fmt: skip
TITLE_WEIGHT = 3.0
LEAD_WEIGHT = 2.0
SECOND_TOPIC_SHARE = 0.5


def _stem_pattern(code: int) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(s) for s in TOPIC_STEMS[code]) + r")", re.I)


_STEM_PATTERNS = {code: _stem_pattern(code) for code in TOPIC_STEMS}


def topic_scores(seg: SegmentedArticle, title: str | None = None) -> dict[int, float]:
    """Keyword hits per topic; the title and the lead paragraph count extra (news puts the topic first)."""
    scores: dict[int, float] = {code: 0.0 for code in TOPIC_STEMS}
    lead_end = seg.paragraphs[1][1] if len(seg.paragraphs) > 1 else len(seg.text)
    for code, pattern in _STEM_PATTERNS.items():
        if title:
            scores[code] += TITLE_WEIGHT * len(pattern.findall(title))
        for sentence in seg.sentences:
            hits = len(pattern.findall(sentence.text))
            scores[code] += hits * (LEAD_WEIGHT if sentence.end <= lead_end else 1.0)
    return scores


def keyword_topics(seg: SegmentedArticle, title: str | None = None) -> list[int]:
    """Rule CAP coding: the best-scoring topic, plus a second one scoring at least half as much."""
    scores = topic_scores(seg, title)
    ranked = sorted((c for c in scores if scores[c] > 0), key=lambda c: -scores[c])
    if not ranked:
        return []
    return [ranked[0]] + [c for c in ranked[1:2] if scores[c] >= SECOND_TOPIC_SHARE * scores[ranked[0]]]


def topic_evidence(seg: SegmentedArticle, codes: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Sentences that use a topic's keywords: where a reviewer should look."""
    evidence: dict[int, list[tuple[int, int]]] = {}
    for code in codes:
        pattern = _STEM_PATTERNS.get(code)
        evidence[code] = [(s.start, s.end) for s in seg.sentences if pattern is not None and pattern.search(s.text)][:5]
    return evidence


TIE_SHARE = 0.85


def llm_tie_break(llm: StructuredLLM, text: str, title: str | None, seg: SegmentedArticle, codes: list[int]) -> list[int]:
    """The main topic among the two keyword leaders, asked of the model; its answer is used only when the
    keywords cannot separate them (on the dev set the model's choice was worse than clear keyword leads)."""
    scores = topic_scores(seg, title)
    ranked = sorted((c for c in scores if scores[c] > 0), key=lambda c: -scores[c])
    options = ranked[:2] if len(ranked) >= 2 else [*ranked, *(c for c in (1, 20) if c not in ranked)][:2]
    main = ask_main_topic(llm, topic_system(text, title), options)
    if len(ranked) < 2 or scores[ranked[1]] < TIE_SHARE * scores[ranked[0]] or main not in ranked[:2]:
        return codes
    return [main] + [c for c in codes if c != main][:1]


def code_topics(
    seg: SegmentedArticle, title: str | None, llm: StructuredLLM | None = None
) -> tuple[list[int], dict[int, list[tuple[int, int]]]]:
    """The article's CAP codes (main topic first) and, for each, the sentences that show it."""
    codes = keyword_topics(seg, title)
    if llm is not None:
        codes = llm_tie_break(llm, seg.text, title, seg, codes)
    return codes, topic_evidence(seg, codes)
