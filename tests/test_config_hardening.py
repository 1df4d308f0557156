"""Configuration and operator-signal hardening (issue 10, finding 5), through the real CLI.

Values that used to pass validation and then crash or silently disable a deadline; a secret
key readable by others; a configuration path that is a folder or not text; SIGHUP, which used
to kill the node and now reloads revocation lists and policy.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from cli_support import HANG_TIMEOUT_S, Cli, make_world, serve

from attest.errors import AttestError, ConfigError
from attest.keys import SigningKey, read_secret_key, write_secret_key
from attest.node.config import load_config
from attest.store.sqlite import SqliteStore


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[limits]\nsession_timeout_s = nan\n", {}, "limits.session_timeout_s: must be a finite"),
        ("[limits]\nidle_timeout_s = inf\n", {}, "limits.idle_timeout_s: must be a finite"),
        ("[limits]\ndrain_timeout_s = 1e308\n", {}, "limits.drain_timeout_s must be > 0 and <="),
        ("", {"ATTEST_LIMITS_SESSION_TIMEOUT_S": "nan"}, "must be a finite number"),
        ("", {"ATTEST_LIMITS_HELLO_TIMEOUT_S": "-inf"}, "must be a finite number"),
        ("[limits]\nhello_timeout_s = 20.0\n", {}, "hello_timeout_s must not exceed"),
        ("[limits]\nsession_timeout_s = 10000000000000000000000\n", {}, "must be > 0 and <="),
        (f"[limits]\nsession_timeout_s = 1{'0' * 400}\n", {}, "out of range"),
        ("[limits]\nmax_connections = 100000000000\n", {}, "limits.max_connections must be"),
        ("[limits]\nmax_connections_per_address = 0\n", {}, "max_connections_per_address"),
        ("[policy]\nchallenge_ttl_s = 100000000\n", {}, "policy.challenge_ttl_s must be"),
        ("[store]\nbusy_timeout_s = nan\n", {}, "store.busy_timeout_s: must be a finite"),
        ("[licensing]\nrenew_below = nan\n", {}, "licensing.renew_below"),
    ],
)
def test_nonfinite_and_huge_settings_are_refused(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    """Regression: nan passed validation (every comparison with nan is false) and crashed the
    node on its first connection; inf and 1e308 silently disabled the deadlines."""
    config = tmp_path / "verifier.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as refused:
        load_config(config, env)
    assert message in str(refused.value)


def test_config_path_that_is_a_folder_or_not_text_is_a_one_line_error(
    cli: Cli, tmp_path: Path
) -> None:
    """Regression: both gave a traceback."""
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"[listen]\nport = 1\n\xff\xfe\n")
    for path, message in ((tmp_path, "is a directory"), (binary, "not UTF-8 text")):
        proc = cli.run("verifier", "serve", "--config", path)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.fixture
def cli() -> Cli:
    return Cli()


def test_secret_key_readable_by_others_is_refused(cli: Cli, tmp_path: Path) -> None:
    """Regression: a key file with mode 0644 was used silently (ssh refuses such keys)."""
    key_file = tmp_path / "k.key"
    write_secret_key(key_file, SigningKey.generate())
    read_secret_key(key_file)  # 0600: fine
    for mode in (0o640, 0o604, 0o660):
        os.chmod(key_file, mode)
        with pytest.raises(AttestError, match=f"permissions {mode:04o} are too open"):
            read_secret_key(key_file)

    world = make_world(cli, tmp_path / "world")
    os.chmod(world.verifier / "verifier.key", 0o644)
    proc = cli.run("verifier", "serve", "--config", world.config)
    assert proc.returncode == 2
    assert "permissions 0644 are too open" in proc.stderr and "chmod 600" in proc.stderr
    assert "Traceback" not in proc.stderr


def _events(log: Path, name: str) -> list[dict[str, object]]:
    out = []
    for line in log.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == name:
            out.append(event)
    return out


def _wait_for(log: Path, name: str, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + HANG_TIMEOUT_S
    while time.monotonic() < deadline:
        found = _events(log, name)
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no {name!r} event in the log:\n{log.read_text()}")


def test_sighup_reloads_revocations_and_policy(cli: Cli, tmp_path: Path) -> None:
    """Regression: SIGHUP killed the node. Now it re-reads the configuration: the newer list
    is adopted (and audited), the policy changes, and a broken file keeps the running one."""
    world = make_world(cli, tmp_path)
    out = cli.ok(
        "chip", "fabricate", "--manufacturer", world.manufacturer, "--model", "HX100",
        "--state", tmp_path / "chips", "--count", "2",
    )  # fmt: skip
    first, second = (line.split()[0] for line in out.splitlines())
    revocations = tmp_path / "revocations.cose"
    cli.ok("authority", "revoke", "--dir", world.authority, "--device", first,
           "--out", revocations)  # fmt: skip
    config = world.config.read_text()
    env = {"ATTEST_NODE_REVOCATIONS_FILE": str(revocations), "ATTEST_LOG_FORMAT": "json"}

    def run_second() -> str:
        proc = cli.run(
            "chip", "run", "--verifier", f"127.0.0.1:{daemon.port}",
            "--state", tmp_path / "chips" / "chip-0002", "--rounds", "1",
        )  # fmt: skip
        return proc.stdout

    with serve(world, env, name="hup") as daemon:
        assert "AFFIRMING" in run_second()
        cli.ok(
            "authority",
            "revoke",
            "--dir",
            world.authority,
            "--device",
            second,
            "--out",
            revocations,
        )  # fmt: skip  (list #2 replaces the file)
        changed = config.replace('policy_id = "attest-default-v1"', 'policy_id = "reloaded-v2"')
        assert changed != config
        world.config.write_text(changed)
        daemon.proc.send_signal(signal.SIGHUP)
        [reloaded] = _wait_for(daemon.log, "reloaded", 1)
        assert reloaded["revocation_list"] == 2 and reloaded["policy_id"] == "reloaded-v2"
        assert "CONTRAINDICATED DEVICE_REVOKED" in run_second()

        world.config.write_text("[listen\n")  # broken: the running configuration stays
        daemon.proc.send_signal(signal.SIGHUP)
        _wait_for(daemon.log, "reload_failed", 1)
        assert daemon.proc.poll() is None
        assert "DEVICE_REVOKED" in run_second()
        assert daemon.stop() == 0
    with SqliteStore(world.db, readonly=True) as store:
        adopted = [r.entry for r in store.audit_entries() if r.entry.kind == "revocations"]
    assert [int.from_bytes(e.nonce, "big") for e in adopted] == [1, 2]
