"""Where the shared dev set lives: `../shared/eval-dev` beside the checkout (as on CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVAL_DEV = Path(os.environ.get("NEWS_RECORDS_EVAL_DEV", REPO.parent / "shared" / "eval-dev"))


def require_eval_dev() -> None:
    """Skip without the dev set on a developer's machine; on CI its absence is a failure."""
    if not (EVAL_DEV / "articles").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the dev set is missing at {EVAL_DEV}; CI must run beside ../shared/eval-dev")
        pytest.skip(f"the dev set is not available at {EVAL_DEV}")
