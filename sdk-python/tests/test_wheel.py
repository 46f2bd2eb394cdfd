"""The wheel a user installs carries the generated stubs, every Lua script of the manifest, the
manifest itself and py.typed."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import zipfile

from .conftest import ROOT


def test_wheel_contents(tmp_path: pathlib.Path) -> None:
    # setuptools reuses build/ between runs; a stale file there would hide a missing one.
    shutil.rmtree(ROOT / "sdk-python" / "build", ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT / "sdk-python")],
        check=True,
        timeout=600,
    )
    wheels = list(tmp_path.glob("throttlekit_py-0.6.0-*.whl"))
    assert len(wheels) == 1, list(tmp_path.iterdir())
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    manifest = json.loads((ROOT / "lua" / "manifest.json").read_text())
    want = {
        "throttlekit/py.typed",
        "throttlekit/lua/manifest.json",
        "throttlekit/v1/__init__.py",
        "throttlekit/v1/throttlekit_pb2.py",
        "throttlekit/v1/throttlekit_pb2.pyi",
        "throttlekit/v1/throttlekit_pb2_grpc.py",
        "throttlekit/contrib/fastapi.py",
    }
    want |= {f"throttlekit/lua/{s['file']}" for s in manifest["scripts"]}
    assert len(manifest["scripts"]) >= 14  # six checks or debits, five state reads, three fleet scripts
    missing = want - names
    assert not missing, f"the wheel lacks {sorted(missing)}"
    shipped = zipfile.ZipFile(wheels[0]).read("throttlekit/lua/gcra.lua")
    assert shipped == (ROOT / "lua" / "gcra.lua").read_bytes(), "the wheel's script is not lua/'s"
