"""The Prefect UI as a person uses it, in headless Chromium (Debian's package, driven by Playwright).

A served deployment (scripts/serve.sh) talks to the fake OpenAI-compatible
server; the browser starts a custom run with a different input folder, and
retries a failed run. Every outcome is checked through the API and on disk,
never only on screen. Screenshots go to NEWS_RECORDS_SCREENSHOTS (the README's
come from `NEWS_RECORDS_SCREENSHOTS=docs/screenshots pytest tests/test_prefect_ui.py`),
else to a temporary folder, so a test run leaves the checkout clean.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import PrefectServer, wait_until
from tests.support import API_KEY, audit_outputs, write_articles
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(os.environ.get("NEWS_RECORDS_SCREENSHOTS") or Path(tempfile.gettempdir()) / "news-records-screenshots")


@pytest.fixture(scope="module", autouse=True)
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _snap(page, path: Path) -> None:  # noqa: ANN001
    """Screenshot once the page has settled (the UI fades views in)."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1000)
    page.screenshot(path=str(path))


def _open_deployment(page, server: PrefectServer, name: str) -> None:  # noqa: ANN001
    page.goto(f"{server.ui_url}/deployments", wait_until="networkidle")
    page.get_by_role("link", name=name, exact=True).click()  # the deployment, found in the list
    page.wait_for_url("**/deployments/deployment/**")
    page.get_by_role("button", name="Run", exact=True).wait_for()


def _parameter_box(page, name: str):  # noqa: ANN001, ANN202
    label = page.locator("span.schema-form-property__label", has_text=re.compile(rf"^{name}\b"))
    return page.locator("div.schema-form-property").filter(has=label).locator("textarea")


def _submit_run(page, server: PrefectServer, deployment_id: str, wanted: Callable[[dict], bool], what: str) -> dict:  # noqa: ANN001
    """Click Submit on a Custom run form and return the flow run it created.

    The form validates the parameters on the server, creates the run and closes (Prefect 3.9 goes back to the
    deployment's Runs tab). Once, on a loaded CI machine, a click left the form in place and no run was made; a click
    that neither closed the form nor created a run within a minute is therefore repeated once, and a second failure
    reports what the page showed.
    """

    def the_run() -> dict | None:
        runs = server.flow_runs(deployment_id={"any_": [deployment_id]})
        return next((r for r in runs if wanted(r["parameters"])), None)

    for attempt in (1, 2):
        page.get_by_role("button", name="Submit").click()
        try:
            page.wait_for_url(lambda url: not urlsplit(url).path.endswith("/run"), timeout=60_000)  # the form closes
            break
        except PlaywrightTimeout:
            if the_run() is not None:
                break
            if attempt == 2:
                raise AssertionError(f"Submit twice left the form in place and created no run ({what}); the page showed:\n{page.inner_text('body')[:3000]}") from None
    return wait_until(the_run, timeout=180, what=what, interval=1)  # a hang guard: slow on a loaded machine


def _show_artifact(page, server: PrefectServer, run_id: str, key: str, path: Path) -> None:  # noqa: ANN001
    page.goto(f"{server.ui_url}/runs/flow-run/{run_id}", wait_until="networkidle")
    page.get_by_text("Artifacts", exact=True).first.click()
    page.get_by_text(key, exact=True).first.click()
    page.wait_for_url("**/artifacts/artifact/**")
    page.get_by_text("Show raw data").wait_for()
    _snap(page, path)


