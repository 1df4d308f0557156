"""A live ``/metrics`` passes Prometheus's own linter and says what the node did.

A real ``attest verifier serve`` (licensing on, a revocation list in force) serves real chips
from ``attest chip run``; its scrape goes through ``promtool check metrics`` (Debian's
``prometheus`` package; ``.ci/run`` installs it) and its values are checked against what the
chips saw. With ``--workers 2`` every scrape of the one ops port shows the whole node.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cli_support import CLI, HANG_TIMEOUT_S, Cli, World, clean_env, make_world, serve
from prom_support import DEPLOY, dashboard_exprs, promtool
from prometheus_client.parser import text_string_to_metric_families

from attest import __version__

CHIPS = 3
ROUNDS = 3
#: the delegation's quota and each licence's budget: three licences, then quota_exceeded
QUOTA_FLOPS = 3 * 10**14
BUDGET_FLOPS = 10**14


def check_metrics(text: str) -> None:
    proc = subprocess.run(
        [promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT_S,
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, ""), text


@dataclass
class Scrape:
    text: str
    #: sample name with its labels, e.g. ``attest_sessions_total{outcome="completed"}``
    samples: dict[str, float]
    #: every metric name the exposition declares (families and their sample names)
    names: frozenset[str]

    def __getitem__(self, key: str) -> float:
        return self.samples[key]


def parse(text: str) -> Scrape:
    samples: dict[str, float] = {}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_count", "_sum")}
        for s in family.samples:
            names.add(s.name)
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return Scrape(text, samples, frozenset(names))


def scrape(port: int) -> Scrape:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=HANG_TIMEOUT_S) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(response.read().decode())


def http_ports(log: Path) -> set[int]:
    """The ops ports the node's processes said they listen on (JSON log, event "ready")."""
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return {e["http_port"] for e in events if e.get("event") == "ready"}


def wait_ready_lines(log: Path, count: int) -> int:
    deadline = time.monotonic() + HANG_TIMEOUT_S
    while time.monotonic() < deadline:
        ports = http_ports(log)
        text = log.read_text()
        if text.count('"event":"ready"') >= count and len(ports) == 1:
            return ports.pop()
        time.sleep(0.05)
    raise AssertionError(log.read_text())


@dataclass
class Fleet:
    cli: Cli
    world: World
    chips: Path
    revocations: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    root = tmp_path_factory.mktemp("metrics")
    cli = Cli()
    world = make_world(cli, root)
    cli.ok("authority", "delegate", "--dir", world.authority, "--verifier", world.verifier,
           "--region", "MY-KL", "--quota-flops", str(QUOTA_FLOPS))  # fmt: skip
    chips = root / "chips"
    cli.ok("chip", "fabricate", "--manufacturer", world.manufacturer, "--model", "HX100",
           "--state", chips, "--count", str(CHIPS))  # fmt: skip
    revocations = root / "revocations.cose"
    # list 1 (a chip that does not exist: revoking nothing is refused)
    cli.ok("authority", "revoke", "--dir", world.authority, "--device", "01" + "11" * 16,
           "--out", revocations)  # fmt: skip
    env = {
        "ATTEST_LICENSING_ENABLED": "true",
        "ATTEST_LICENSING_BUDGET_FLOPS": str(BUDGET_FLOPS),
        "ATTEST_NODE_REVOCATIONS_FILE": str(revocations),
        "ATTEST_LOG_FORMAT": "json",
    }
    return Fleet(cli, world, chips, revocations, env)


