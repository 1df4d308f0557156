"""``attest bench location``: the loopback round-trip floor, its jitter, the bound it implies.

A landmark node (built by attest.node.app, in this process, ``[location]`` enabled) and a real
chip in a second process (``attest chip run``) on 127.0.0.1: the chip attests in rounds of
``per_round`` PINGs until ``pings`` PONGs were timed by the node's own driver
(``time.perf_counter_ns``, TCP_NODELAY). What it reports is the calibration an operator needs:

* the **floor** — the least round trip at distance zero: both TCP stacks, two event loops and
  the chip's signature. An allowance at most this large keeps bounds sound for chips as fast
  as this one (a faster genuine chip would need a smaller allowance);
* the **jitter** — how far above the floor the round trips spread (percentiles, stdev);
* the **bound** a chip on this machine gets: the least of 30 consecutive PINGs (the default
  measurement), turned into kilometres with the default allowance and with none.

Baselines: a bare TCP echo of the same size between the same two processes' kind (trio on
both ends, no protocol, no signature) — what the PINGs cost beyond the kernel — and the
machine's libsodium verify rate, the yardstick of every ``attest bench`` report.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from attest.chip.device import fabricate
from attest.identity import Authority, Manufacturer, VerifierIdentity
from attest.keys import SigningKey
from attest.location.messages import vacuum_bound_m
from attest.location.verifier import LocationSection, LocationVerifier
from attest.messages.revocation import Revocations
from attest.node.app import assemble
from attest.node.server import NodeSettings, VerifierNode
from attest.store.sqlite import SqliteStore
from attest.verify.policy import Policy

#: what a record takes the least of by default ([location] pings)
WINDOW = 30


def _percentile(sorted_values: list[int], q: float) -> int:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run_location(
    *,
    pings: int = 10_000,
    per_round: int = 1000,
    allowance_ns: int = 50_000,
    progress: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    per_round = max(1, min(per_round, pings, 1000))
    rounds = -(-pings // per_round)
    with tempfile.TemporaryDirectory(prefix="attest-bench-location-") as tmp:
        samples, chip_exit = trio.run(_measure, Path(tmp), per_round, rounds, progress)
    progress("baselines: bare TCP echo, libsodium verify")
    echo = trio.run(_echo, min(2000, pings))
    from attest.bench.core import measure_libsodium

    libsodium = measure_libsodium(0.5)
    ordered = sorted(samples)
    floor = ordered[0]
    minima = [min(samples[i : i + WINDOW]) for i in range(0, len(samples) - WINDOW + 1, WINDOW)]
    minima.sort()
    km = 1 / 1000
    return {
        "pings": len(samples),
        "per_round": per_round,
        "chip_exit_code": chip_exit,
        "floor_us": floor / 1000,
        "p1_us": _percentile(ordered, 0.01) / 1000,
        "p50_us": _percentile(ordered, 0.50) / 1000,
        "p99_us": _percentile(ordered, 0.99) / 1000,
        "max_us": ordered[-1] / 1000,
        "mean_us": statistics.fmean(samples) / 1000,
        "jitter_stdev_us": statistics.pstdev(samples) / 1000,
        "jitter_p50_minus_floor_us": (_percentile(ordered, 0.50) - floor) / 1000,
        "window": WINDOW,
        "window_min_p50_us": _percentile(minima, 0.5) / 1000,
        "window_min_p99_us": _percentile(minima, 0.99) / 1000,
        "allowance_us": allowance_ns / 1000,
        "bound_floor_km": vacuum_bound_m(floor, allowance_ns) * km,
        "bound_window_p50_km": vacuum_bound_m(_percentile(minima, 0.5), allowance_ns) * km,
        "bound_window_p99_km": vacuum_bound_m(_percentile(minima, 0.99), allowance_ns) * km,
        "bound_no_allowance_window_p50_km": vacuum_bound_m(_percentile(minima, 0.5), 0) * km,
        "jitter_km_per_us": vacuum_bound_m(1000, 0) * km,
        "histogram_us": _histogram([s / 1000 for s in ordered[: int(len(ordered) * 0.99)]]),
        "echo_floor_us": echo / 1000,
        "floor_vs_echo": floor / max(echo, 1),
        "libsodium_verify_per_s": libsodium,
    }


async def _echo(n: int) -> int:
    """The least round trip of a bare 90-byte TCP echo on loopback (no protocol at all)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def server(stream: trio.SocketStream) -> None:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)

    best = 1 << 62
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, server, listeners)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        for _ in range(n):
            sent = time.perf_counter_ns()
            await client.send_all(b"x" * 90)
            got = 0
            while got < 90:
                got += len(await client.receive_some(65536))
            best = min(best, time.perf_counter_ns() - sent)
        await client.aclose()
        nursery.cancel_scope.cancel()
    return best


def _histogram(values: list[float], bins: int = 60) -> dict[str, list[float]]:
    lo, hi = values[0], values[-1]
    width = max((hi - lo) / bins, 1e-9)
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    return {
        "edges": [lo + i * width for i in range(bins + 1)],
        "counts": [float(c) for c in counts],
    }


async def _measure(
    tmp: Path, per_round: int, rounds: int, progress: Callable[[str], None]
) -> tuple[list[int], int]:
    now = int(time.time())
    authority = Authority("authority.bench", SigningKey.generate())
    mkey = SigningKey.generate()
    maker = Manufacturer(
        "bench-mfr", mkey, authority.certify_manufacturer("bench-mfr", mkey.public_key, now_s=now)
    )
    vkey = SigningKey.generate()
    identity = VerifierIdentity(
        "bench-landmark",
        "MY",
        vkey,
        authority.certify_verifier("bench-landmark", "MY", vkey.public_key, now_s=now),
    )
    chip_dir = tmp / "chip"
    fabricate(maker, authority.anchors, hwmodel="HX100", pod_class=8, now_s=now, state_dir=chip_dir)
    store = SqliteStore(tmp / "landmark.db", verifier_id=identity.verifier_id, group_sync=True)
    built = assemble(
        identity=identity,
        anchors=authority.anchors,
        store=store,
        policy=Policy(),
        revocations=Revocations(),
        sections={
            "location": LocationSection(enabled=True, position="3.139, 101.687", pings=per_round)
        },
    )
    node = VerifierNode(built.service, NodeSettings(http_port=-1, group_sync=True))
    part = node.service.part(LocationVerifier)
    assert part is not None
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        assert node.address is not None
        progress(f"{rounds} rounds of {per_round} PINGs, chip in a second process")
        cmd = [
            sys.executable, "-m", "attest.cli.main", "chip", "run",
            "--verifier", f"127.0.0.1:{node.address.port}", "--state", str(chip_dir),
            "--rounds", str(rounds), "--interval", "0",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        done = await trio.run_process(cmd, env=env, capture_stdout=True, check=False)
        node.shutdown()
    return list(part.samples), done.returncode
