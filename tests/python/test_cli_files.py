"""The files unmix-nmf leaves: what a killed write left behind is removed by
the next run with the same prefix (and nothing else), and every file is on
disk before it replaces the old one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from test_cli_hpc import ENV, EXE, TIMEOUT, check_ok, run

pytestmark = pytest.mark.skipif(EXE is None, reason="unmix-nmf not found (see test_cli_hpc.py)")

GEN = ["--generate", "60x40", "-k", "3", "--tol", "0", "--quiet", "--max-iter", "3",
       "--checkpoint-every", "1"]
HEX = "0123456789abcdef"


def test_a_run_removes_what_killed_writes_of_its_prefix_left(tmp_path):
    (tmp_path / "run.ckpt").mkdir()
    ours = [f".run_W.npy.tmp-{HEX}", f".run_H.npy.tmp-{HEX}", f".run.json.tmp-{HEX}",
            f"run.ckpt/.g2.r0.H.npy.tmp-{HEX}", f"run.ckpt/.state.tmp-{HEX}",
            "run.ckpt/g7.r0.W.npy"]  # a generation written, never named by the state
    theirs = [f".other_W.npy.tmp-{HEX}", f".run_W.npy.tmp-{HEX[:-1]}", f"run_W.npy.tmp-{HEX}",
              f".run_X.npy.tmp-{HEX}", ".run.npz.123.abcd.tmp", "notes.txt",
              f"run.ckpt/.notes.tmp-{HEX}"]
    for name in ours + theirs:
        (tmp_path / name).write_bytes(b"x")
    check_ok(run([*GEN, "-o", str(tmp_path / "run")]))
    left = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")}
    assert not left & set(ours)
    assert set(theirs) <= left
    assert {p for p in left if p.startswith("run.ckpt/g")} == {"run.ckpt/g3.r0.W.npy",
                                                              "run.ckpt/g3.r0.H.npy"}


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_every_file_is_synced_before_its_rename_and_its_folder_after(tmp_path):
    trace = tmp_path / "trace.txt"
    out = tmp_path / "run"
    # Alone, an MPI build need not start Open MPI's daemon (which strace
    # would follow too).
    env = dict(ENV, OMPI_MCA_ess_singleton_isolated="1", OMPI_MCA_orte_tmpdir_base=str(tmp_path))
    res = subprocess.run(["strace", "-f", "-y", "-qq", "-o", str(trace), "-e",
                          "trace=fsync,fdatasync,rename,renameat,renameat2", EXE, *GEN,
                          "-o", str(out)], capture_output=True, text=True, env=env,
                         timeout=TIMEOUT)
    if res.returncode != 0 and "ptrace" in res.stderr:
        pytest.skip(f"strace cannot trace here: {res.stderr.strip()}")
    check_ok(res)
    synced: list[str] = []
    renames = 0
    for line in trace.read_text().splitlines():
        if m := re.search(r"f(?:data)?sync\(\d+<(.*)>\) = 0", line):
            synced.append(m.group(1))
        elif m := re.search(r"rename(?:at2?)?\(.*?\"(.*?)\", .*?\"(.*?)\".*\) = 0", line):
            source, target = m.groups()
            assert source in synced, f"{source} renamed before it was synced"
            synced.append(f"renamed {target}")
            renames += 1
    # W, H, the summary, and each of the 3 checkpoints' state: each rename
    # followed by a sync of its folder.
    assert renames >= 6
    for i, entry in enumerate(synced):
        if entry.startswith("renamed "):
            folder = os.path.dirname(entry[len("renamed "):])
            assert folder in synced[i + 1:], f"{folder} not synced after {entry}"
