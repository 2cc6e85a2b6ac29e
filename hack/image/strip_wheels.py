"""Strip the symbol tables from the shared libraries of the wheels an image installs.

    python hack/image/strip_wheels.py REPORT.json CACHE_DIR OUT_DIR

REPORT.json is `pip install --dry-run --report`'s output (the wheels the image installs, by
their file:// URLs). Each wheel with ELF shared objects is unpacked (`python -m wheel
unpack`), its own libraries stripped with `strip --strip-unneeded`, and repacked (`python
-m wheel pack`, which rewrites RECORD's hashes) into CACHE_DIR, once per wheel file; the
others are used as they are. OUT_DIR gets a hard link to each wheel to install.

Safe where it is done: libraries under `<name>.libs/` are left alone (auditwheel grafted
them in with patchelf, and `strip` on such a file gave "ELF load command address/offset not
page-aligned" for numpy's OpenBLAS); and every stripped library must still load
(`ctypes.CDLL`) wherever its original did, or the original is kept. Saves about 55 MB on
the serving set (pyarrow alone 34 MB), see hack/image/README.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

ELF_MAGIC = b"\x7fELF"


def is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == ELF_MAGIC


def loads(path: Path) -> bool:
    """Whether the dynamic loader accepts the library (in a child: a bad one can crash)."""
    probe = "import ctypes, sys; ctypes.CDLL(sys.argv[1])"
    return subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                          timeout=60, check=False).returncode == 0


def strippable(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*.so*"))
            if p.is_file() and not p.is_symlink() and is_elf(p)
            and not any(part.endswith(".libs") for part in p.relative_to(root).parts)]


def strip_wheel(wheel: Path, cache: Path) -> tuple[Path, int]:
    """The stripped copy of `wheel` (made once, kept in `cache`) and the bytes it saved."""
    done = cache / wheel.name
    if done.exists():
        return done, wheel.stat().st_size - done.stat().st_size
    with tempfile.TemporaryDirectory(prefix="skserve-strip-") as tmp:
        subprocess.run([sys.executable, "-m", "wheel", "unpack", str(wheel), "-d", tmp],
                       check=True, capture_output=True)
        root = next(Path(tmp).iterdir())
        libs = strippable(root)
        if not libs:
            return wheel, 0
        for lib in libs:
            original = lib.with_name(lib.name + ".orig")
            shutil.copy2(lib, original)
            subprocess.run(["strip", "--strip-unneeded", str(lib)], check=True)
            if loads(original) and not loads(lib):
                print(f"[image] {lib.name}: does not load once stripped; kept as it was",
                      file=sys.stderr)
                os.replace(original, lib)
            else:
                original.unlink()
        cache.mkdir(parents=True, exist_ok=True)
        packed = Path(tmp) / "packed"
        packed.mkdir()
        subprocess.run([sys.executable, "-m", "wheel", "pack", str(root), "-d", str(packed)],
                       check=True, capture_output=True)
        built = next(packed.iterdir())
        os.replace(built, done)
    return done, wheel.stat().st_size - done.stat().st_size


def main() -> None:
    report, cache, out = (Path(a) for a in sys.argv[1:4])
    out.mkdir(parents=True, exist_ok=True)
    saved = 0
    for item in json.loads(report.read_text())["install"]:
        if item["metadata"]["name"] == "skserve":  # installed from dist/ on its own layer
            continue
        url = item["download_info"]["url"]
        wheel = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        use, delta = strip_wheel(wheel, cache) if wheel.suffix == ".whl" else (wheel, 0)
        saved += delta
        os.link(use, out / use.name)
    print(f"[image] stripped wheels: {saved / 1e6:.0f} MB smaller (compressed)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
