"""The embedded default: llama.cpp's own OpenAI-compatible server on 127.0.0.1.

Running the model behind `llama_cpp.server` (rather than in-process) keeps one
code path for every backend: the pipeline always talks to an OpenAI-compatible
URL through `openai` + `instructor`. Through this server instructor's TOOLS mode
is grammar-constrained, so even a small model always returns parseable JSON.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from pipeline.backends.model_store import DEFAULT_MODEL, ensure_model
from pipeline.llm import EndpointConfig

log = logging.getLogger(__name__)

CONTEXT_TOKENS = 4096  # articles are chunked to fit; see pipeline/chunk.py
STARTUP_TIMEOUT_S = 180.0


class EmbeddedServerError(RuntimeError):
    """The local llama.cpp server did not start; the message includes its log tail."""


def _die_with_parent() -> None:
    """Linux: the server gets SIGKILL when the run that started it dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the finally-block below still stops it on a normal exit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def embedded_endpoint(model_name: str = DEFAULT_MODEL, *, threads: int | None = None, log_dir: Path | None = None) -> Iterator[EndpointConfig]:
    """Start llama.cpp's server for the embedded model; yield its endpoint; stop it."""
    model_path = ensure_model(model_name)
    port = _free_port()
    threads = threads or max(1, os.cpu_count() or 1)
    log_path = (log_dir or Path(tempfile.gettempdir())) / f"news-records-llama-server-{port}.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--model_alias", model_name,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(CONTEXT_TOKENS),
        "--n_threads", str(threads),
        "--n_threads_batch", str(threads),
    ]  # fmt: skip
    log.info("Loading embedded model %s with llama.cpp on 127.0.0.1:%d (log: %s) ...", model_name, port, log_path)
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        _wait_ready(proc, base_url, log_path)
        log.info("Embedded model ready at %s", base_url)
        yield EndpointConfig(base_url=base_url, model=model_name, backend="embedded-llama.cpp")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):
            log_path.unlink()


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise EmbeddedServerError(f"llama.cpp server exited with code {proc.returncode} while loading the model:\n{tail}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise EmbeddedServerError(f"llama.cpp server did not answer within {STARTUP_TIMEOUT_S:.0f} s; see {log_path}")
