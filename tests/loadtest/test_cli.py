"""`skserve loadtest` argument handling (no server)."""

from __future__ import annotations

import pytest

from skserve.cli import build_parser, main


def parse(*argv):
    return build_parser().parse_args(["loadtest", *argv])


def test_defaults_and_flags():
    args = parse("--host", "http://127.0.0.1:9", "--shape", "ramp", "--users", "7",
                 "--duration", "2m", "--slo-p95-ms", "100", "--workers", "auto")
    assert (args.shape, args.users, args.duration, args.slo_p95_ms) == ("ramp", 7, 120.0, 100.0)
    assert args.workers >= 1 and args.mix == "predict=0.8,predict_batch=0.2"


def test_help_mentions_the_gate(capsys):
    with pytest.raises(SystemExit) as exc:
        parse("--help")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--slo-p99-ms", "SKSERVE_SLO_MAX_FAILURE_RATIO", "--deployment", "step"):
        assert flag in out
    assert "3 the test ran and\nan SLO broke" in out and "5 Locust or the target failed" in out
    assert "HdrHistogram" in out and "80 % of the run" in out


@pytest.mark.parametrize("argv", [["--duration", "forever"], ["--shape", "wave"],
                                  ["--workers", "-1"], ["--cores", "a"]])
def test_bad_flags_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2


@pytest.mark.parametrize(("name", "content", "says"), [
    ("missing.csv", None, "no such file"),
    ("rows.txt", "a\n1\n", "must be .csv or .parquet"),
    ("empty.csv", "a,b\n", "no rows"),
])
def test_bad_sample_file_exits_2_before_locust_starts(tmp_path, capsys, name, content, says):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    rc = main(["loadtest", "--host", "http://127.0.0.1:9", "--sample-file", str(path),
               "--report-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and says in err and str(path) in err
    assert not (tmp_path / "r").exists()


def test_bad_mix_is_an_error_before_anything_starts(tmp_path, capsys):
    rc = main(["loadtest", "--host", "http://127.0.0.1:9", "--mix", "predict=x",
               "--report-dir", str(tmp_path / "r")])
    assert rc == 2 and "mix" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
