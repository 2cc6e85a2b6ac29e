"""The developer entry points: `make help` and the test suite's package installer."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def make_help(*args: str) -> str:
    proc = subprocess.run(["make", "--no-print-directory", "help", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def documented_targets() -> dict[str, str]:
    """Every rule line with a `##` comment, read straight from the Makefile."""
    found = {}
    for line in (REPO / "Makefile").read_text().splitlines():
        m = re.match(r"^([^\s:#=]+):[^=].*##\s*(.*)$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def test_make_help_lists_every_documented_target() -> None:
    targets = documented_targets()
    assert {"help", "run", "test", "e2e", "cluster-up", "bench-serve"} <= set(targets)
    out = make_help()
    shown = {m.group(1): m.group(2) for m in re.finditer(r"^  (\S+)\s+(.*)$", out, re.M)}
    assert list(shown) == list(targets)  # all of them, in Makefile order
    # the texts in one column, two spaces after the longest target
    column = 2 + max(map(len, targets)) + 2
    assert {line.index(shown[t]) for t, line in zip(shown, out.splitlines(), strict=True)} \
        == {column}
    for target, text in shown.items():
        assert "$(" not in text and "${" not in text, f"{target}: {text}"
    assert shown["run"].endswith("127.0.0.1:3000")
    assert shown["serve"] == "serve demand:latest on 127.0.0.1:3000"


def test_make_help_shows_overridden_variables() -> None:
    shown = make_help("PORT=8080", "MODEL=demand:it's")
    assert "serve demand:it's on 127.0.0.1:8080" in shown
    env_shown = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO, timeout=60,
                               capture_output=True, text=True, env={**os.environ, "PORT": "9"})
    assert "127.0.0.1:9\n" in env_shown.stdout


@pytest.fixture
def fake_apt(tmp_path: Path) -> dict[str, Path]:
    """Stand-ins for dpkg and apt-get: the installer's decisions are what is tested here, and
    a real install needs the network and changes the machine. apt-get records its arguments
    and what policy-rc.d answered at that moment (101 = services may not start)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    (bin_dir / "dpkg").write_text('#!/bin/sh\n[ "$2" = installed-already ] && exit 0\nexit 1\n')
    (bin_dir / "apt-get").write_text(
        '#!/bin/sh\nif [ -x "$POLICY_RC_D" ]; then "$POLICY_RC_D" prometheus start; p=$?;'
        ' else p=absent; fi\necho "$* | policy=$p | $DEBIAN_FRONTEND" >>"' + str(log) + '"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return {"bin": bin_dir, "log": log, "policy": tmp_path / "policy-rc.d"}


def run_test_deps(fake_apt: dict[str, Path], *packages: str) -> list[str]:
    env = {**os.environ, "PATH": f"{fake_apt['bin']}:{os.environ['PATH']}",
           "POLICY_RC_D": str(fake_apt["policy"])}
    subprocess.run(["bash", str(REPO / "hack" / "test-deps.sh"), *packages], env=env,
                   check=True, timeout=60)
    log = fake_apt["log"]
    return log.read_text().splitlines() if log.exists() else []


def test_test_deps_installs_without_recommends_and_starts_no_service(fake_apt) -> None:
    calls = run_test_deps(fake_apt, "prometheus", "installed-already")
    assert calls == ["update -qq | policy=101 | noninteractive",
                     "install -y -qq --no-install-recommends prometheus | policy=101 | "
                     "noninteractive"]
    assert not fake_apt["policy"].exists()  # only while installing


def test_test_deps_keeps_an_existing_policy_and_skips_what_is_there(fake_apt) -> None:
    fake_apt["policy"].write_text("#!/bin/sh\nexit 101\n")
    fake_apt["policy"].chmod(0o755)
    assert run_test_deps(fake_apt, "prometheus")[-1].endswith("prometheus | policy=101 | "
                                                               "noninteractive")
    assert fake_apt["policy"].read_text() == "#!/bin/sh\nexit 101\n"
    fake_apt["log"].unlink()
    assert run_test_deps(fake_apt, "installed-already") == []