def test_custom_run_from_the_ui_with_another_input_folder(browser_page, serve_deployment, prefect_server: PrefectServer, fake: FakeOpenAI, tmp_path: Path) -> None:  # noqa: ANN001
    page, server = browser_page, prefect_server
    inbox, other, out = tmp_path / "inbox", tmp_path / "inbox-backlog", tmp_path / "records"
    write_articles(inbox, 2)
    other_names = write_articles(other, 3, start=10)
    serve_deployment(
        "--no-schedule", "--input", str(inbox), "--output", str(out), "--base-url", fake.base_url, "--model", "fake-ui",
        name="ui-custom", env={"NEWS_LLM_API_KEY": API_KEY},
    )  # fmt: skip
    deployment = server.deployment("extract-articles/ui-custom")
    fake.reset_counters()

    _open_deployment(page, server, "ui-custom")
    _snap(page, SCREENSHOTS / "deployment.png")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run", exact=True).click()
    page.wait_for_url(re.compile(r"/run(\?|$)"))
    box = _parameter_box(page, "input_dir")
    assert box.input_value() == str(inbox), "the form shows the deployment's default input folder"
    assert page.get_by_text("Folder of articles").first.is_visible(), "parameter descriptions are shown in the form"
    box.fill(str(other))
    _snap(page, SCREENSHOTS / "custom-run.png")
    run = _submit_run(page, server, deployment["id"], lambda p: p.get("input_dir") == str(other), "the flow run started from the UI")
    run = server.wait_for_flow_run(run["id"], timeout=180)
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["parameters"]["input_dir"] == str(other) and run["parameters"]["output_dir"] == str(out)
    audit = audit_outputs(out, other_names)
    assert set(audit.records) == set(other_names) and not audit.lost and not audit.broken
    assert fake.requests_count > 0, "the run used the deployment's endpoint"
    artifacts = server.artifacts(run["id"])
    assert {a["key"] for a in artifacts} == {"extraction-articles-ui-custom", "extraction-summary-ui-custom"}
    assert API_KEY not in json.dumps(artifacts) + json.dumps(server.logs(run["id"])) + json.dumps(run)

    page.goto(f"{server.ui_url}/runs/flow-run/{run['id']}", wait_until="networkidle")
    page.get_by_text("Artifacts", exact=True).first.click()
    page.get_by_text("extraction-summary-ui-custom", exact=True).wait_for()
    _snap(page, SCREENSHOTS / "flow-run.png")
    _show_artifact(page, server, run["id"], "extraction-articles-ui-custom", SCREENSHOTS / "artifact-table.png")
    _show_artifact(page, server, run["id"], "extraction-summary-ui-custom", SCREENSHOTS / "artifact-summary.png")


def test_failed_run_retried_from_the_ui_redoes_only_the_failed_article(browser_page, serve_deployment, prefect_server: PrefectServer, fake: FakeOpenAI, tmp_path: Path) -> None:  # noqa: ANN001
    page, server = browser_page, prefect_server
    inbox, out = tmp_path / "inbox", tmp_path / "records"
    names = write_articles(inbox, 3, start=20, markers={21: "Garbled Borough"})
    serve_deployment("--no-schedule", "--input", str(inbox), "--output", str(out), "--base-url", fake.base_url, "--model", "fake-ui-retry", "--rerun", "all", name="ui-retry")
    deployment = server.deployment("extract-articles/ui-retry")
    fake.clear()
    fake.always("schema_violation", match="Garbled Borough")
    run = server.api("POST", f"/deployments/{deployment['id']}/create_flow_run", json={})
    run = server.wait_for_flow_run(run["id"], timeout=180)
    assert run["state_type"] == "FAILED", "an article that failed must fail the run, so it can be retried"
    assert set(audit_outputs(out, names).records) == {names[0], names[2]}

    fake.clear()  # the endpoint recovers
    fake.reset_counters()
    page.goto(f"{server.ui_url}/runs/flow-run/{run['id']}", wait_until="networkidle")
    page.get_by_role("button", name="Retry").first.click()
    confirm = page.get_by_role("dialog").get_by_role("button", name="Retry")
    if confirm.count():
        confirm.click()
    _snap(page, SCREENSHOTS / "retry.png")
    wait_until(lambda: server.api("GET", f"/flow_runs/{run['id']}")["run_count"] >= 2, timeout=60, what="the retry to start", interval=1)
    run = server.wait_for_flow_run(run["id"], timeout=180, states={"COMPLETED", "FAILED", "CRASHED"})
    assert run["state_type"] == "COMPLETED", run["state"]

    audit = audit_outputs(out, names)
    assert set(audit.records) == set(names) and not audit.lost and not audit.broken
    redone = json.loads(next(p for p in (out / "records").glob("*.json") if names[1] in p.read_text()).read_text())
    assert fake.requests_count == redone["provenance"]["usage"]["calls"], "the retry redid finished articles"
    tasks = server.task_runs([run["id"]])
    states = {name: sorted(t["state_name"] for t in tasks if t["name"] == f"extract {name}") for name in names}
    assert states[names[0]] == states[names[2]] == ["Cached", "Completed"], states  # persisted results reused
    assert states[names[1]] == ["Completed", "Failed"], states


