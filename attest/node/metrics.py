"""Prometheus metrics of one verifier node (exposed at ``/metrics``).

Each node has its own registry (not the process-global default), so several nodes in one
process — as in ``attest demo`` — keep separate counts. Mechanisms add their own metrics to a
second registry when the node builds their parts (e.g. ``attest_pod_alerts``); a configuration
reload (SIGHUP) rebuilds the parts into a fresh one, so their counts restart from zero then,
as after a restart, while the node's own metrics keep counting.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class NodeMetrics:
    """The counters, gauges and histograms a node operator watches."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sessions = Counter(
            "attest_sessions",
            "Attestation sessions by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.verdicts = Counter(
            "attest_verdicts", "Appraisal verdicts by EAR tier", ["tier"], registry=self.registry
        )
        self.reasons = Counter(
            "attest_reasons",
            "Reason codes reported in verdicts",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "attest_session_seconds",
            "Time from evidence received to result sent (appraisal + durable commit)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.open_connections = Gauge(
            "attest_open_connections", "Attestation connections open now", registry=self.registry
        )
        self.protocol_errors = Counter(
            "attest_protocol_errors",
            "Sessions ended by a protocol error",
            ["code"],
            registry=self.registry,
        )
        self.registered_chips = Gauge(
            "attest_registered_chips", "Chips in the registry", registry=self.registry
        )
        self.refused = Counter(
            "attest_connections_refused",
            "Connections refused before HELLO (node full, or the address's cap reached)",
            ["reason"],
            registry=self.registry,
        )
        self.evicted = Counter(
            "attest_connections_evicted",
            "Connections still waiting for HELLO that a newer connection took the slot of",
            registry=self.registry,
        )
        self.store_up = Gauge(
            "attest_store_up",
            "1 while the store accepts writes, 0 while it is failing (readyz is 503)",
            registry=self.registry,
        )
        self.store_failures = Counter(
            "attest_store_failures",
            "Store calls that failed (locked beyond the busy timeout, disk full, I/O error)",
            registry=self.registry,
        )
        self.handler_errors = Counter(
            "attest_handler_errors",
            "Connections ended by an unexpected error in the node (a bug; see the log)",
            registry=self.registry,
        )
        self.store_up.set(1)
        self.mechanisms = CollectorRegistry(auto_describe=True)

    def new_mechanism_registry(self) -> CollectorRegistry:
        """A fresh registry for the mechanisms' metrics (replaces the one rendered so far)."""
        self.mechanisms = CollectorRegistry(auto_describe=True)
        return self.mechanisms

    def render(self) -> bytes:
        return generate_latest(self.registry) + generate_latest(self.mechanisms)
