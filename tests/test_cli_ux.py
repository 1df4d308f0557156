"""What an operator meets at the terminal: Ctrl-C, errors, exit codes, help and summaries.

Real processes throughout: Ctrl-C is a SIGINT sent to a running ``attest demo``, the log level
is read from a running daemon's output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
from cli_support import CLI, HANG_TIMEOUT_S, Cli, World, clean_env, make_world, serve

from attest.cli.main import main
from attest.demo.scenario import fresh_run_dir
from attest.errors import ConfigError
from attest.node.config import example_toml, load_config


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One authority, manufacturer and verifier folder for the module's tests (read-mostly)."""
    return make_world(Cli(), tmp_path_factory.mktemp("world"))


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HANG_TIMEOUT_S
    while text not in path.read_text(errors="replace"):
        assert proc.poll() is None, path.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in {path.read_text()}"
        time.sleep(0.05)


def _default_sigint() -> None:
    """In the child: Ctrl-C as a terminal delivers it. A test run started in the background
    by a shell inherits SIGINT ignored, and Python then keeps it ignored in its children."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_the_demo_exits_130_with_one_line(tmp_path: Path) -> None:
    err = tmp_path / "stderr"
    with open(err, "wb") as out:
        proc = subprocess.Popen(
            [*CLI, "--log-level", "INFO", "demo", "--chips", "40", "--rounds", "500",
             "--no-map", "--keep", str(tmp_path / "kept")],
            env=clean_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=out,
            preexec_fn=_default_sigint,
        )  # fmt: skip
    try:
        # the global --log-level reaches the demo's nodes: their INFO lines say they run
        _wait_for(err, " INFO ", proc)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=HANG_TIMEOUT_S) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = err.read_text()
    assert text.endswith("attest: interrupted\n")
    for noise in ("Traceback", "ExceptionGroup", "KeyboardInterrupt"):
        assert noise not in text


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (BaseExceptionGroup("a", [BaseExceptionGroup("b", [KeyboardInterrupt()])]), 130,
         "attest: interrupted"),
        (ExceptionGroup("a", [ConfigError("bad thing")]), 2,
         "attest: configuration error: bad thing"),
    ],
)  # fmt: skip
def test_errors_inside_exception_groups_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: BaseException,
    code: int,
    line: str,
) -> None:
    """trio delivers Ctrl-C (and a nursery's error) wrapped in nested groups."""
    import attest.cli.vectors_cmd as vectors_cmd

    def command(_args: object) -> int:
        raise raised

    monkeypatch.setattr(vectors_cmd, "run_check", command)
    assert main(["vectors", "check"]) == code
    assert capsys.readouterr().err.splitlines() == [line]


def test_demo_keep_twice_keeps_both_runs_with_certificates(cli: Cli, tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    (keep / "run-1").mkdir(parents=True)  # an earlier run's folder: kept, not reused
    (keep / "run-1" / "verifier-kl-1.db").write_bytes(b"earlier")
    proc = cli.run("demo", "--chips", "1", "--rounds", "1", "--no-map", "--keep", keep)
    assert proc.returncode == 0, proc.stderr
    run = keep / "run-2"
    out = proc.stdout
    assert f"kept in {run}: " in out
    # what a person reads, piped: whole names, no Python reprs, no "1 chips"
    assert "{'" not in out and " 1 chips" not in out
    assert "│ revoked-chip " in out and "│ DEVICE_REVOKED " in out
    assert "component sizes " in out and "PINGs per measurement: default " in out
    # the progress bar ends at the summary's session count
    sessions = re.search(r"│ sessions +│ (\d+) ", out)
    bars = re.findall(r"(\d+)/(\d+) sessions", proc.stderr)
    assert sessions and bars and bars[-1] == (sessions[1], sessions[1])
    assert (keep / "run-1" / "verifier-kl-1.db").read_bytes() == b"earlier"
    assert fresh_run_dir(keep) == keep / "run-3"
    audit = cli.run(
        "audit", "verify", "--db", run / "verifier-kl-1.db",
        "--verifier-cert", run / "verifier-kl-1.cert", "--anchors", run / "anchors.json",
    )  # fmt: skip
    assert audit.returncode == 0, audit.stderr
    assert (run / "landmark-kl.cert").is_file()  # the location section's nodes too


def test_register_pod_with_a_missing_issuer_certificate(
    cli: Cli, world: World, tmp_path: Path
) -> None:
    pod = tmp_path / "pod.cose"
    pod.write_bytes(b"\x00")
    for args, what in (
        (("--issuer-cert", tmp_path / "missing.cert", pod), "missing.cert: no such file"),
        ((tmp_path / "missing-pod.cose",), "missing-pod.cose: no such file"),
    ):
        proc = cli.run("verifier", "register-pod", "--config", world.config, *args)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and what in proc.stderr, proc.stderr
    # a certificate that is not the authority's: the hint names --issuer-cert
    proc = cli.run("verifier", "register-pod", "--config", world.config, pod)
    assert proc.returncode == 3 and "give its --issuer-cert" in proc.stderr


def test_init_config_documents_every_field(cli: Cli) -> None:
    text = cli.ok("verifier", "init-config")
    assert "``" not in text and "Section(" not in text
    assert "# the node's certificate (COSE_Sign1 by the authority)\n" in text
    assert "# Daemon logs on stderr" in text
    assert "budget_flops = 1_000_000_000_000_000_000\n" in text
    parsed = tomllib.loads(text)  # still a valid configuration, at every default
    assert parsed["licensing"]["budget_flops"] == 10**18
    assert text == example_toml()
    lines = text.splitlines()
    for i, line in enumerate(lines):  # every key has a doc line above its env line
        if "=" in line and not line.startswith("#"):
            assert lines[i - 1].startswith("# env: ATTEST_"), line
            assert lines[i - 2].startswith("# ") and not lines[i - 2].startswith("# env"), line


def test_unknown_attest_variable_is_refused_like_an_unknown_key(
    cli: Cli, world: World, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"ATTEST_LISTEN_PROT.*did you mean ATTEST_LISTEN_PORT"):
        load_config(None, env={"ATTEST_LISTEN_PROT": "7500"})
    # the other ATTEST_ switches are not settings and stay allowed
    load_config(None, env={"ATTEST_FAST_PATHS": "0", "ATTEST_SLOW": "1", "ATTEST_LISTEN_PORT": "1"})
    proc = cli.run("verifier", "serve", "--config", world.config, env={"ATTEST_STORE_PAHT": "x"})
    assert proc.returncode == 2
    assert proc.stderr.startswith("attest: configuration error: environment: unknown variable")


def test_global_log_level_outranks_the_configuration(
    cli: Cli, world: World, tmp_path: Path
) -> None:
    # the file and ATTEST_LOG_LEVEL say INFO (serve's default); --log-level WARNING wins
    with serve(world, name="quiet", options=("--log-level", "WARNING")) as daemon:
        assert daemon.stop() == 0
        quiet = daemon.log.read_text()
    with serve(world, name="debug", options=("--log-level", "DEBUG")) as daemon:
        assert daemon.stop() == 0
        debug = daemon.log.read_text()
    assert '"level":"INFO"' not in quiet
    assert '"level":"INFO"' in debug


def test_wrong_paths_are_usage_errors_everywhere(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Exit status 2 for an input file or folder that is not there, whichever command."""
    for name in [k for k in os.environ if k.startswith("ATTEST_")]:
        monkeypatch.delenv(name)
    nope = tmp_path / "nope"
    commands = [
        ("verifier", "serve", "--config", nope),
        ("verifier", "register-pod", "--config", world.config, nope),
        ("audit", "verify", "--db", nope),
        ("chip", "run", "--verifier", "127.0.0.1:1", "--state", nope),
        ("chip", "apply-revocations", "--state", nope, nope),
        ("chip", "create", "--anchors", nope, "--state", tmp_path / "c", "--model", "HX100"),
        ("license", "record", "--config", world.config, nope),
        ("license", "import", "--config", world.config, nope),
        ("license", "inspect", nope),
        ("vectors", "check", "--dir", nope),
    ]
    for args in commands:
        code = main([str(a) for a in args])  # in-process: the same main as the console script
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert err.count("\n") == 1 and str(nope) in err, (args, err)


def test_vectors_check_outside_a_checkout_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CLI, "vectors", "check"], cwd=tmp_path, env=clean_env(), capture_output=True,
        text=True, timeout=HANG_TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "failed" not in proc.stdout and proc.stderr.count("\n") == 1


def test_chip_run_prints_a_summary_and_no_placeholder(
    cli: Cli, world: World, tmp_path: Path
) -> None:
    chips = tmp_path / "chips"
    cli.ok("chip", "fabricate", "--manufacturer", world.manufacturer, "--model", "HX100",
           "--state", chips, "--count", "2")  # fmt: skip
    out, err = tmp_path / "forever.out", tmp_path / "forever.err"
    with serve(world) as daemon:
        run = cli.run("chip", "run", "--verifier", f"127.0.0.1:{daemon.port}", "--state", chips,
                      "--rounds", "2", "--interval", "0")  # fmt: skip
        # Ctrl-C on a chip run that runs until stopped: the summary, then 130
        with open(out, "wb") as o, open(err, "wb") as e:
            forever = subprocess.Popen(
                [*CLI, "chip", "run", "--verifier", f"127.0.0.1:{daemon.port}", "--state",
                 str(chips / "chip-0001"), "--rounds", "0", "--interval", "0.05"],
                env=clean_env(), stdout=o, stderr=e, preexec_fn=_default_sigint,
            )  # fmt: skip
        try:
            _wait_for(out, "AFFIRMING", forever)
            forever.send_signal(signal.SIGINT)
            assert forever.wait(timeout=HANG_TIMEOUT_S) == 130
        finally:
            if forever.poll() is None:
                forever.kill()
                forever.wait()
        assert daemon.stop() == 0
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 4 and all(" - " not in line for line in lines)
    assert all(line.split()[1:2] == ["AFFIRMING"] for line in lines)
    assert run.stderr == "attest chip run: 2 chips, 4 result(s): 4 affirming\n"
    summary, stopped = err.read_text().splitlines()
    assert summary.startswith("attest chip run: 1 chip, ") and "affirming" in summary
    assert stopped == "attest: stopped by SIGINT"


def test_license_status_is_labelled_with_iso_times(cli: Cli, world: World, tmp_path: Path) -> None:
    cli.ok("authority", "delegate", "--dir", world.authority, "--verifier", world.verifier,
           "--region", "MY-KL", "--quota-flops", "3e14")  # fmt: skip
    text = cli.ok("license", "status", "--config", world.config)
    assert "  quota:        flops 300000000000000\n" in text
    assert "  revoked:      no\n" in text and "ledger entries: 0\n" in text
    assert "[" not in text  # no unlabelled arrays
    doc = json.loads(cli.ok("license", "status", "--config", world.config, "--json"))
    d = doc["delegation"]
    assert d["quota"] == {"flops": 3 * 10**14}
    assert time.strptime(d["issuedAt"], "%Y-%m-%dT%H:%M:%SZ")
    assert time.strptime(d["expiresAt"], "%Y-%m-%dT%H:%M:%SZ")
    assert doc["region"]["cap"] == {"flops": None, "energyMj": None, "interconnectBytes": None}
