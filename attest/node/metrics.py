"""Prometheus metrics of one verifier node (exposed at ``/metrics``).

Each node has its own registry (not the process-global default), so several nodes in one
process — as in ``attest demo`` — keep separate counts. Mechanisms add their own metrics to a
second registry when the node builds their parts (e.g. ``attest_pod_alerts``); a configuration
reload (SIGHUP) rebuilds the parts into a fresh one, so their counts restart from zero then,
as after a restart, while the node's own metrics keep counting.

Names follow Prometheus's conventions and ``promtool check metrics`` passes on a live scrape
(tests/test_metrics.py): counters end in ``_total``, units are base units (``_seconds``), and
the label sets that alerts take rates of (outcomes, tiers) exist from the start at 0.

A node served by ``--workers K`` (attest/node/workers.py) is one node to Prometheus: the
supervisor gives its workers a private ``PROMETHEUS_MULTIPROC_DIR``, every worker's metrics
live in memory-mapped files there, and whichever worker answers a scrape renders all of them
(prometheus-client's multiprocess mode): counters and histograms are summed over the
workers, and each gauge says how its workers' values combine (``multiprocess_mode``: the
open connections add up; the store is up and the node is ready only if every worker says
so; a count read from the shared store, such as the registered chips, is the largest
worker's, which is the most recent). There the mechanisms' counters keep counting across a
reload (their values live in the files, not in the registry). Without that variable each node
renders its own registries.
"""

from __future__ import annotations

import os
import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from attest import __version__
from attest.verify.reasons import Tier

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
#: where worker processes keep their metrics (set by the supervisor, attest/node/workers.py)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: how an attestation session (one CHALLENGE → EVIDENCE → RESULT round) ended
SESSION_OUTCOMES = (
    "completed",
    "protocol_error",
    "internal_error",
    "timeout",
    "disconnected",
    "shutting_down",
)
#: how a connection ended (or why it was refused)
CONNECTION_OUTCOMES = (
    "closed",
    "unsupported_version",
    "evicted",
    "shutting_down",
    "timeout",
    "protocol_error",
    "internal_error",
    "disconnected",
    "overloaded",
)
TIERS = tuple(t.name.lower() for t in Tier)


def multiprocess_dir() -> str | None:
    """The shared metrics directory if this process is one of several workers, else None."""
    return os.environ.get(MULTIPROC_ENV) or None


class NodeMetrics:
    """The counters, gauges and histograms a node operator watches."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.build_info = Gauge(
            "attest_build_info",
            "Always 1; the labels say which attest and which Python this node runs",
            ["version", "python_version", "implementation"],
            registry=r,
            multiprocess_mode="max",
        )
        self.build_info.labels(
            version=__version__,
            python_version=platform.python_version(),
            implementation=platform.python_implementation(),
        ).set(1)
        self.sessions = Counter(
            "attest_sessions",
            "Attestation sessions (CHALLENGE to RESULT rounds; a connection may hold many) "
            "by how they ended",
            ["outcome"],
            registry=r,
        )
        self.connections = Counter(
            "attest_connections",
            "Attestation connections by how they ended (overloaded: refused before HELLO)",
            ["outcome"],
            registry=r,
        )
        self.verdicts = Counter(
            "attest_verdicts", "Appraisal verdicts by EAR tier", ["tier"], registry=r
        )
        for outcome in SESSION_OUTCOMES:
            self.sessions.labels(outcome=outcome)
        for outcome in CONNECTION_OUTCOMES:
            self.connections.labels(outcome=outcome)
        for tier in TIERS:
            self.verdicts.labels(tier=tier)
        self.reasons = Counter(
            "attest_reasons", "Reason codes reported in verdicts", ["reason"], registry=r
        )
        self.latency = Histogram(
            "attest_session_seconds",
            "Time from evidence received to result sent (appraisal + durable commit)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.open_connections = Gauge(
            "attest_open_connections",
            "Attestation connections open now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.protocol_errors = Counter(
            "attest_protocol_errors", "Sessions ended by a protocol error", ["code"], registry=r
        )
        self.registered_chips = Gauge(
            "attest_registered_chips",
            "Chips in the registry (recounted every 10 s and on reload: other nodes enrol too)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.refused = Counter(
            "attest_connections_refused",
            "Connections refused before HELLO (node full, or the address's cap reached)",
            ["reason"],
            registry=r,
        )
        self.evicted = Counter(
            "attest_connections_evicted",
            "Connections still waiting for HELLO that a newer connection took the slot of",
            registry=r,
        )
        self.store_up = Gauge(
            "attest_store_up",
            "1 while the store accepts writes, 0 while it is failing (readyz is 503)",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.ready = Gauge(
            "attest_ready",
            "1 while the node accepts sessions and its store works (readyz is 200), else 0",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.store_failures = Counter(
            "attest_store_failures",
            "Store calls that failed (locked beyond the busy timeout, disk full, I/O error)",
            registry=r,
        )
        self.handler_errors = Counter(
            "attest_handler_errors",
            "Connections ended by an unexpected error in the node (a bug; see the log)",
            registry=r,
        )
        self.revocation_list = Gauge(
            "attest_revocation_list_number",
            "Number of the authority's revocation list in force (0: none)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.audit_head = Gauge(
            "attest_audit_head_seq",
            "Sequence number of the newest entry in the node's audit log",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.audit_published = Gauge(
            "attest_audit_published_seq",
            "Sequence number of the newest signed checkpoint published to the checkpoint file",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.audit_published_at = Gauge(
            "attest_audit_published_timestamp_seconds",
            "Time of the newest entry a published checkpoint covers (Unix time)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.store_up.set(1)
        self.ready.set(0)
        self.mechanisms = CollectorRegistry(auto_describe=True)

    def new_mechanism_registry(self) -> CollectorRegistry:
        """A fresh registry for the mechanisms' metrics (replaces the one rendered so far)."""
        self.mechanisms = CollectorRegistry(auto_describe=True)
        return self.mechanisms

    def render(self) -> bytes:
        """The exposition: this node's registries, or every worker's (module docstring)."""
        directory = multiprocess_dir()
        if directory is not None:
            from prometheus_client.multiprocess import MultiProcessCollector

            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry) + generate_latest(self.mechanisms)
