"""The fine-tuned sentence encoder of the CAP stage: CAP class probabilities for a headline-sized text.

all-MiniLM-L6-v2 (22 M parameters, Apache-2.0), fine-tuned on CAP-coded New York Times headlines with a
linear head over its mean-pooled token vectors by `scripts/train_cap_encoder.py`, and shipped as two files:
`pipeline/resources/cap_encoder_v1.gguf` (the encoder, 8-bit, run by llama.cpp through llama-cpp-python,
which the project already installs for the embedded model) and `cap_encoder_v1_head.npz` (the head: plain
arrays, loaded without pickle). `pipeline/topics.py` averages its probabilities with the linear model's;
nothing here knows about articles.

The encoder reads at most MAX_TOKENS word pieces, as in training (headlines are shorter); a longer text is
cut at a word boundary first, so that the closing [SEP] token stays, as the tokenizer's truncation kept it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

RESOURCES = Path(__file__).resolve().parent / "resources"
ENCODER_FILE = RESOURCES / "cap_encoder_v1.gguf"
HEAD_FILE = RESOURCES / "cap_encoder_v1_head.npz"
FORMAT_VERSION = 1
MAX_TOKENS = 48  # word pieces, [CLS] and [SEP] included (the fine-tuning's max_length)


@dataclass
class CapEncoder:
    """Encoder + linear head. `probabilities` is safe to call from several threads (one at a time runs)."""

    encoder_file: Path
    weight: np.ndarray  # (classes, 384)
    bias: np.ndarray  # (classes,)
    classes: np.ndarray  # CAP and media codes, as in the corpus
    _llm: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, encoder_file: Path = ENCODER_FILE, head_file: Path = HEAD_FILE) -> CapEncoder:
        with np.load(head_file, allow_pickle=False) as data:
            if int(data["format_version"]) != FORMAT_VERSION:
                raise ValueError(f"{head_file}: CAP encoder head format {int(data['format_version'])}, expected {FORMAT_VERSION}")
            return cls(encoder_file, data["weight"].astype(np.float32), data["bias"].astype(np.float32), data["codes"].astype(int))

    def _model(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama

            if not self.encoder_file.is_file():
                raise FileNotFoundError(f"{self.encoder_file}: the CAP encoder is missing: news-records ships it in pipeline/resources/; check out or reinstall the package")
            self._llm = Llama(model_path=str(self.encoder_file), embedding=True, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=2, verbose=False)
        return self._llm

    def _fitted(self, text: str) -> str:
        """`text`, cut at a word boundary to at most MAX_TOKENS word pieces."""
        llm = self._model()
        if len(llm.tokenize(text.encode("utf-8"))) <= MAX_TOKENS:
            return text
        words = text.split()
        low, high = 0, len(words)  # the longest prefix of words that fits: words[:low] fits, words[:high+1] does not
        while low < high:
            middle = (low + high + 1) // 2
            if len(llm.tokenize(" ".join(words[:middle]).encode("utf-8"))) <= MAX_TOKENS:
                low = middle
            else:
                high = middle - 1
        if low:
            return " ".join(words[:low])
        pieces = llm.tokenize(text.encode("utf-8"))[1 : MAX_TOKENS - 1]  # one huge "word": its first pieces
        return llm.detokenize(pieces).decode("utf-8", "replace")

    def embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled token vectors, one row per text (an empty text reads as a single space)."""
        with self._lock:
            llm = self._model()
            rows = [llm.embed(self._fitted(t) if t.strip() else " ", normalize=False) for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (softmax of the head), columns in `classes` order."""
        scores = self.embeddings(texts) @ self.weight.T + self.bias
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)


@lru_cache(maxsize=1)
def load_cap_encoder() -> CapEncoder:
    """The shipped encoder, read once per process (the GGUF itself on first use)."""
    return CapEncoder.load()
