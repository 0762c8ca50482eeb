"""The portable llama.cpp build: its flags, its wheel cache key, the check after install, and dev.sh using it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lore.llm import build
from lore.llm.build import BuildInfo, build_key, cache_root, installed_build, locked_version, portable_cmake_args

ROOT = Path(__file__).resolve().parents[2]


def test_portable_flags_never_target_the_build_machine() -> None:
    for machine in ("x86_64", "AMD64", "aarch64", "arm64", "riscv64"):
        args = portable_cmake_args(machine)
        assert "-DGGML_NATIVE=OFF" in args
        assert not any("native" in a.lower() and "=ON" in a for a in args)
    x86 = portable_cmake_args("x86_64")
    assert {"-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_AVX512=OFF"} <= set(x86)


def test_the_default_version_is_the_locked_one() -> None:
    assert locked_version(ROOT / "requirements.lock") == build.DEFAULT_VERSION


def test_the_cache_key_changes_with_flags_version_machine_and_python() -> None:
    base = build_key("0.3.36", ("-DGGML_NATIVE=OFF",), machine="x86_64", python_tag="cp311")
    assert base != build_key("0.3.36", ("-DGGML_NATIVE=ON",), machine="x86_64", python_tag="cp311")
    assert base != build_key("0.3.37", ("-DGGML_NATIVE=OFF",), machine="x86_64", python_tag="cp311")
    assert base != build_key("0.3.36", ("-DGGML_NATIVE=OFF",), machine="aarch64", python_tag="cp311")
    assert base != build_key("0.3.36", ("-DGGML_NATIVE=OFF",), machine="x86_64", python_tag="cp312")


def test_the_cache_folder_follows_the_environment(tmp_path: Path) -> None:
    assert cache_root({"LORE_WHEEL_CACHE": str(tmp_path)}) == tmp_path
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "lore" / "wheels"


def test_a_build_is_portable_only_when_it_came_from_the_portable_wheel_of_its_version() -> None:
    key = build_key("0.3.36", portable_cmake_args())
    assert BuildInfo(version="0.3.36", key=key).portable
    assert not BuildInfo(version="0.3.37", key=key).portable  # the wheel of another version
    assert not BuildInfo(version="0.3.36", key=None).portable  # pip's own build (native flags)
    assert "not portable" in BuildInfo(version="0.3.36").describe()
    assert "not installed" in BuildInfo(version=None).describe()


def test_status_reads_the_installed_distribution() -> None:
    info = installed_build()
    done = subprocess.run([sys.executable, str(ROOT / "lore" / "llm" / "build.py"), "status"],
                          capture_output=True, text=True, check=False)
    assert done.stdout.strip() == info.describe()
    assert done.returncode == (0 if info.portable or not info.installed else 1)


@pytest.mark.skipif(installed_build().version is None, reason="the local extra is not installed")
def test_the_installed_llama_cpp_is_the_portable_build() -> None:
    """The check after install: where the local extra is installed (./dev.sh test, CI), it came from the portable
    wheel, never from pip's native build or a native wheel left in pip's cache."""
    info = installed_build()
    assert info.portable, info.describe()
    assert info.source_url is not None and info.source_url.startswith("file://")


def test_dev_sh_builds_llama_cpp_portably_and_checks_the_set_up() -> None:
    script = (ROOT / "dev.sh").read_text(encoding="utf-8")
    install = script.index("lore/llm/build.py install")
    assert install < script.index('pip install --quiet --disable-pip-version-check "${constraint[@]}"'), \
        "the portable build must be installed before pip would build llama-cpp-python itself"
    assert "lore/llm/build.py status" in script
    test_block = script[script.index("  test)"):script.index(";;", script.index("  test)"))]
    assert test_block.index("doctor") < test_block.index("pytest")


def test_build_py_runs_as_a_plain_script_before_lore_is_installed(tmp_path: Path) -> None:
    """dev.sh runs it with only the standard library: it must not import lore."""
    done = subprocess.run([sys.executable, "-S", "-I", str(ROOT / "lore" / "llm" / "build.py"), "flags"],
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == build.cmake_args_text()
    source = (ROOT / "lore" / "llm" / "build.py").read_text(encoding="utf-8")
    assert "from lore" not in source and "import lore" not in source
    json.dumps(portable_cmake_args())  # plain data
