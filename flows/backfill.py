"""A backfill: one folder of articles split into shards, one run of the extraction deployment per shard.

The shard runs go to the deployment's work pool (or to the `serve` process),
so every worker polling the pool takes some of them; an article belongs to
exactly one shard (`flows.extract_flow.in_shard`), so none is processed twice.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from pydantic import Field

from pipeline.run import Rerun

BACKFILL_FLOW_NAME = "backfill-articles"


def shard_parameters(
    shards: int,
    *,
    input_dir: str,
    output_dir: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    rules_only: bool | None = None,
    rerun: Rerun | None = None,
    concurrency: int | None = None,
) -> list[dict[str, Any]]:
    """The parameters of each shard run; unset options keep the target deployment's defaults."""
    common: dict[str, Any] = {"input_dir": input_dir, "shards": shards}
    optional = {"output_dir": output_dir, "base_url": base_url, "model": model, "rules_only": rules_only, "rerun": rerun, "concurrency": concurrency}
    common.update({k: v for k, v in optional.items() if v is not None})
    return [{**common, "shard": i} for i in range(shards)]


@flow(name=BACKFILL_FLOW_NAME, log_prints=True)
def backfill_articles(
    input_dir: str,
    deployment: str = "extract-articles/daily-workers",
    shards: Annotated[int, Field(ge=1, le=256)] = 4,
    output_dir: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    rules_only: bool | None = None,
    rerun: Rerun | None = None,
    concurrency: Annotated[int | None, Field(ge=1, le=32)] = None,
    poll_seconds: Annotated[float, Field(gt=0)] = 2.0,
) -> list[dict[str, Any]]:
    """Split `input_dir` into `shards` runs of the extraction deployment and wait for all of them.

    Args:
        input_dir: Folder of articles to backfill, as the workers see it.
        deployment: The extraction deployment ("flow name/deployment name") whose work pool runs the shards.
        shards: How many runs to split the folder into; workers share them out (more shards than workers balances better).
        output_dir: Where records are written (empty: the deployment's default).
        base_url: OpenAI-compatible endpoint (empty: the deployment's default).
        model: Model name at that endpoint (empty: the deployment's default).
        rules_only: Skip the LLM (empty: the deployment's default).
        rerun: Re-run policy, "changed", "missing" or "all" (empty: the deployment's default).
        concurrency: Articles at a time within each shard run (empty: the deployment's default).
        poll_seconds: How often to check the shard runs.
    """
    logger = get_run_logger()
    params = shard_parameters(
        shards, input_dir=input_dir, output_dir=output_dir, base_url=base_url, model=model,
        rules_only=rules_only, rerun=rerun, concurrency=concurrency,
    )  # fmt: skip
    runs = [run_deployment(deployment, parameters=p, timeout=0, flow_run_name=f"backfill-shard-{p['shard'] + 1}-of-{shards}") for p in params]
    logger.info("Started %d shard runs of %s: %s", len(runs), deployment, ", ".join(r.name for r in runs))
    pending = {r.id for r in runs}
    final: dict[Any, Any] = {}
    with get_client(sync_client=True) as client:
        while pending:
            time.sleep(poll_seconds)
            for run_id in list(pending):
                run = client.read_flow_run(run_id)
                if run.state is not None and run.state.is_final():
                    final[run_id] = run
                    pending.discard(run_id)
                    logger.info("%s finished: %s", run.name, run.state.name)
    rows = [
        {"shard": i + 1, "flow_run": final[r.id].name, "state": final[r.id].state.name, "seconds": round(final[r.id].total_run_time.total_seconds(), 1)}
        for i, r in enumerate(runs)
    ]
    create_table_artifact(table=rows, key="backfill-shards", description=f"Backfill of {input_dir} over {shards} runs of {deployment}")
    failed = [row for row in rows if row["state"] != "Completed"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {shards} shard runs did not complete: " + ", ".join(f"{r['flow_run']} ({r['state']})" for r in failed))
    return rows
