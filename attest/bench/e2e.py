"""End-to-end benchmarks: full sessions against a real ``attest verifier serve`` on loopback.

One run: make a throwaway world with the real CLI, optionally register many chips in the
store, start ``attest verifier serve [--workers K]`` as a subprocess (INFO logs to a file, as
in production), start the load generator (:mod:`attest.bench.loadgen`) as another process,
and while it measures sample the verifier's CPU time and memory from ``/proc``. The libsodium
baseline is measured in the same run, before the daemon starts, so the ratio compares numbers
from one machine state. ``scale`` repeats the run with more registered chips; ``soak`` runs one
long window and follows the verifier's memory.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest.bench import fleet as fleet_mod
from attest.bench.core import measure_libsodium

_TICK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 60.0


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the verifier and, with --workers, its worker processes)."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(_children(p))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def memory_kb(pids: list[int], key: str) -> list[int]:
    """``VmRSS`` or ``VmHWM`` (peak RSS) of each process, in kB."""
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        out.append(int(line.split()[1]))
        except OSError:
            continue
    return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no numpy needed for the daemon benchmarks)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass
class Verifier:
    """A running ``attest verifier serve`` (killed on exit, whatever happens)."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    pids: list[int] = field(default_factory=list)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9


def start_verifier(
    world: fleet_mod.BenchWorld,
    workers: int,
    name: str = "verifier",
    *,
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Verifier:
    """``attest verifier serve`` on a free port (ops endpoint off unless ``env`` says so)."""
    port_file = world.root / f"{name}.port"
    port_file.unlink(missing_ok=True)
    log = world.root / f"{name}.log"
    environ = dict(os.environ)
    environ.update(
        {
            "ATTEST_LISTEN_PORT": "0",
            "ATTEST_LISTEN_PORT_FILE": str(port_file),
            "ATTEST_HTTP_PORT": "-1",
            **(env or {}),
        }
    )
    cmd = [sys.executable, "-m", "attest.cli.main", "verifier", "serve", "--config"]
    cmd += [str(config or world.config)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, env=environ, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"verifier exited {proc.returncode}:\n{log.read_text()[-4000:]}")
        text = port_file.read_text() if port_file.exists() else ""
        if text.endswith("\n"):
            verifier = Verifier(proc, int(text), log)
            verifier.pids = process_tree(proc.pid)
            return verifier
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"verifier did not start in {START_TIMEOUT_S} s")


class _Sampler(threading.Thread):
    """Samples the verifier's RSS every ``every`` seconds while the window is open."""

    def __init__(self, pids: list[int], every: float) -> None:
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.samples: list[tuple[float, float]] = []  # (seconds into window, total RSS MB)
        self.stop_event = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop_event.is_set():
            self.samples.append(
                (time.monotonic() - start, sum(memory_kb(self.pids, "VmRSS")) / 1024)
            )
            self.stop_event.wait(self.every)


