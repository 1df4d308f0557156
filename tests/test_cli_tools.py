"""The operator CLI end to end: real processes, files, loopback TCP and signals.

authority init → certify-manufacturer → certify-verifier → chip fabricate → verifier serve →
chip run → SIGTERM → audit verify, then a restart on the same store, revocation, enrolment and
configuration errors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sqlite3
import stat
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest
from cli_support import CLI, HANG_TIMEOUT_S, Cli, World, clean_env, make_world, secret_hexes, serve

from attest.chip.device import Chip
from attest.cli.main import build_parser, main
from attest.store.sqlite import SqliteStore


@pytest.fixture
def cli() -> Cli:
    return Cli()


def fabricate(cli: Cli, world: World, state: Path, count: int = 1) -> list[str]:
    out = cli.ok(
        "chip", "fabricate", "--manufacturer", world.manufacturer,
        "--model", "HX100", "--state", state, "--count", str(count),
    )  # fmt: skip
    return [line.split()[0] for line in out.splitlines()]


def result_lines(stdout: str) -> dict[str, list[str]]:
    """ueid → ["TIER REASONS counter=N", ...] from `attest chip run` output."""
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        ueid, rest = line.split(" ", 1)
        out.setdefault(ueid, []).append(rest)
    return out


def audit_report(cli: Cli, world: World) -> dict[str, object]:
    proc = cli.run(
        "audit", "verify", "--db", world.db, "--json",
        "--verifier-cert", world.verifier / "verifier.cert",
        "--anchors", world.verifier / "anchors.json",
    )  # fmt: skip
    report = json.loads(proc.stdout)
    assert proc.returncode == (0 if report["ok"] else 1)
    return report


def test_lifecycle_serve_run_stop_audit_restart(cli: Cli, tmp_path: Path) -> None:
    world = make_world(cli, tmp_path)
    chip_dir = tmp_path / "chip"
    (ueid,) = fabricate(cli, world, chip_dir)

    with serve(world, name="first") as daemon:
        run = cli.run(
            "chip", "run", "--verifier", f"127.0.0.1:{daemon.port}",
            "--state", chip_dir, "--rounds", "2", "--interval", "0",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert result_lines(run.stdout) == {ueid: ["AFFIRMING counter=1", "AFFIRMING counter=2"]}
        assert daemon.stop() == 0
    report = audit_report(cli, world)
    assert report["ok"] and report["entries"] == 2
    assert report["checkpoints_verified"] >= 1  # the final checkpoint signed on close

    # Same store, new process: the node still knows the chip and its counter continues.
    with serve(world, name="second") as daemon:
        run = cli.run(
            "chip", "run", "--verifier", f"localhost:{daemon.port}",
            "--state", chip_dir, "--rounds", "2", "--interval", "0",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert result_lines(run.stdout) == {ueid: ["AFFIRMING counter=3", "AFFIRMING counter=4"]}
        assert daemon.stop() == 0
    with SqliteStore(world.db, readonly=True) as store:
        assert store.count_chips() == 1
        record = store.get_chip(bytes.fromhex(ueid))
        assert record is not None
        assert (record.state.attest_counter, record.state.bootcount) == (4, 2)
    report = audit_report(cli, world)
    assert report["ok"] and report["entries"] == 4

    shown = cli.ok("audit", "show", "--db", world.db, "--last", "3")
    rows = [line for line in shown.splitlines() if ueid[:12] in line]
    assert len(rows) == 3 and all("AFFIRMING" in row for row in rows)
    shown = cli.ok("audit", "show", "--db", world.db, "--json")
    entries = [json.loads(line) for line in shown.splitlines()]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert {e["ueid"] for e in entries} == {ueid}
    # the JSON alone recomputes the chain (SPEC §11.1: plain cbor2 and hashlib, no attest)
    prev = bytes(32)
    for e in entries:
        body = cbor2.dumps(
            [
                e["seq"], e["time_ms"], e["verifier_id"], bytes.fromhex(e["ueid"]),
                e["tier_code"], e["reason_codes"], bytes.fromhex(e["evidence_digest"]),
                bytes.fromhex(e["nonce"]), e["kind"],
            ],
            canonical=True,
        )  # fmt: skip
        assert bytes.fromhex(e["prev_hash"]) == prev
        prev = hashlib.sha256(b"attest-audit-v1" + prev + body).digest()
        assert e["hash"] == prev.hex()

    # Secrets: 0600 files, and never printed by any command (daemon logs included).
    keys = world.key_files()  # authority, manufacturer, verifier and the chip's device key
    assert len(keys) == 4 and chip_dir / "device.key" in keys
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    logs = [p.read_text() for p in tmp_path.glob("*.log")]
    printed = "\n".join(cli.outputs + logs)
    for secret in secret_hexes(keys):
        assert secret not in printed

    # The wrong verifier's certificate: its key did not sign these checkpoints.
    other = tmp_path / "sg-1"
    cli.ok("authority", "certify-verifier", "--dir", world.authority, "--id", "sg-1",
           "--region", "SG", "--out", other)  # fmt: skip
    proc = cli.run("audit", "verify", "--db", world.db, "--verifier-cert", other / "verifier.cert")
    assert proc.returncode == 1
    assert "belongs to verifier 'kl-1'" in proc.stdout and "forged or corrupt" in proc.stdout
    # Someone with write access drops the append-only trigger and edits a verdict.
    conn = sqlite3.connect(world.db)
    with conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET tier = 96 WHERE seq = 2")
    conn.close()
    proc = cli.run("audit", "verify", "--db", world.db)
    assert proc.returncode == 1
    assert "PROBLEM: entry seq 2: content does not match its hash" in proc.stdout


def test_revoked_device_is_contraindicated_and_stays_revoked(cli: Cli, tmp_path: Path) -> None:
    world = make_world(cli, tmp_path)
    revoked, healthy = fabricate(cli, world, tmp_path / "chips", count=2)
    revocations = tmp_path / "revocations.cose"
    out = cli.ok(
        "authority", "revoke", "--dir", world.authority, "--device", revoked, "--out", revocations
    )
    assert "#1" in out
    state = json.loads((world.authority / "revocations.json").read_text())
    assert state["number"] == 1 and state["devices"] == [revoked]

    env = {"ATTEST_NODE_REVOCATIONS_FILE": str(revocations)}
    with serve(world, env, name="revoked") as daemon:
        run = cli.run(
            "chip", "run", "--verifier", f"127.0.0.1:{daemon.port}",
            "--state", tmp_path / "chips", "--rounds", "1",
        )  # fmt: skip
        assert run.returncode == 1, run.stderr
        lines = result_lines(run.stdout)
        assert lines[revoked] == ["CONTRAINDICATED DEVICE_REVOKED counter=1"]
        assert lines[healthy] == ["AFFIRMING counter=1"]
        assert daemon.stop() == 0

    # Dropping the file from the configuration does not un-revoke: the store keeps list #1.
    with serve(world, name="without-file") as daemon:
        run = cli.run(
            "chip", "run", "--verifier", f"127.0.0.1:{daemon.port}",
            "--state", tmp_path / "chips" / "chip-0001", "--rounds", "1",
        )  # fmt: skip
        assert run.returncode == 1
        assert "DEVICE_REVOKED" in run.stdout
        assert daemon.stop() == 0

    # A list not signed by the authority is refused before the node starts.
    forged = tmp_path / "forged.cose"
    token = revocations.read_bytes()
    forged.write_bytes(token[:-1] + bytes([token[-1] ^ 1]))  # one bit of the signature
    env = {
        "ATTEST_NODE_REVOCATIONS_FILE": str(forged),
        "ATTEST_LISTEN_PORT": "0",
        "ATTEST_HTTP_PORT": "-1",
    }
    proc = cli.run("verifier", "serve", "--config", world.config, env=env)
    assert proc.returncode == 3
    assert "not a revocation list signed by authority" in proc.stderr


def test_chip_run_forever_stops_cleanly_on_sigterm(cli: Cli, tmp_path: Path) -> None:
    world = make_world(cli, tmp_path)
    fabricate(cli, world, tmp_path / "chips", count=3)
    out_path = tmp_path / "run.out"
    with serve(world, name="forever") as daemon, open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [*CLI, "chip", "run", "--verifier", f"127.0.0.1:{daemon.port}",
             "--state", str(tmp_path / "chips"), "--rounds", "0", "--interval", "0.02"],
            env=clean_env(),
            stdout=out,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + HANG_TIMEOUT_S
            while out_path.read_text().count("\n") < 9 and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=HANG_TIMEOUT_S)
            stderr = proc.stderr.read().decode() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert code == 0, stderr
        assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
        assert daemon.stop() == 0
    # Every printed result is in the audit log, and each chip's durable counter is at least
    # the last one it printed (a round cut off by the signal may have advanced it once more).
    lines = result_lines(out_path.read_text())
    assert len(lines) == 3
    report = audit_report(cli, world)
    assert report["ok"] and report["entries"] >= sum(map(len, lines.values()))
    for chip_dir in sorted((tmp_path / "chips").iterdir()):
        chip = Chip.load(chip_dir)
        printed = lines[chip.ueid.hex()]
        assert all(line.startswith("AFFIRMING") for line in printed)
        last = int(printed[-1].rsplit("=", 1)[1])
        assert chip.attest_counter in (last, last + 1)


def test_enroll_then_serve_without_auto_enrolment(cli: Cli, tmp_path: Path) -> None:
    world = make_world(cli, tmp_path)
    chips = tmp_path / "chips"
    known, unknown = fabricate(cli, world, chips, count=2)

    # A chain from another authority: refused, exit 3, nothing stored.
    other = make_world(Cli(), tmp_path / "other")
    fabricate(cli, other, tmp_path / "foreign")
    proc = cli.run("verifier", "enroll", "--config", world.config, tmp_path / "foreign")
    assert proc.returncode == 3
    assert "does not verify" in proc.stderr
    with SqliteStore(world.db, readonly=True) as store:
        assert store.count_chips() == 0

    out = cli.ok("verifier", "enroll", "--config", world.config, chips / "chip-0001")
    assert f"{known} HX100 enrolled" in out
    out = cli.ok("verifier", "enroll", "--config", world.config, chips / "chip-0001")
    assert "already known 1" in out

    with serve(world, {"ATTEST_POLICY_AUTO_ENROLL": "false"}, name="closed") as daemon:
        run = cli.run(
            "chip", "run", "--verifier", f"127.0.0.1:{daemon.port}", "--state", chips
        )  # fmt: skip
        assert run.returncode == 1
        lines = result_lines(run.stdout)
        assert lines[known] == ["AFFIRMING counter=1"]
        assert lines[unknown] == ["CONTRAINDICATED NOT_ENROLLED counter=1"]
        assert daemon.stop() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[listen\nport = 1\n", "verifier.toml"),
        ("[listen]\nport = 'seventy'\n", "listen.port"),
        ("[listen]\nbogus = 1\n", "unknown key(s): bogus"),
        ("[nonsense]\n", "unknown section(s): nonsense"),
        ("[store]\ncheckpoint_every = 0\n", "store.checkpoint_every"),
    ],
)
def test_bad_config_exits_2(cli: Cli, tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "verifier.toml"
    config.write_text(content)
    proc = cli.run("verifier", "serve", "--config", config)
    assert proc.returncode == 2
    assert "configuration error" in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_and_usage_errors(cli: Cli, tmp_path: Path) -> None:
    world = make_world(cli, tmp_path)
    proc = cli.run("verifier", "serve", "--config", tmp_path / "missing.toml")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = cli.run("verifier", "serve", "--config", world.config, env={"ATTEST_LISTEN_PORT": "x"})
    assert proc.returncode == 2 and "listen.port" in proc.stderr
    # init refuses to replace the authority key
    proc = cli.run("authority", "init", "--dir", world.authority, "--id", "again")
    assert proc.returncode == 2 and "--force" in proc.stderr
    proc = cli.run("authority", "revoke", "--dir", world.authority, "--out", tmp_path / "r")
    assert proc.returncode == 2 and "nothing to revoke" in proc.stderr
    proc = cli.run("chip", "run", "--verifier", "127.0.0.1:1", "--state", tmp_path / "none")
    assert proc.returncode == 2 and "no such chip state folder" in proc.stderr
    proc = cli.run("chip", "fabricate", "--manufacturer", world.verifier, "--model", "HX100",
                   "--state", tmp_path / "c")  # fmt: skip
    assert proc.returncode == 2 and "manufacturer.cert" in proc.stderr

    effective = cli.ok(
        "verifier", "serve", "--config", world.config, "--print-config",
        env={"ATTEST_LISTEN_PORT": "7999"},
    )  # fmt: skip
    parsed = tomllib.loads(effective)
    assert parsed["listen"]["port"] == 7999
    assert parsed["store"]["path"] == str(world.verifier.resolve() / "verifier.db")
    written = tmp_path / "init.toml"
    cli.ok("verifier", "init-config", "--out", written)
    assert tomllib.loads(written.read_text())["limits"]["drain_timeout_s"] == 10.0
    assert cli.run("verifier", "init-config", "--out", written).returncode == 2


def _subparsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, (*path, name))


def test_help_for_every_subcommand(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    ours = {"authority", "verifier", "chip", "audit"}
    tree = [(path, p) for path, p in _subparsers(build_parser()) if not path or path[0] in ours]
    assert {path[0] for path, _ in tree if path} == ours
    for path, parser in tree:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue  # its choices carry the help
            assert action.help, f"attest {' '.join(path)}: {action.dest} has no help text"
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.startswith("usage: attest")
    # and through a real process, as an operator calls it
    out = cli.ok("chip", "run", "--help")
    assert "--rounds" in out and "0 runs until stopped" in out
