#!/usr/bin/env python3
"""Stamps lua/manifest.json with each script's sha256 (and the sha1 EVALSHA
uses) and copies the scripts and manifest to every package that ships them.

lua/ is the one source, embedded by the Go package beside it; the copy exists
because a wheel carries its own files. The test command runs
this into a scratch tree and fails when a committed copy differs.

    scripts/gen-lua.py [--root DIR]   (DIR defaults to the repository root)
"""
import argparse
import hashlib
import json
import pathlib
import shutil

# Go embeds lua/ itself (the root module's lua package); a wheel needs its own copy.
COPIES = ["sdk-python/src/throttlekit/lua"]


def main() -> None:
    here = pathlib.Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=str(here), help="tree to write into")
    out = pathlib.Path(ap.parse_args().root)
    src = here / "lua"
    manifest = json.loads((src / "manifest.json").read_text())
    for s in manifest["scripts"]:
        body = (src / s["file"]).read_bytes()
        s["sha256"] = hashlib.sha256(body).hexdigest()
        s["sha1"] = hashlib.sha1(body).hexdigest()
    text = json.dumps(manifest, indent=2) + "\n"
    (out / "lua").mkdir(parents=True, exist_ok=True)
    (out / "lua" / "manifest.json").write_text(text)
    for copy in COPIES:
        dst = out / copy
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True)
        for s in manifest["scripts"]:
            shutil.copyfile(src / s["file"], dst / s["file"])
        (dst / "manifest.json").write_text(text)


if __name__ == "__main__":
    main()