def run_e2e(
    *,
    chips: int,
    seconds: float,
    workers: int = 1,
    inflight: int = 64,
    rate: float = 0.0,
    registered: int = 0,
    baseline_seconds: float = 1.0,
    sample_every: float = 1.0,
    workdir: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """One end-to-end run (see the module docstring); returns the report as a dict."""
    baseline = measure_libsodium(seconds=baseline_seconds)
    with tempfile.TemporaryDirectory(prefix="attest-bench-", dir=workdir) as tmp:
        root = Path(tmp)
        progress(f"world and {max(chips, registered)} chips")
        world = fleet_mod.make_world(root)
        fleet = fleet_mod.make_fleet(world, max(chips, registered))
        fleet.write(world.fleet_file)
        in_store = 0
        if registered:
            progress(f"registering {registered} chips")
            in_store = fleet_mod.register(world, fleet, registered)
        progress(f"starting verifier ({workers} worker{'s' if workers > 1 else ''})")
        verifier = start_verifier(world, workers)
        try:
            gen_cmd = [sys.executable, "-m", "attest.bench.loadgen", "--fleet"]
            gen_cmd += [str(world.fleet_file), "--port", str(verifier.port), "--chips", str(chips)]
            gen_cmd += ["--seconds", str(seconds), "--inflight", str(inflight)]
            gen_cmd += ["--rate", str(rate)]
            gen = subprocess.Popen(gen_cmd, stdout=subprocess.PIPE, text=True)
            assert gen.stdout is not None
            progress(f"warm-up: first session of {chips} chips")
            line = gen.stdout.readline().strip()
            if line != "phase measure":
                gen.wait()
                raise RuntimeError(f"load generator failed before measuring: {line!r}")
            pids = process_tree(verifier.proc.pid)
            rss_start = sum(memory_kb(pids, "VmRSS")) / 1024
            cpu0, t0 = cpu_seconds(pids), time.monotonic()
            sampler = _Sampler(pids, sample_every)
            sampler.start()
            progress(f"measuring for {seconds:g} s")
            line = gen.stdout.readline().strip()
            cpu1, t1 = cpu_seconds(pids), time.monotonic()
            sampler.stop_event.set()
            sampler.join()
            rss_end = sum(memory_kb(pids, "VmRSS")) / 1024
            peak_rss = memory_kb(pids, "VmHWM")
            result = json.loads(gen.stdout.readline())
            gen.wait(timeout=60)
        finally:
            exit_code = verifier.stop()
    lat = result.pop("latencies_s")
    result.pop("warmup_latencies_s", None)
    rate_s = result["sessions_per_s"]
    return {
        **result,
        "workers": workers,
        "registered_chips": in_store,
        "p50_ms": percentile(lat, 50) * 1000,
        "p95_ms": percentile(lat, 95) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": max(lat) * 1000 if lat else float("nan"),
        "latency_histogram_ms": _histogram([x * 1000 for x in lat]),
        "verifier_cpu_s": cpu1 - cpu0,
        "verifier_cpu_cores": (cpu1 - cpu0) / (t1 - t0) if t1 > t0 else float("nan"),
        "verifier_cpu_us_per_session": (cpu1 - cpu0) / max(1, result["sessions"]) * 1e6,
        "verifier_peak_rss_mb": sum(peak_rss) / 1024,
        "verifier_peak_rss_mb_per_process": [kb / 1024 for kb in peak_rss],
        "verifier_rss_start_mb": rss_start,
        "verifier_rss_end_mb": rss_end,
        "rss_samples": sampler.samples,
        "verifier_exit_code": exit_code,
        "verifier_processes": len(pids),
        "libsodium_verify_per_s": baseline,
        "e2e_vs_libsodium": rate_s / baseline,
    }


def _histogram(values_ms: list[float], buckets: int = 60) -> dict[str, list[float]]:
    """A compact latency histogram for the JSON (the plot is drawn from it)."""
    if not values_ms:
        return {"edges": [], "counts": []}
    top = percentile(values_ms, 99.9)
    width = max(top, 1e-3) / buckets
    counts = [0] * (buckets + 1)
    for v in values_ms:
        counts[min(buckets, int(v / width))] += 1
    return {"edges": [i * width for i in range(buckets + 2)], "counts": [float(c) for c in counts]}


# -- several nodes on one PostgreSQL database ------------------------------------------------


def run_nodes(
    world: fleet_mod.BenchWorld,
    configs: list[Path],
    *,
    chips: int,
    seconds: float,
    inflight: int,
    rate: float = 0.0,
    store_url: str = "",
    sample_every: float = 1.0,
    label: str = "run",
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Chips split over ``len(configs)`` nodes (chip i on node i % n), measured as in
    :func:`run_e2e`; ``store_url`` puts every node on that PostgreSQL database. Afterwards
    every node's audit chain is counted against the results the chips received."""
    from attest.store import open_store

    env = {"ATTEST_STORE_PATH": store_url} if store_url else {}
    nodes = [
        start_verifier(world, 1, f"{label}-{i}", config=c, env=env) for i, c in enumerate(configs)
    ]
    try:
        gen_cmd = [sys.executable, "-m", "attest.bench.loadgen", "--fleet"]
        gen_cmd += [str(world.fleet_file), "--port", ",".join(str(n.port) for n in nodes)]
        gen_cmd += ["--chips", str(chips), "--seconds", str(seconds)]
        gen_cmd += ["--inflight", str(inflight), "--rate", str(rate)]
        gen = subprocess.Popen(gen_cmd, stdout=subprocess.PIPE, text=True)
        assert gen.stdout is not None
        progress(f"{label}: warm-up of {chips} chips on {len(nodes)} node(s)")
        line = gen.stdout.readline().strip()
        if line != "phase measure":
            gen.wait()
            raise RuntimeError(f"load generator failed before measuring: {line!r}")
        pids = [p for n in nodes for p in process_tree(n.proc.pid)]
        rss_start = sum(memory_kb(pids, "VmRSS")) / 1024
        sampler = _Sampler(pids, sample_every)
        sampler.start()
        progress(f"{label}: measuring for {seconds:g} s")
        gen.stdout.readline()
        sampler.stop_event.set()
        sampler.join()
        rss_end = sum(memory_kb(pids, "VmRSS")) / 1024
        result = json.loads(gen.stdout.readline())
        gen.wait(timeout=60)
    finally:
        codes = [n.stop() for n in nodes]
    entries = 0
    for c in configs:
        from attest.files import read_key
        from attest.node.config import load_config

        cfg = load_config(c, env=env)
        key = read_key(cfg.path(cfg.node.key_file), "verifier key")
        vid = _verifier_id(cfg)
        with open_store(cfg.store_location(), verifier_id=vid, signing_key=key) as store:
            entries += store.audit_head()[0]
    lat = result.pop("latencies_s")
    return {
        **result,
        "nodes": len(nodes),
        "store": "postgresql" if store_url else "sqlite",
        "p50_ms": percentile(lat, 50) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "audit_entries": entries,
        "lost_results": max(0, result["results_total"] - entries),
        "verifier_rss_start_mb": rss_start,
        "verifier_rss_end_mb": rss_end,
        "rss_growth_mb": rss_end - rss_start,
        "rss_samples": sampler.samples,
        "exit_codes": codes,
    }


def _verifier_id(config: Any) -> str:
    from attest.node.app import load_identity

    return load_identity(config)[1].verifier_id


def run_pg_soak(
    *,
    minutes: float,
    compare_seconds: float,
    chips: int,
    inflight: int,
    rate: float = 0.0,
    workdir: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """``attest bench soak --store postgresql``: sessions/s of 1 node on SQLite and of 1 and 2
    nodes on PostgreSQL (in this run, one after the other), then the soak: ``chips`` chips
    for ``minutes`` against two nodes on one PostgreSQL database."""
    from attest import files
    from attest.bench.pgcluster import Cluster
    from attest.node import provision

    baseline = measure_libsodium(seconds=1.0)
    with tempfile.TemporaryDirectory(prefix="attest-bench-", dir=workdir) as tmp:
        root = Path(tmp)
        world = fleet_mod.make_world(root)
        authority = files.load_authority(world.authority)
        second = root / "verifier-2"
        provision.certify_verifier_folder(authority, second, "bench-verifier-2", "BENCH")
        configs = [world.config, second / files.VERIFIER_CONFIG_FILE]
        fleet = fleet_mod.make_fleet(world, chips)
        fleet.write(world.fleet_file)
        common: dict[str, Any] = {
            "chips": chips,
            "inflight": inflight,
            "rate": rate,
            "progress": progress,
        }
        comparison = []
        with Cluster(root / "pg") as cluster:
            for store, n in (("sqlite", 1), ("postgresql", 1), ("postgresql", 2)):
                url = cluster.create_database(f"{store}{n}") if store == "postgresql" else ""
                if store == "sqlite":
                    (world.verifier / files.VERIFIER_DB_FILE).unlink(missing_ok=True)
                run = run_nodes(
                    world, configs[:n], seconds=compare_seconds, store_url=url,
                    label=f"{store}-{n}", **common,
                )  # fmt: skip
                run.pop("rss_samples")
                comparison.append(run)
            url = cluster.create_database("soak")
            soak = run_nodes(
                world, configs, seconds=minutes * 60, store_url=url, sample_every=5.0,
                label="soak", **common,
            )  # fmt: skip
    rates = {f"{c['store']}_{c['nodes']}": c["sessions_per_s"] for c in comparison}
    return {
        **soak,
        "libsodium_verify_per_s": baseline,
        "e2e_vs_libsodium": soak["sessions_per_s"] / baseline,
        "workers": 1,
        "verifier_cpu_cores": float("nan"),
        "verifier_cpu_us_per_session": float("nan"),
        "verifier_peak_rss_mb": soak["verifier_rss_end_mb"],
        "p95_ms": float("nan"),
        "comparison": comparison,
        "rates": rates,
        "pg2_vs_sqlite1": rates["postgresql_2"] / max(rates["sqlite_1"], 1e-9),
        "pg1_vs_sqlite1": rates["postgresql_1"] / max(rates["sqlite_1"], 1e-9),
    }
