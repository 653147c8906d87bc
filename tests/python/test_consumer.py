"""The installed CMake package: `cmake --install` of this repository, then
tests/consumer — a separate project that only does find_package(unmix) —
configured, built and run against it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def consumer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("consumer")
    prefix = tmp / "prefix"
    run(["cmake", "-S", str(ROOT), "-B", str(tmp / "build"), "-DUNMIX_WITH_TESTS=OFF",
         "-DUNMIX_WITH_CLI=OFF", f"-DCMAKE_INSTALL_PREFIX={prefix}"])
    run(["cmake", "--install", str(tmp / "build")])
    assert (prefix / "include" / "unmix.hpp").is_file()
    config = list(prefix.glob("lib*/cmake/unmix/unmixConfig.cmake"))
    assert config, "the CMake package config was not installed"
    run(["cmake", "-S", str(ROOT / "tests" / "consumer"), "-B", str(tmp / "consumer"),
         f"-DCMAKE_PREFIX_PATH={prefix}"])
    run(["cmake", "--build", str(tmp / "consumer"), "-j", "2"])
    return tmp / "consumer"


def test_consumer_builds_and_factors(consumer: Path) -> None:
    out = run([str(consumer / "consumer")])
    assert "relative error" in out.stdout


def test_consumer_runs_distributed(consumer: Path) -> None:
    exe = consumer / "consumer_mpi"
    if not exe.exists():
        pytest.skip("unmix was installed without MPI")
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.skip("needs mpirun")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    out = run([mpirun, "-np", "2", str(exe)], env=env)
    assert "2 ranks" in out.stdout
