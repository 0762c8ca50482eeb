"""A portable llama.cpp for ``--model local``: the build flags, a wheel cache keyed by them, a check after install.

pip builds llama-cpp-python from source, and llama.cpp's CMake default is
``GGML_NATIVE=ON``: the library is compiled for the CPU of the machine that
builds it (``-march=native``). Such a build is not portable, and on some CPUs
it does not even run where it was built: on an AVX-512 Xeon it died with a
segmentation fault in its first ``decode``, while the same version built with
the flags below ran correctly. So LORE builds llama.cpp with explicit flags
that run on any x86-64 CPU with AVX2 (Haswell, Zen and later), and on any
arm64 CPU with the generic ARMv8-A instruction set.

pip's wheel cache is keyed by the source distribution, not by ``CMAKE_ARGS``:
a wheel built once with native flags would be reused silently by the next
install. So the portable wheel is built with ``--no-cache-dir`` into LORE's
own cache folder, whose name holds the version and a hash of the flags
(``~/.cache/lore/wheels/llama_cpp_python-0.3.36-<key>/``), and installed from
that file. pip records the file's URL in the installed distribution's
``direct_url.json`` (PEP 610): :func:`installed_build` reads it to tell a
portable build from any other, so an older native build in an existing
environment is found and replaced.

This file uses the standard library only: ``./dev.sh`` runs it as a script,
with the environment's interpreter, before LORE itself is installed::

    python lore/llm/build.py install --lock requirements.lock   # build (or reuse) and install; check it
    python lore/llm/build.py status                            # what is installed, and how it was built
    python lore/llm/build.py flags                             # the CMAKE_ARGS for this machine

Installed LORE users run the same with ``python -m lore.llm.build install``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

#: the distribution that builds llama.cpp
DIST = "llama-cpp-python"
#: the version installed when no lock file names one (kept equal to requirements.lock's pin by a test)
DEFAULT_VERSION = "0.3.36"
#: x86-64: AVX2 with FMA and F16C (every x86-64 CPU since 2013-2015), never the build machine's own extensions
X86_64_ARGS: tuple[str, ...] = ("-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON",
                                "-DGGML_F16C=ON", "-DGGML_AVX512=OFF")
#: arm64 and anything else: the compiler's generic target for the architecture
GENERIC_ARGS: tuple[str, ...] = ("-DGGML_NATIVE=OFF",)


def portable_cmake_args(machine: str | None = None) -> tuple[str, ...]:
    """The CMake flags of a portable llama.cpp build for ``machine`` (``platform.machine()`` by default).

    >>> portable_cmake_args("x86_64")[:3]
    ('-DGGML_NATIVE=OFF', '-DGGML_AVX=ON', '-DGGML_AVX2=ON')
    >>> portable_cmake_args("aarch64")
    ('-DGGML_NATIVE=OFF',)
    """
    machine = (machine or platform.machine()).lower()
    return X86_64_ARGS if machine in ("x86_64", "amd64") else GENERIC_ARGS


def cmake_args_text(machine: str | None = None) -> str:
    """The flags as one ``CMAKE_ARGS`` value.

    >>> cmake_args_text("arm64")
    '-DGGML_NATIVE=OFF'
    """
    return " ".join(portable_cmake_args(machine))


def build_key(version: str, args: Sequence[str], *, machine: str | None = None,
              python_tag: str | None = None) -> str:
    """A short hash naming one build: the version, the flags, the machine and the Python it is for.

    >>> k = build_key("0.3.36", ("-DGGML_NATIVE=OFF",), machine="x86_64", python_tag="cp311")
    >>> len(k), k == build_key("0.3.36", ("-DGGML_NATIVE=ON",), machine="x86_64", python_tag="cp311")
    (12, False)
    """
    machine = (machine or platform.machine()).lower()
    python_tag = python_tag or f"cp{sys.version_info.major}{sys.version_info.minor}"
    text = json.dumps([version, list(args), machine, python_tag])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """``$LORE_WHEEL_CACHE``, else ``$XDG_CACHE_HOME/lore/wheels``, else ``~/.cache/lore/wheels``."""
    env = os.environ if env is None else env
    if env.get("LORE_WHEEL_CACHE"):
        return Path(env["LORE_WHEEL_CACHE"]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lore" / "wheels"


def wheel_dir(version: str, key: str, env: Mapping[str, str] | None = None) -> Path:
    """The folder holding the portable wheel of one build."""
    return cache_root(env) / f"llama_cpp_python-{version}-{key}"


def locked_version(lock: Path) -> str | None:
    """The version ``requirements.lock`` pins for llama-cpp-python, if any.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "requirements.lock"
    >>> _ = p.write_text("duckdb==2.0.1\\nllama_cpp_python==0.3.36\\n")
    >>> locked_version(p)
    '0.3.36'
    """
    pattern = re.compile(r"^llama[-_.]cpp[-_.]python\s*==\s*([^\s;#]+)", re.IGNORECASE)
    for line in lock.read_text(encoding="utf-8").splitlines():
        found = pattern.match(line.strip())
        if found:
            return found.group(1)
    return None


@dataclass(frozen=True)
class BuildInfo:
    """How the installed llama-cpp-python was built, as far as its metadata tells."""

    #: the installed version, None when it is not installed
    version: str | None
    #: where pip installed it from (a file URL for a local wheel), None for an index or sdist install
    source_url: str | None = None
    #: the build key of LORE's portable wheel it came from, None when it did not come from one
    key: str | None = None

    @property
    def installed(self) -> bool:
        return self.version is not None

    @property
    def portable(self) -> bool:
        """Installed from LORE's portable wheel built for this version, machine and Python."""
        return (self.version is not None and self.key is not None
                and self.key == build_key(self.version, portable_cmake_args()))

    def describe(self) -> str:
        if not self.installed:
            return "llama-cpp-python is not installed"
        if self.portable:
            return f"llama-cpp-python {self.version}, portable build ({cmake_args_text()})"
        if self.key is not None:
            return f"llama-cpp-python {self.version}, from a LORE wheel built for other flags or another machine"
        return (f"llama-cpp-python {self.version}, built by pip with llama.cpp's default flags "
                "(tuned to the CPU that built it; not portable)")


