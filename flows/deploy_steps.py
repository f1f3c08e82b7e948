"""Pull steps for `prefect.yaml` deployments run by workers."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def enter_project() -> dict[str, str]:
    """Make the worker's own checkout of this project the run's working directory.

    A worker runs a flow run with the Python environment it was started in; with
    the project installed there (`pip install -e .`) this finds its checkout, so
    `prefect.yaml` names no machine-specific path. `NEWS_RECORDS_HOME` overrides it.
    """
    directory = Path(os.environ.get("NEWS_RECORDS_HOME") or PROJECT_ROOT).expanduser().resolve()
    if not (directory / "flows" / "extract_flow.py").is_file():
        raise FileNotFoundError(f"{directory} is not a news-records checkout (set NEWS_RECORDS_HOME to one)")
    os.chdir(directory)
    return {"directory": str(directory)}
