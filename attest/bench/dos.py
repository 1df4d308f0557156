"""``attest bench dos``: honest chips against a connection-slot flood, on the shipped config.

One run: a throwaway world as for ``e2e``; ``attest verifier serve`` with the configuration
``attest authority certify-verifier`` writes (every limit at its default; only the ports are
set), so the numbers are those of the *shipped* limits (``max_connections``,
``max_connections_per_address``, ``hello_timeout_s``). Then the attacker
(:mod:`attest.bench.flood`, another process) opens ``--idle`` connections from one address
(127.0.0.2), never sends anything and reopens every connection the verifier closes; once it
holds them, the load generator (:mod:`attest.bench.loadgen`) runs ``--chips`` honest chips,
each from its own loopback address (127.1.x.y, as chips at many sites), through their first
session (connect, HELLO, enrolment: the step a flood can block) and then a measured window of
keep-alive sessions. The chips start once the verifier has accepted every flood connection
at least once (the attack's steady state; the time that took is reported too).

Reported: the honest success rate over every session the chips started (first sessions
included; a refused or failed chip counts as failed and does not retry) and over chips (the
share that never failed), latency percentiles
of the first sessions and of the measured window, what the attacker achieved (connections
opened, closed by the verifier, held at the end), and the verifier's own counters (refusals by
reason, evictions) from ``/metrics``. Target of issue 10: success >= 99 % and p99 < 1 s with
10,000 idle sockets and 1,000 chips.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attest.bench import fleet as fleet_mod
from attest.bench.e2e import percentile, start_verifier

ATTACKER = "127.0.0.2"
HONEST_NET = "127.1"


def _metric(text: str, name: str) -> float:
    """Sum of the samples of metric ``name`` (any labels) in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            if head == name or head.startswith(name + "{"):
                total += float(value)
    return total


def _http_port(log: Path) -> int | None:
    for line in log.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "ready":
            port = event.get("http_port")
            return port if isinstance(port, int) else None
    return None


def _scrape(http: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10) as r:
        return str(r.read().decode())


def _wait_absorbed(http: int, idle: int, timeout_s: float = 120.0) -> float:
    """Seconds until the verifier has accepted every flood connection once (refused or
    serving it): the attack's steady state, in which the chips arrive."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        text = _scrape(http)
        seen = _metric(text, "attest_connections_refused_total") + _metric(
            text, "attest_open_connections"
        )
        if seen >= idle:
            return time.monotonic() - start
        time.sleep(0.2)
    raise RuntimeError(f"the verifier did not take the flood in {timeout_s:g} s")


def run_dos(
    *,
    chips: int = 1000,
    idle: int = 10_000,
    seconds: float = 20.0,
    inflight: int = 32,
    progress: Callable[[str], None] = lambda _: None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """One run (see the module docstring); returns the report as a dict."""
    with tempfile.TemporaryDirectory(prefix="attest-dos-", dir=workdir) as tmp:
        root = Path(tmp)
        progress(f"world and {chips} chips")
        world = fleet_mod.make_world(root)  # its verifier.toml: the shipped defaults
        fleet = fleet_mod.make_fleet(world, chips)
        fleet.write(world.fleet_file)
        progress("starting verifier (shipped configuration)")
        verifier = start_verifier(world, 1, env={"ATTEST_HTTP_PORT": "0"})
        flood = gen = None
        try:
            progress(f"attacker: {idle} idle connections from {ATTACKER}")
            flood = subprocess.Popen(
                [
                    sys.executable, "-m", "attest.bench.flood", "--port", str(verifier.port),
                    "--source", ATTACKER, "--sockets", str(idle), "--seconds", "3600",
                ],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert flood.stdout is not None and flood.stdin is not None
            if flood.stdout.readline().strip() != "phase ready":
                raise RuntimeError("the attacker failed to start")
            http = _http_port(verifier.log)
            if http is None:
                raise RuntimeError("the verifier did not report its ops port")
            absorbed = _wait_absorbed(http, idle)
            progress(f"the verifier has seen the whole flood ({absorbed:.1f} s)")
            progress(
                f"{chips} honest chips from {HONEST_NET}.x.y: first sessions, then {seconds:g} s"
            )
            gen = subprocess.Popen(
                [
                    sys.executable, "-m", "attest.bench.loadgen", "--fleet", str(world.fleet_file),
                    "--port", str(verifier.port), "--chips", str(chips), "--seconds", str(seconds),
                    "--inflight", str(inflight), "--source-net", HONEST_NET,
                ],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert gen.stdout is not None
            lines = [gen.stdout.readline().strip() for _ in range(2)]
            if lines != ["phase measure", "phase done"]:
                raise RuntimeError(f"load generator failed: {lines!r}")
            honest = json.loads(gen.stdout.readline())
            gen.wait(timeout=60)
            metrics = _scrape(http)
            flood.stdin.close()
            attack = json.loads(flood.stdout.readline())
            flood.wait(timeout=60)
        finally:
            for proc in (gen, flood):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
            exit_code = verifier.stop()
    warm = honest.pop("warmup_latencies_s")
    lat = honest.pop("latencies_s")
    ok = len(warm) + honest["sessions"]
    started = ok + honest["errors"]  # every failure ends its chip (no retries)
    success = ok / started if started else 0.0
    both = warm + lat
    return {
        "chips": chips,
        "idle_sockets": idle,
        "honest_sessions": started,
        "honest_ok": ok,
        "honest_success": success,
        # every failure ends its chip: the share of chips that never failed
        "honest_chip_success": 1 - honest["errors"] / chips if chips else 0.0,
        "honest_errors": honest["errors"],
        "honest_error_kinds": honest["error_kinds"],
        "first_session_p50_ms": percentile(warm, 50) * 1000,
        "first_session_p99_ms": percentile(warm, 99) * 1000,
        "window_sessions_per_s": honest["sessions_per_s"],
        "window_p50_ms": percentile(lat, 50) * 1000,
        "window_p99_ms": percentile(lat, 99) * 1000,
        "p99_ms": percentile(both, 99) * 1000,
        "attacker": attack,
        "flood_absorbed_s": absorbed,
        "verifier_refused_address_cap": _metric(
            metrics, 'attest_connections_refused_total{reason="address_cap"}'
        ),
        "verifier_refused_full": _metric(
            metrics, 'attest_connections_refused_total{reason="full"}'
        ),
        "verifier_evicted": _metric(metrics, "attest_connections_evicted_total"),
        "verifier_exit_code": exit_code,
    }