def run_chips(fleet: Fleet, port: int, rounds: int = ROUNDS) -> list[str]:
    run = fleet.cli.run(
        "chip", "run", "--verifier", f"127.0.0.1:{port}", "--state", fleet.chips,
        "--rounds", str(rounds), "--interval", "0.05", "--share", "1.0",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_live_metrics_pass_promtool_and_count_what_happened(fleet: Fleet) -> None:
    promtool()
    with serve(fleet.world, fleet.env, name="single") as daemon:
        http = wait_ready_lines(daemon.log, 1)
        before = scrape(http)
        check_metrics(before.text)
        assert (
            before[
                f'attest_build_info{{implementation="CPython",python_version="{_py()}",version="{__version__}"}}'
            ]
            == 1
        )
        assert before["attest_ready"] == 1 and before["attest_store_up"] == 1
        assert before["attest_revocation_list_number"] == 1
        assert before['attest_sessions_total{outcome="completed"}'] == 0  # exists at 0

        out = run_chips(fleet, daemon.port)
        applied = sum("LICENSE applied" in line for line in out)
        time.sleep(1.2)  # one maintenance tick: the audit head is published
        after = scrape(http)
        check_metrics(after.text)
        # a session is a round, a connection holds several
        assert after['attest_sessions_total{outcome="completed"}'] == CHIPS * ROUNDS
        assert after['attest_verdicts_total{tier="affirming"}'] == CHIPS * ROUNDS
        assert after['attest_connections_total{outcome="closed"}'] == CHIPS
        assert after["attest_session_seconds_count"] == CHIPS * ROUNDS
        assert after["attest_registered_chips"] == CHIPS
        assert after["attest_open_connections"] == 0
        # licences: as many issued as chips applied; the quota allows three, then refusals
        assert applied >= 1 and after["attest_licenses_issued_total"] == applied
        assert after['attest_license_quota_used_ratio{meter="flops"}'] == pytest.approx(
            applied * BUDGET_FLOPS / QUOTA_FLOPS
        )
        if applied == QUOTA_FLOPS // BUDGET_FLOPS:
            assert after['attest_license_refusals_total{reason="quota_exceeded"}'] >= 1
        # the audit log: the adopted revocation list, one entry per attestation and one per
        # licence issued or refused
        refused = sum(
            v for k, v in after.samples.items() if k.startswith("attest_license_refusals_total")
        )
        head = after["attest_audit_head_seq"]
        assert head == 1 + CHIPS * ROUNDS + applied + refused
        assert after["attest_audit_published_seq"] == head
        assert after["attest_audit_published_timestamp_seconds"] == pytest.approx(
            time.time(), abs=30
        )

        # a newer revocation list on SIGHUP: the gauge follows
        fleet.cli.ok("authority", "revoke", "--dir", fleet.world.authority,
                     "--device", "01" + "22" * 16, "--out", fleet.revocations)  # fmt: skip
        daemon.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + HANG_TIMEOUT_S
        while scrape(http)["attest_revocation_list_number"] != 2:
            assert time.monotonic() < deadline, daemon.log.read_text()
            time.sleep(0.05)
        assert daemon.stop() == 0


def _py() -> str:
    import platform

    return platform.python_version()


def test_workers_one_scrape_sees_the_whole_node(fleet: Fleet, tmp_path: Path) -> None:
    """``--workers 2``: one ops port; each scrape (whichever worker answers) counts every
    worker's sessions, and promtool accepts the merged exposition. The supervisor alone
    notifies the service manager (READY=1 once both workers are ready, STOPPING=1)."""
    promtool()
    port_file, log = tmp_path / "workers.port", tmp_path / "workers.log"
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(tmp_path / "notify.sock"))
    manager.settimeout(HANG_TIMEOUT_S)
    env = {**fleet.env, "ATTEST_LISTEN_PORT": "0", "ATTEST_HTTP_PORT": "0",
           "ATTEST_LISTEN_PORT_FILE": str(port_file), "ATTEST_LOG_LEVEL": "INFO",
           "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
           "TMPDIR": str(tmp_path)}  # fmt: skip
    cmd = [*CLI, "verifier", "serve", "--config", str(fleet.world.config), "--workers", "2"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            env=clean_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a failed test kills the workers too
        )
    try:
        assert manager.recv(4096) == b"READY=1\nSTATUS=2 workers serving\n"
        http = wait_ready_lines(log, 2)  # both workers on one ops port
        port = _wait_port(port_file, proc)
        before = scrape(http)
        check_metrics(before.text)
        sessions = before['attest_sessions_total{outcome="completed"}']
        run_chips(fleet, port, rounds=2)
        run_chips(fleet, port, rounds=2)  # new connections: the kernel spreads them again
        check_metrics(scrape(http).text)
        total = sessions + 4 * CHIPS
        # what each worker served (its own files), which add up to what every scrape says
        [metrics_dir] = tmp_path.glob("attest-workers-*/metrics")
        served = [_served(f) for f in sorted(metrics_dir.glob("counter_*.db"))]
        assert len(served) == 2 and sum(served) == total, served
        time.sleep(1.2)  # a maintenance tick: each worker recounts the chips after enrolling
        for _ in range(8):  # a new connection each: the kernel picks the worker that answers
            seen = scrape(http)
            assert seen['attest_sessions_total{outcome="completed"}'] == total
            assert (
                seen["attest_session_seconds_count"]
                == seen['attest_sessions_total{outcome="completed"}']
            )
            assert seen["attest_registered_chips"] == CHIPS
            assert seen["attest_ready"] == 1
            assert seen["attest_open_connections"] == 0
            assert not any("pid=" in k for k in seen.samples), "gauges merged, no pid label"
        proc.send_signal(signal.SIGTERM)
        assert manager.recv(4096) == b"STOPPING=1\nSTATUS=draining\n"
        assert proc.wait(timeout=HANG_TIMEOUT_S) == 0, log.read_text()
        manager.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing from the workers
            manager.recv(4096)
        assert not list(tmp_path.glob("attest-workers-*"))  # the metrics files are gone
    finally:
        manager.close()
        with contextlib.suppress(ProcessLookupError):  # the supervisor and its workers
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=HANG_TIMEOUT_S)


