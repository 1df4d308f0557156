"""What ships in deploy/: alerting rules (promtool), the Grafana dashboard, the systemd unit and
the Containerfile; and the sd_notify readiness protocol they rely on, over real sockets.

Which metrics the dashboard and the rules name is checked against a live node in
tests/test_metrics.py.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import HANG_TIMEOUT_S, Cli, make_world, serve
from prom_support import DEPLOY, dashboard_exprs, promtool

from attest.node import notify
from attest.node.config import HttpSection, LimitsSection, ListenSection, load_config


def _promtool(*args: str | Path, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [promtool(), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=HANG_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


# -- Prometheus rules and the dashboard --------------------------------------------------------
def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    out = _promtool("check", "rules", DEPLOY / "prometheus" / "alerts.yml")
    assert "SUCCESS: 9 rules found" in out
    alerts = re.findall(r"- alert: (\w+)", (DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert {
        "AttestNodeDown",
        "AttestNodeNotReady",
        "AttestContraindicatedRateHigh",
        "AttestPodAlerts",
        "AttestLicenseQuotaNearlySpent",
        "AttestAuditCheckpointStale",
    } <= set(alerts)
    # every alert is exercised by the unit tests (each one fires in some case there)
    tested = (DEPLOY / "prometheus" / "alerts_test.yml").read_text()
    assert set(alerts) - {"AttestLocationAlerts"} <= set(re.findall(r"alertname: (\w+)", tested))
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml", cwd=DEPLOY / "prometheus")


def test_prometheus_config_passes_promtool() -> None:
    out = _promtool("check", "config", DEPLOY / "prometheus" / "prometheus.yml")
    assert "SUCCESS: 1 rule files found" in out and "SUCCESS: 9 rules found" in out


def test_alert_rule_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests are not vacuous: a rule with a wrong threshold fails them."""
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    (tmp_path / "alerts.yml").write_text(rules.replace("> 0.9", "> 0.99"))
    shutil.copy(DEPLOY / "prometheus" / "alerts_test.yml", tmp_path)
    proc = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=HANG_TIMEOUT_S,
    )
    assert proc.returncode == 1 and "AttestLicenseQuotaNearlySpent" in proc.stdout + proc.stderr


def test_dashboard_is_json_and_every_query_is_promql(tmp_path: Path) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "attest-verifier.json").read_text())
    assert dashboard["uid"] == "attest-verifier" and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # Grafana's variables replaced as Grafana would; each query then checked by promtool as
    # the expression of a recording rule
    exprs = [e for e in dashboard_exprs() if not e.startswith("label_values(")]
    substituted = [
        e.replace("$__rate_interval", "5m")
        .replace("$job", "attest-verifier")
        # the multi-value instance variable becomes a regex alternative
        .replace("$instance", "kl-1:7401|jb-1:7401")
        for e in exprs
    ]
    assert not any("$" in e for e in substituted), substituted
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(substituted)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.json"  # JSON is YAML
    path.write_text(json.dumps(rules))
    assert f"SUCCESS: {len(substituted)} rules found" in _promtool("check", "rules", path)


