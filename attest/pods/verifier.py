"""The Fixed Set in a verifier node: pod registry, latest reports, and the link-graph review.

:class:`PodsVerifier` is the mechanism's :class:`~attest.mechanism.VerifierPart`. For each
session it turns the Evidence the core *accepted* into the chip's pod report, appraises the
link graph of all latest reports with it (:func:`attest.pods.graph.appraise_graph`, restricted
to that chip) and adds the graph's reasons to the verdict; the report is written in the
appraisal's own transaction, new alerts join the audit chain in that transaction too (kind
``pod-alert``, SPEC §11.2), and they are logged (one JSON line each) and counted.

Only Evidence the core accepted updates the graph: a replayed, stale or forged Evidence must
not move links. The chip's state still advances by the core's decision when a graph reason
makes the result contraindicated (the commit rule, attest/mechanism.py).

Reports are cached in memory and reloaded when another process sharing the store changed them
(the tables keep a version counter). A node on PostgreSQL runs several sessions' store calls at
once (attest/node/server.py), so every method that reads or changes the cache holds one lock.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from attest.codec.cbor import decode, encode
from attest.errors import CertificateError, StoreError
from attest.mechanism import Conclusion, Findings, NodeContext
from attest.messages.revocation import Revocations
from attest.pods.cert import PodCredential, open_pod_cert
from attest.pods.graph import (
    GraphAlert,
    GraphVerdict,
    KnownPod,
    PodReport,
    appraise_graph,
    proof_signer,
)
from attest.pods.messages import link_refusals_of, links_of, pod_id_of
from attest.pods.tables import PodTables
from attest.store.audit import KIND_POD_ALERT, AuditEvent, digest
from attest.store.base import Database, Step
from attest.verify.chain import TrustAnchors
from attest.verify.core import Appraisal, Verdict
from attest.verify.policy import Policy
from attest.verify.reasons import tier_of

log = logging.getLogger("attest.node.pods")

#: alert keys remembered so that each alert is logged once per node run
_MAX_ALERTED = 100_000

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(
    method: Callable[Concatenate[PodsVerifier, _P], _R],
) -> Callable[Concatenate[PodsVerifier, _P], _R]:
    """Run the method under the verifier's lock (the cache is shared by session threads)."""

    def run(self: PodsVerifier, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    functools.update_wrapper(run, method)
    return run


def encode_report(r: PodReport) -> bytes:
    """The stored form of a report (deterministic CBOR)."""
    return encode(
        [r.device_key, r.max_pod_size, r.pod_id, sorted(r.links), list(r.refusals), r.time_ms]
    )


def alert_event(alert: GraphAlert, subject: bytes, nonce: bytes) -> AuditEvent:
    """The audit entry of a new alert raised by ``subject``'s session (answering ``nonce``).

    Its ``evidence_digest`` is the SHA-256 of the alert's identity (deterministic CBOR of
    [code, chips, pod id or empty, pods]), so the log line and the entry can be matched.
    """
    identity = encode([int(alert.reason), list(alert.chips), alert.pod_id or b"", list(alert.pods)])
    return AuditEvent(
        kind=KIND_POD_ALERT,
        ueid=subject,
        tier=int(tier_of((alert.reason,))),
        reasons=(int(alert.reason),),
        evidence_digest=digest(identity),
        nonce=nonce,
    )


def decode_report(ueid: bytes, blob: bytes) -> PodReport:
    key, limit, pod_id, links, refusals, time_ms = decode(blob)
    return PodReport(ueid, key, limit, pod_id, frozenset(links), tuple(refusals), time_ms)


@dataclass(frozen=True, slots=True)
class PodsView:
    """What the review of one session sees: every other chip's latest report and the pods."""

    reports: dict[bytes, PodReport]
    pods: Mapping[bytes, KnownPod]
    #: chips named by some stored report (as a link or as a refused-proof signer)
    named: Mapping[bytes, int]


@dataclass(frozen=True, slots=True)
class PodReview:
    """The detail of the Fixed Set's findings: the chip's new report and its new alerts."""

    ueid: bytes
    report: PodReport
    #: alerts involving this chip not seen before on this node
    alerts: tuple[GraphAlert, ...] = ()
    #: where the report write puts the new tables version (filled inside the transaction)
    version: list[int] = field(default_factory=list)


class PodsVerifier:
    """Pod certificates, each chip's latest pod report, and the graph review (see module doc)."""

    def __init__(
        self,
        db: Database,
        anchors: TrustAnchors,
        policy: Policy,
        metrics: Any = None,
    ) -> None:
        self._lock = threading.RLock()
        self.tables = PodTables(db)
        self.anchors = anchors
        self.policy = policy
        self.credentials: dict[bytes, PodCredential] = {}
        self.pods: dict[bytes, KnownPod] = {}
        self.reports: dict[bytes, PodReport] = {}
        #: how many stored reports name each chip (as a link or as a refusal-proof signer)
        self._named: dict[bytes, int] = {}
        self._alerted: set[tuple[Any, ...]] = set()
        #: the tables' version our copy reflects (-1: never loaded)
        self._version = -1
        self._alert_counter: Any = None
        self._reports_gauge: Any = None
        if metrics is not None:
            from prometheus_client import Counter, Gauge

            self._alert_counter = Counter(
                "attest_pod_alerts",
                "Link-graph alerts raised (aggregation, non-member links, refused links ...)",
                ["alert"],
                registry=metrics,
            )
            self._reports_gauge = Gauge(
                "attest_pod_reports",
                "Chips with a stored pod report",
                registry=metrics,
                multiprocess_mode="livemax",
            )
        self._sync()

    @classmethod
    def for_node(cls, ctx: NodeContext) -> PodsVerifier:
        return cls(ctx.store.db, ctx.anchors, ctx.policy, ctx.metrics)

    # -- registry ------------------------------------------------------------------------
    def _sync(self) -> None:
        """Reload certificates and reports if another process changed them (shared store)."""
        version = self.tables.pods_version()
        if version != self._version:
            self._load()
            self._version = version

    def _load(self) -> None:
        self.credentials, self.pods, self.reports, self._named = {}, {}, {}, {}
        for token, issuer in self.tables.pod_certs():
            try:
                self._add(open_pod_cert(token, issuer, self.anchors, now_s=0))
            except CertificateError as exc:  # e.g. an authority key rotated: skip, loudly
                log.error("stored pod certificate rejected", extra={"fields": {"error": str(exc)}})
        for ueid, blob, _ in self.tables.pod_reports():
            self._set_report(ueid, decode_report(ueid, blob))

    def _add(self, cred: PodCredential) -> None:
        self.credentials[cred.pod_id] = cred
        self.pods[cred.pod_id] = KnownPod.from_cert(cred.cert, cred.digest)

    @_locked
    def register(self, token: bytes, issuer_cert: bytes = b"", *, now_s: int) -> PodCredential:
        """Verify and register a pod certificate (CertificateError / StoreError if refused)."""
        cred = open_pod_cert(token, issuer_cert, self.anchors, now_s=now_s)
        known = self.credentials.get(cred.pod_id)
        if known is not None and known.token != token:
            raise StoreError(f"pod id {cred.pod_id.hex()} is registered with another certificate")
        self._sync()
        if self.tables.put_pod_cert(cred.pod_id, token, issuer_cert):
            self._version = -1  # reload (cheaply) at the next session
        self._add(cred)
        return cred

    # -- reports -------------------------------------------------------------------------
    def _names(self, r: PodReport) -> Iterable[bytes]:
        yield from r.links
        for token in r.refusals:
            signer = proof_signer(token)
            if signer is not None:
                yield signer

    def _set_report(self, ueid: bytes, report: PodReport | None) -> None:
        old = self.reports.pop(ueid, None)
        if old is not None:
            for n in self._names(old):
                self._named[n] -= 1
                if not self._named[n]:
                    del self._named[n]
        if report is not None and not report.empty:
            self.reports[ueid] = report
            for n in self._names(report):
                self._named[n] = self._named.get(n, 0) + 1

    # -- the VerifierPart ----------------------------------------------------------------
    @_locked
    def load(self, ueid: bytes) -> PodsView:
        self._sync()
        return PodsView(self.reports, self.pods, self._named)

    @_locked
    def appraise(
        self, view: PodsView, core: Appraisal, *, revocations: Revocations, now_ms: int
    ) -> Findings[PodReview]:
        state, ev = core.new_state, core.evidence
        if state is None or ev is None:
            return Findings()
        ueid = state.ueid
        model = self.policy.models.get(state.hwmodel)
        report = PodReport(
            ueid,
            state.device_key.raw,
            model.max_pod_size if model is not None else 1,
            pod_id_of(ev),
            frozenset(links_of(ev)),
            link_refusals_of(ev),
            now_ms,
        )
        if report.empty and ueid not in view.reports and ueid not in view.named:
            return Findings()  # a chip outside the Fixed Set: nothing to judge
        graph = appraise_graph(
            ChainMap({ueid: report}, view.reports),
            view.pods,
            revocations.pods,
            subject=ueid,
        )
        fresh = tuple(a for a in graph.alerts if a.key not in self._alerted)
        events = tuple(alert_event(a, ueid, ev.nonce) for a in fresh)
        return Findings(graph.of(ueid), PodReview(ueid, report, fresh), events)

    def _changed(self, review: PodReview) -> bool:
        """Whether the report differs from the stored one (steady pods rewrite nothing)."""
        report, old = review.report, self.reports.get(review.ueid)
        if old is None:
            return not report.empty
        if report.empty:
            return True
        return (old.pod_id, old.links, old.refusals, old.device_key, old.max_pod_size) != (
            report.pod_id,
            report.links,
            report.refusals,
            report.device_key,
            report.max_pod_size,
        )

    @_locked
    def steps(self, findings: Findings[PodReview], verdict: Verdict) -> Sequence[Step]:
        review = findings.detail
        if review is None or not self._changed(review):
            return ()
        report = review.report
        blob = None if report.empty else encode_report(report)
        return (PodTables.report_step(review.ueid, blob, report.time_ms, review.version),)

    @_locked
    def conclude(
        self, findings: Findings[PodReview], verdict: Verdict, *, now_ms: int
    ) -> Conclusion:
        review = findings.detail
        if review is None:
            return Conclusion()
        if review.version:  # the report was written with the appraisal
            version = review.version[0]
            # our copy stays current only if nobody else wrote since we last looked
            self._version = version if version == self._version + 1 else -1
            self._set_report(review.ueid, None if review.report.empty else review.report)
        if len(self._alerted) > _MAX_ALERTED:
            self._alerted.clear()
        self._alerted.update(a.key for a in review.alerts)
        for alert in review.alerts:
            if self._alert_counter is not None:
                self._alert_counter.labels(alert=alert.reason.name).inc()
            log.warning("pod alert", extra={"fields": {"event": "pod_alert", **alert.as_json()}})
        if self._reports_gauge is not None:
            self._reports_gauge.set(len(self.reports))
        return Conclusion()

    @_locked
    def graph(self, revoked_pods: frozenset[bytes] = frozenset()) -> GraphVerdict:
        """The full appraisal of every stored report (for summaries and operators)."""
        return appraise_graph(self.reports, self.pods, revoked_pods)