_KEY_IN_URL = re.compile(r"llama_cpp_python-[^/]+-([0-9a-f]{12})/[^/]+\.whl$")


def installed_build() -> BuildInfo:
    """Read the installed distribution's metadata (never imports llama_cpp, which loads the native library)."""
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        return BuildInfo(version=None)
    url: str | None = None
    try:
        raw = dist.read_text("direct_url.json")
        if raw:
            url = json.loads(raw).get("url")
    except (OSError, ValueError, AttributeError):
        url = None
    found = _KEY_IN_URL.search(url or "")
    return BuildInfo(version=dist.version, source_url=url, key=found.group(1) if found else None)


def rebuild_command() -> str:
    """What a user runs to replace a non-portable build (shown by ``lore doctor`` and crash messages)."""
    return "python -m lore.llm.build install   (./dev.sh does it for you)"


def manual_command(version: str = DEFAULT_VERSION) -> str:
    """The plain-pip equivalent, for people who install without LORE's helper."""
    return (f'CMAKE_ARGS="{cmake_args_text()}" pip install --no-cache-dir --force-reinstall --no-deps '
            f'"llama-cpp-python=={version}"')


def _pip(python: str, *args: str, env: Mapping[str, str] | None = None) -> None:
    cmd = [python, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(cmd, env=dict(env) if env is not None else None, check=False)
    if result.returncode != 0:
        raise SystemExit(f"lore build: `{' '.join(cmd)}` failed with exit code {result.returncode}")


def build_wheel(version: str, dest: Path, *, python: str = sys.executable) -> Path:
    """Build the portable wheel of ``version`` into ``dest`` (atomically), never through pip's wheel cache."""
    existing = sorted(dest.glob("llama_cpp_python-*.whl")) if dest.is_dir() else []
    if existing:
        return existing[-1]
    dest.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["CMAKE_ARGS"] = cmake_args_text()
    env["FORCE_CMAKE"] = "1"
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
    print(f"Building llama-cpp-python {version} for any {platform.machine()} CPU ({env['CMAKE_ARGS']}); "
          "this takes 5 to 10 minutes once, then the wheel is reused from "
          f"{dest}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="lore-wheel-", dir=dest.parent) as tmp:
        _pip(python, "wheel", "--quiet", "--no-cache-dir", "--no-deps", f"{DIST}=={version}", "-w", tmp, env=env)
        wheels = sorted(Path(tmp).glob("llama_cpp_python-*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"lore build: expected one llama-cpp-python wheel in {tmp}, found {len(wheels)}")
        staging = Path(tmp) / "done"
        staging.mkdir()
        shutil.move(str(wheels[0]), staging / wheels[0].name)
        try:
            staging.rename(dest)  # atomic: a folder that exists always holds a whole wheel
        except OSError:
            if not any(dest.glob("llama_cpp_python-*.whl")):  # lost a race to another build of the same key
                raise
    return sorted(dest.glob("llama_cpp_python-*.whl"))[-1]


def install(version: str, *, python: str = sys.executable) -> BuildInfo:
    """Make the environment's llama-cpp-python the portable build of ``version``; a no-op when it already is.

    Installs the package alone (``--no-deps``): its dependencies come with LORE's ``local`` extra, which
    ``./dev.sh`` installs next and which then finds the version it pins already there (no rebuild).
    """
    before = installed_build()
    if before.portable and before.version == version:
        return before
    if before.installed:
        print(f"Replacing {before.describe()}", file=sys.stderr, flush=True)
    key = build_key(version, portable_cmake_args())
    wheel = build_wheel(version, wheel_dir(version, key), python=python)
    _pip(python, "install", "--quiet", "--force-reinstall", "--no-deps", str(wheel))
    after = installed_build()
    if not after.portable:
        raise SystemExit(f"lore build: after installing {wheel.name}, {after.describe()}: the install did not take")
    return after


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lore.llm.build",
                                     description="Build and install a portable llama-cpp-python for --model local.")
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="build (or reuse) the portable wheel and install it; check the result")
    inst.add_argument("--version", help=f"the llama-cpp-python version (default: the lock's pin, else {DEFAULT_VERSION})")
    inst.add_argument("--lock", type=Path, help="a requirements.lock to read the version from")
    sub.add_parser("status", help="print how the installed llama-cpp-python was built")
    sub.add_parser("flags", help="print the CMAKE_ARGS of a portable build for this machine")
    args = parser.parse_args(argv)
    if args.command == "flags":
        print(cmake_args_text())
        return 0
    if args.command == "status":
        info = installed_build()
        print(info.describe())
        return 0 if info.portable or not info.installed else 1
    version = args.version or (locked_version(args.lock) if args.lock else None) or DEFAULT_VERSION
    info = install(version)
    print(info.describe(), file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover - run by ./dev.sh and by users
    sys.exit(main())