def _served(counter_file: Path) -> float:
    """Completed sessions in one worker's counter file (read as a directory of its own)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    alone = counter_file.parent.parent / f"alone-{counter_file.stem}"
    alone.mkdir()
    shutil.copy(counter_file, alone)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(alone))
    text = generate_latest(registry).decode()
    shutil.rmtree(alone)
    return parse(text).samples.get('attest_sessions_total{outcome="completed"}', 0.0)


def _wait_port(path: Path, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + HANG_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None
        if path.exists() and path.read_text().endswith("\n"):
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError("no port file")


@pytest.fixture
def exported(fleet: Fleet) -> Iterator[frozenset[str]]:
    """Every metric name a running node with every mechanism's metrics declares."""
    env = {**fleet.env, "ATTEST_LOCATION_ENABLED": "true", "ATTEST_LOCATION_POSITION": "3.1, 101.7"}
    with serve(fleet.world, env, name="names") as daemon:
        yield scrape(wait_ready_lines(daemon.log, 1)).names


_NAME = re.compile(r"\battest_[a-z0-9_]+")


def test_dashboard_and_alerts_name_only_metrics_the_node_exports(
    exported: frozenset[str],
) -> None:
    """Every metric the Grafana dashboard and the alerting rules mention is one a running node
    (with licensing, pods and location on) declares in its exposition."""
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    for source, text in (("dashboard", "\n".join(dashboard_exprs())), ("alerts.yml", rules)):
        named = set(_NAME.findall(text))
        assert named, source
        assert named <= exported, f"{source} names metrics the node does not export: " + str(
            sorted(named - exported)
        )
    # and the dashboard shows every family the node has (nothing an operator cannot see)
    shown = set(_NAME.findall("\n".join(dashboard_exprs())))
    families = {n for n in exported if not n.endswith(("_bucket", "_count", "_sum", "_created"))}
    unshown = {n for n in families if not ({n, n + "_total", n + "_bucket"} & shown)}
    assert not unshown, unshown


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(port: int, path: str) -> Any:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    with urllib.request.urlopen(url, timeout=HANG_TIMEOUT_S) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def test_prometheus_scrapes_a_node_and_the_alerts_fire_as_they_should(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Real Prometheus (the binary promtool ships with) scrapes a live node with
    deploy/prometheus/alerts.yml loaded: the target is up, every rule evaluates without error,
    and once chips are refused licences for a spent quota exactly the licensing alerts are
    active (the refusals firing, the spent quota pending its 5 minutes) and no other."""
    binary = Path(promtool()).with_name("prometheus")
    if not binary.exists():
        pytest.skip(f"{binary} not installed")
    with serve(fleet.world, fleet.env, name="scraped") as daemon:
        http = wait_ready_lines(daemon.log, 1)
        rules = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
        config = (
            rules.replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
            .replace("- alerts.yml", f"- {DEPLOY / 'prometheus' / 'alerts.yml'}")
            .replace("127.0.0.1:7401", f"127.0.0.1:{http}")
        )
        (tmp_path / "prometheus.yml").write_text(config)
        web = _free_port()
        with open(tmp_path / "prometheus.log", "wb") as out:
            prom = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{web}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + HANG_TIMEOUT_S

            def until(check: Callable[[], bool]) -> None:
                while True:
                    try:
                        if check():
                            return
                    except OSError:  # Prometheus not listening yet
                        pass
                    assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()
                    assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()
                    time.sleep(0.2)

            def query(expr: str) -> list[Any]:
                result: list[Any] = _api(web, "query?" + urlencode({"query": expr}))["result"]
                return result

            until(lambda: [r["value"][1] for r in query('up{job="attest-verifier"}')] == ["1"])
            assert [r["value"][1] for r in query("attest_ready")] == ["1"]
            run_chips(fleet, daemon.port, rounds=2)  # the quota is spent: refusals

            def alerts() -> dict[str, str]:
                return {a["labels"]["alertname"]: a["state"] for a in _api(web, "alerts")["alerts"]}

            # (AttestAuditCheckpointStale may be pending for a second, until the node has
            # published the entries of these sessions; its `for: 5m` is what keeps it quiet)
            expected = {
                "AttestLicenseRefusals": "firing",
                "AttestLicenseQuotaNearlySpent": "pending",
            }
            until(lambda: alerts() == expected)
            groups = _api(web, "rules")["groups"]
            evaluated = [r for g in groups for r in g["rules"]]
            assert len(evaluated) == 9
            assert all(r["health"] == "ok" and not r.get("lastError") for r in evaluated), evaluated
        finally:
            prom.terminate()
            prom.wait(timeout=HANG_TIMEOUT_S)