# -- systemd unit and Containerfile ------------------------------------------------------------
def _unit() -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / "attest-verifier.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def test_systemd_unit_is_a_hardened_notify_service(tmp_path: Path) -> None:
    unit = _unit()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["ExecStart"][0].split()[1:4] == ["verifier", "serve", "--config"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert unit[key] == ["yes"], key
    assert unit["ProtectSystem"] == ["strict"] and unit["CapabilityBoundingSet"] == [""]
    # the drain and the final checkpoint fit in the stop timeout
    assert int(unit["TimeoutStopSec"][0]) >= LimitsSection().drain_timeout_s + 10
    # its Environment= lines are settings the node accepts
    env = dict(e.split("=", 1) for e in unit["Environment"])
    _settings_take_effect(env)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed: the unit's syntax is not checked")
    # systemd-analyze insists that ExecStart names an executable: point it at this one
    text = (DEPLOY / "systemd" / "attest-verifier.service").read_text()
    attest = Path(shutil.which("attest") or "/bin/true")
    (tmp_path / "attest-verifier.service").write_text(
        text.replace("/opt/attest/bin/attest", str(attest))
    )
    proc = subprocess.run(
        [analyze, "verify", tmp_path / "attest-verifier.service"],
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT_S,
    )
    # it warns (unknown keys, bad values) on stderr without failing: allow no output at all
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_containerfile_runs_the_node_with_settings_it_accepts() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    assert re.search(r"^FROM .*python:\$\{PYTHON\}-slim", text, re.M)
    assert re.search(r"^USER 10001", text, re.M) and "STOPSIGNAL SIGTERM" in text
    ports = re.search(r"^EXPOSE (\d+)/tcp (\d+)/tcp", text, re.M)
    assert ports is not None
    assert (int(ports[1]), int(ports[2])) == (ListenSection().port, HttpSection().port)
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)[1])  # type: ignore[index]
    assert entry[:3] == ["attest", "verifier", "serve"]
    env_block = re.search(r"^ENV PATH=.*?(?=^USER)", text, re.M | re.S)
    assert env_block is not None
    env = dict(re.findall(r"(ATTEST_[A-Z_]+)=(\S+)", env_block[0]))
    assert env["ATTEST_HTTP_HOST"] == env["ATTEST_LISTEN_HOST"] == "0.0.0.0"
    _settings_take_effect(env)
    assert ".venv" in (DEPLOY.parent / ".dockerignore").read_text().split()


def _settings_take_effect(env: dict[str, str]) -> None:
    """Each ATTEST_* setting names a real key of the node's configuration and takes effect."""
    config = load_config(None, env)
    for name, value in env.items():
        assert name.startswith("ATTEST_"), name
        section, _, key = name.removeprefix("ATTEST_").lower().partition("_")
        assert str(getattr(getattr(config, section), key)) == value, name


# -- sd_notify ---------------------------------------------------------------------------------
@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A service manager's end: a bound Unix datagram socket named by NOTIFY_SOCKET."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(HANG_TIMEOUT_S)
        monkeypatch.setenv(notify.SOCKET_ENV, str(path))
        yield sock


def _parse(datagram: bytes) -> dict[str, str]:
    assert datagram.endswith(b"\n")
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


async def test_notify_sends_the_protocol_datagrams(notify_socket: socket.socket) -> None:
    assert await notify.ready("serving on port 7400")
    assert _parse(notify_socket.recv(4096)) == {"READY": "1", "STATUS": "serving on port 7400"}
    assert await notify.reloading()
    reloading = _parse(notify_socket.recv(4096))
    assert reloading["RELOADING"] == "1"
    now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert 0 < now_us - int(reloading["MONOTONIC_USEC"]) < HANG_TIMEOUT_S * 1e6
    assert await notify.stopping()
    assert _parse(notify_socket.recv(4096)) == {"STOPPING": "1", "STATUS": "draining"}
    assert notify.send_now(notify.message("READY=1"))
    assert notify_socket.recv(4096) == b"READY=1\n"


async def test_notify_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"attest-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(HANG_TIMEOUT_S)
        monkeypatch.setenv(notify.SOCKET_ENV, "@" + name)
        assert await notify.ready()
        assert sock.recv(4096) == b"READY=1\nSTATUS=serving\n"
        assert notify.send_now(notify.message("STOPPING=1"))
        assert sock.recv(4096) == b"STOPPING=1\n"


async def test_notify_without_a_manager_does_nothing_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(notify.SOCKET_ENV, raising=False)
    assert not await notify.ready() and not notify.send_now(b"READY=1\n")
    # a socket path nobody listens on: logged, dropped, the caller goes on
    monkeypatch.setenv(notify.SOCKET_ENV, str(tmp_path / "gone.sock"))
    with caplog.at_level(logging.WARNING, logger="attest.node"):
        assert not await notify.ready()
        assert not notify.send_now(b"READY=1\n")
    failed = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "notify_failed"]
    assert len(failed) == 2


