"""The `llm` strategy through the Prefect flow, against a configured (fake, gold-replaying) endpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows import extract_flow
from pipeline.evaluate import load_gold
from pipeline.ingest import read_articles
from tests.support import API_KEY
from tests.support.oracle_server import OracleServer
from tests.support.paths import EVAL_DEV, require_eval_dev


def test_the_flow_form_offers_the_strategy_with_a_description() -> None:
    from prefect.utilities.callables import parameter_schema

    props = parameter_schema(extract_flow.extract_articles.fn).model_dump_for_openapi()["properties"]
    strategy = props["strategy"]
    options = next(s for s in strategy["anyOf"] if "enum" in s)["enum"] if "anyOf" in strategy else strategy["enum"]
    assert options == ["rules", "assist", "llm"]
    assert "llm" in strategy["description"] and "assist" in strategy["description"]


@pytest.mark.slow
def test_flow_run_with_strategy_llm_against_a_configured_endpoint(prefect_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    require_eval_dev()
    monkeypatch.setenv("NEWS_LLM_API_KEY", API_KEY)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in sorted(p.name for p in (EVAL_DEV / "articles").iterdir())[:2]:
        shutil.copy(EVAL_DEV / "articles" / name, inputs / name)
    articles, _ = read_articles(inputs)
    gold = load_gold(EVAL_DEV / "gold")
    with OracleServer([(a.text, gold[a.source_file]) for a in articles]) as server:
        params = {"input_dir": str(inputs), "output_dir": str(tmp_path / "out"), "base_url": server.base_url, "model": "oracle"}
        manifest = extract_flow.extract_articles(**params, strategy="llm")
        assert manifest["strategy"] == "llm" and not manifest["failures"] and manifest["records_written"] == 2
        asked = server.chunk_requests
        assert asked >= 2
        for path in (tmp_path / "out" / "records").glob("*.json"):
            record = json.loads(path.read_text())
            assert record["provenance"]["strategy"] == "llm"
            assert record["provenance"]["model_items"]["quotes"]["kept"] == len(record["quotes"]) > 0
        assert all(a["model_items"]["quotes"]["dropped"] for a in manifest["articles"]), "the manifest counts what was dropped"

        again = extract_flow.extract_articles(**params, strategy="llm")
        assert again["records_cached"] == 2 and server.chunk_requests == asked, "unchanged input: no model call"

        assisted = extract_flow.extract_articles(**params, strategy="assist")
        assert assisted["strategy"] == "assist" and assisted["records_written"] == 2, "another strategy is another cache key"
        assert server.chunk_requests == asked, "assist asks no chunk questions"
