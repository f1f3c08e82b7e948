"""End to end on the embedded model, exactly as a user runs it: `news-records run` on seeds/.

Real llama.cpp server, real openai + instructor path, real Prefect flow. Slow (a few minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.records import ArticleRecord

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "pipeline.cli"]


def _run(output: Path, tmp_path: Path) -> dict:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("OPENAI_API_KEY", None)
    env.pop("NEWS_LLM_BASE_URL", None)
    result = subprocess.run([*CLI, "run", "--input", str(REPO / "seeds"), "--output", str(output)], cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((output / "manifest.json").read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    tmp = tmp_path_factory.mktemp("e2e")
    output = tmp / "outputs"
    return output, _run(output, tmp), tmp


def test_sample_article_record_meets_the_contract(first_run: tuple[Path, dict, Path]) -> None:
    output, manifest, _ = first_run
    assert manifest["records_written"] == 1 and not manifest["failures"]
    [path] = list((output / "records").glob("*.json"))
    record = ArticleRecord.model_validate_json(path.read_bytes())  # validators re-check every span

    assert record.provenance.backend == "embedded-llama.cpp"
    assert record.provenance.usage.calls > 0, "the embedded model was not asked anything"
    assert record.article.published is not None and record.article.published.isoformat() == "2024-02-06"

    person_quotes = [q for q in record.quotes if q.speaker.kind == "person"]
    assert len(person_quotes) >= 8
    assert len(record.organisations) >= 8
    assert {17, 1} & {area.code for area in record.policy_areas}
    for quote in record.quotes:
        assert record.article.text[quote.span.start : quote.span.end] == quote.text
        assert quote.text.strip()


def test_second_run_makes_no_llm_calls_and_leaves_records_identical(first_run: tuple[Path, dict, Path]) -> None:
    output, _, tmp = first_run
    before = {p.name: p.read_bytes() for p in (output / "records").glob("*.json")}
    manifest = _run(output, tmp)
    assert manifest["records_written"] == 0 and manifest["records_cached"] == 1
    assert manifest["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}
    after = {p.name: p.read_bytes() for p in (output / "records").glob("*.json")}
    assert after == before