def _wait_message(sock: socket.socket, key: str, seen: list[dict[str, str]]) -> dict[str, str]:
    while True:
        message = _parse(sock.recv(4096))
        seen.append(message)
        if key in message:
            return message


def test_daemon_notifies_ready_reloading_and_stopping(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    """A real ``attest verifier serve`` under a stand-in service manager: READY=1 only once
    its port accepts connections, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on
    SIGTERM, then exit 0."""
    cli = Cli()
    world = make_world(cli, tmp_path)
    env = {notify.SOCKET_ENV: os.environ[notify.SOCKET_ENV], "ATTEST_LOG_FORMAT": "json"}
    seen: list[dict[str, str]] = []
    with serve(world, env) as daemon:
        ready = _wait_message(notify_socket, "READY", seen)
        assert ready["STATUS"] == f"serving on port {daemon.port}"
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=HANG_TIMEOUT_S):
            pass  # listening when READY=1 arrived (the port file comes after it)
        daemon.proc.send_signal(signal.SIGHUP)
        assert "MONOTONIC_USEC" in _wait_message(notify_socket, "RELOADING", seen)
        assert _wait_message(notify_socket, "READY", seen)["STATUS"] == "reloaded"
        log = daemon.log.read_text()
        assert '"event":"reloaded"' in log
        daemon.proc.send_signal(signal.SIGTERM)
        assert _wait_message(notify_socket, "STOPPING", seen)["STATUS"] == "draining"
        assert daemon.proc.wait(timeout=HANG_TIMEOUT_S) == 0
    assert [next(iter(m)) for m in seen] == ["READY", "RELOADING", "READY", "STOPPING"]


def test_daemon_notifies_reload_failed_and_keeps_serving(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    """A broken configuration on SIGHUP: READY=1 follows RELOADING=1 all the same (the node
    serves with the configuration it had), with a status that says so."""
    cli = Cli()
    world = make_world(cli, tmp_path)
    env = {notify.SOCKET_ENV: os.environ[notify.SOCKET_ENV]}
    seen: list[dict[str, str]] = []
    with serve(world, env) as daemon:
        _wait_message(notify_socket, "READY", seen)
        world.config.write_text(world.config.read_text() + "\n[nonsense\n")
        daemon.proc.send_signal(signal.SIGHUP)
        _wait_message(notify_socket, "RELOADING", seen)
        assert _wait_message(notify_socket, "READY", seen)["STATUS"] == "reload failed"
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=HANG_TIMEOUT_S):
            pass
        assert daemon.stop() == 0


def test_daemon_revoked_on_reload_tells_the_manager_it_stops(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    """SIGHUP brings a revocation list that revokes this very node: RELOADING=1, then
    STOPPING=1 (not READY=1), and the node drains and exits."""
    cli = Cli()
    world = make_world(cli, tmp_path)
    revocations = tmp_path / "revocations.cose"
    cli.ok("authority", "revoke", "--dir", world.authority, "--device", "01" + "33" * 16,
           "--out", revocations)  # fmt: skip
    env = {
        notify.SOCKET_ENV: os.environ[notify.SOCKET_ENV],
        "ATTEST_NODE_REVOCATIONS_FILE": str(revocations),
    }
    seen: list[dict[str, str]] = []
    with serve(world, env) as daemon:
        _wait_message(notify_socket, "READY", seen)
        cli.ok("authority", "revoke", "--dir", world.authority, "--verifier", "kl-1",
               "--out", revocations)  # fmt: skip
        daemon.proc.send_signal(signal.SIGHUP)
        _wait_message(notify_socket, "RELOADING", seen)
        assert _wait_message(notify_socket, "STOPPING", seen)["STATUS"] == "revoked: stopping"
        assert daemon.proc.wait(timeout=HANG_TIMEOUT_S) == 0
    assert [next(iter(m)) for m in seen] == ["READY", "RELOADING", "STOPPING"]