def test_run_from_the_ui_with_strategy_llm_against_a_configured_endpoint(browser_page, serve_deployment, prefect_server: PrefectServer, tmp_path: Path) -> None:  # noqa: ANN001
    """A person picks strategy "llm" in the Custom run form of a deployment served with "assist"; the model's
    (gold-replaying, noisy) answers become grounded records that say which strategy made them."""
    from pipeline.evaluate import load_gold, score_article
    from pipeline.ingest import read_articles
    from tests.support.oracle_server import OracleServer
    from tests.support.paths import EVAL_DEV, require_eval_dev

    require_eval_dev()
    page, server = browser_page, prefect_server
    inbox, out = tmp_path / "inbox", tmp_path / "records"
    inbox.mkdir()
    for name in sorted(p.name for p in (EVAL_DEV / "articles").iterdir())[:2]:
        (inbox / name).write_bytes((EVAL_DEV / "articles" / name).read_bytes())
    articles, _ = read_articles(inbox)
    gold = load_gold(EVAL_DEV / "gold")
    with OracleServer([(a.text, gold[a.source_file]) for a in articles]) as oracle:
        serve_deployment(
            "--no-schedule", "--input", str(inbox), "--output", str(out), "--base-url", oracle.base_url, "--model", "oracle-ui",
            "--strategy", "assist", name="ui-llm", env={"NEWS_LLM_API_KEY": API_KEY},
        )  # fmt: skip
        deployment = server.deployment("extract-articles/ui-llm")
        assert deployment["parameters"]["strategy"] == "assist"

        _open_deployment(page, server, "ui-llm")
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("Custom run", exact=True).click()
        page.wait_for_url(re.compile(r"/run(\?|$)"))
        prop = page.locator("div.schema-form-property").filter(has=page.locator("span.schema-form-property__label", has_text=re.compile(r"^strategy\b")))
        prop.get_by_text("Who extracts").first.wait_for()  # the strategy's description is shown in the form
        choice = prop.locator("button.p-select-button__control")
        assert choice.inner_text().strip() == "assist", "the form starts from the deployment's default"
        choice.focus()
        page.keyboard.press("Space")  # this select opens from the keyboard; a synthetic click does not open it
        page.locator(".p-select-option", has_text=re.compile(r"^\s*llm\s*$")).first.click()
        assert choice.inner_text().strip() == "llm"
        _snap(page, SCREENSHOTS / "custom-run-strategy-llm.png")
        run = _submit_run(page, server, deployment["id"], lambda p: p.get("strategy") == "llm", "the flow run started from the UI with strategy llm")
        run = server.wait_for_flow_run(run["id"], timeout=600)
        assert run["state_type"] == "COMPLETED", run["state"]
        assert oracle.chunk_requests >= 2, "the model was asked to extract, window by window"

    for article in articles:
        record = json.loads((out / "records" / f"{article.id}.json").read_text())
        assert record["provenance"]["strategy"] == "llm"
        assert record["quotes"] and all(article.text[q["span"]["start"] : q["span"]["end"]] == q["text"] for q in record["quotes"])
        assert record["provenance"]["model_items"]["quotes"]["dropped"], "the invented items were dropped and counted"
        scores = score_article(record, gold[article.source_file])
        assert scores.quote_speaker.f1 >= 0.9, (article.source_file, scores.quote_speaker)
