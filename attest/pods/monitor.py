"""The verifier node's side of the Fixed Set: pod registry, latest reports, graph hook.

:class:`PodMonitor` is what :class:`~attest.node.service.VerifierService` calls around each
appraisal. :meth:`PodMonitor.review` (no writes) turns an accepted verdict's Evidence into the
chip's pod report, appraises the link graph of all latest reports with it
(:func:`attest.verify.graph.appraise_graph`, restricted to that chip) and returns the verdict with
the graph's reasons added — tier never better than its worst part — plus the alerts that are
new. :meth:`PodMonitor.commit` runs after the appraisal is durable and stores the report.

Only Evidence the core accepted (not contraindicated by the appraisal itself) updates the
graph: a replayed, stale or forged Evidence must not move links. The chip's appraisal state is
committed as the core decided, even when a graph reason makes the result contraindicated: the
Evidence is authentic and fresh, and its counters are facts the anti-rollback checks need.
"""

from __future__ import annotations

import logging
from collections import ChainMap
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from attest.codec.cbor import decode, encode
from attest.errors import CertificateError, StoreError
from attest.pods.cert import PodCredential, open_pod_cert
from attest.verify.chain import TrustAnchors
from attest.verify.graph import (
    GraphAlert,
    GraphVerdict,
    KnownPod,
    PodReport,
    appraise_graph,
    proof_signer,
)
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, tier_of

if TYPE_CHECKING:
    from attest.node.metrics import NodeMetrics
    from attest.verify.core import Verdict

log = logging.getLogger("attest.node.pods")

#: alert keys remembered so that each alert is logged once per node run
_MAX_ALERTED = 100_000


def encode_report(r: PodReport) -> bytes:
    """The stored form of a report (deterministic CBOR)."""
    return encode(
        [r.device_key, r.max_pod_size, r.pod_id, sorted(r.links), list(r.refusals), r.time_ms]
    )


def decode_report(ueid: bytes, blob: bytes) -> PodReport:
    key, limit, pod_id, links, refusals, time_ms = decode(blob)
    return PodReport(ueid, key, limit, pod_id, frozenset(links), tuple(refusals), time_ms)


@dataclass(frozen=True, slots=True)
class PodReview:
    """The outcome of :meth:`PodMonitor.review`: the verdict to sign and what to commit."""

    verdict: Verdict
    #: the chip and its new report (None: nothing to store)
    report: PodReport | None = None
    ueid: bytes | None = None
    #: reasons the graph added for this chip
    reasons: tuple[Reason, ...] = ()
    #: alerts involving this chip not seen before on this node
    alerts: tuple[GraphAlert, ...] = ()


class PodMonitor:
    """Pod certificates, each chip's latest pod report, and the graph appraisal hook."""

    def __init__(self, store: Any, anchors: TrustAnchors, policy: Policy) -> None:
        self.store = store
        self.anchors = anchors
        self.policy = policy
        self.credentials: dict[bytes, PodCredential] = {}
        self.pods: dict[bytes, KnownPod] = {}
        self.reports: dict[bytes, PodReport] = {}
        #: how many stored reports name each chip (as a link or as a refusal-proof signer)
        self._named: dict[bytes, int] = {}
        self._alerted: set[tuple[Any, ...]] = set()
        self._persistent = all(
            hasattr(store, m) for m in ("pod_certs", "pod_reports", "put_pod_cert", "pods_version")
        )
        #: the store's pods_version our copy reflects (-1: never loaded)
        self._version = -1
        self._sync()

    # -- registry ------------------------------------------------------------------------
    def _sync(self) -> None:
        """Reload certificates and reports if another process changed them (shared store)."""
        if not self._persistent:
            return
        version = self.store.pods_version()
        if version != self._version:
            self._load()
            self._version = version

    def _load(self) -> None:
        self.credentials, self.pods, self.reports, self._named = {}, {}, {}, {}
        for token, issuer in self.store.pod_certs():
            try:
                self._add(open_pod_cert(token, issuer, self.anchors, now_s=0))
            except CertificateError as exc:  # e.g. an authority key rotated: skip, loudly
                log.error("stored pod certificate rejected", extra={"fields": {"error": str(exc)}})
        for ueid, blob, _ in self.store.pod_reports():
            self._set_report(ueid, decode_report(ueid, blob))

    def _add(self, cred: PodCredential) -> None:
        self.credentials[cred.pod_id] = cred
        self.pods[cred.pod_id] = KnownPod.from_cert(cred.cert, cred.digest)

    def register(self, token: bytes, issuer_cert: bytes = b"", *, now_s: int) -> PodCredential:
        """Verify and register a pod certificate (CertificateError / StoreError if refused)."""
        cred = open_pod_cert(token, issuer_cert, self.anchors, now_s=now_s)
        known = self.credentials.get(cred.pod_id)
        if known is not None and known.token != token:
            raise StoreError(f"pod id {cred.pod_id.hex()} is registered with another certificate")
        if self._persistent:
            self._sync()
            if self.store.put_pod_cert(cred.pod_id, token, issuer_cert):
                self._version = -1  # reload (cheaply) at the next review
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

    def review(self, verdict: Verdict, *, revoked_pods: frozenset[bytes], now_ms: int) -> PodReview:
        """The verdict with graph reasons added (for an accepted verdict), and what to commit."""
        state, ev = verdict.new_state, verdict.evidence
        if state is None or ev is None:
            return PodReview(verdict)
        self._sync()
        ueid = state.ueid
        model = self.policy.models.get(state.hwmodel)
        report = PodReport(
            ueid,
            state.device_key.raw,
            model.max_pod_size if model is not None else 1,
            ev.pod_id,
            frozenset(ev.links or ()),
            tuple(ev.link_refusals or ()),
            now_ms,
        )
        if report.empty and ueid not in self.reports and ueid not in self._named:
            return PodReview(verdict)  # a chip outside the Fixed Set: nothing to judge
        view = ChainMap({ueid: report}, self.reports)
        graph: GraphVerdict = appraise_graph(view, self.pods, revoked_pods, subject=ueid)
        added = graph.of(ueid)
        if added:
            reasons = tuple(sorted({*verdict.reasons, *added}))
            verdict = replace(verdict, reasons=reasons, tier=tier_of(reasons))
        fresh = tuple(a for a in graph.alerts if a.key not in self._alerted)
        return PodReview(verdict, report, ueid, added, fresh)

    def commit(self, review: PodReview) -> None:
        """After the appraisal is durable: store the chip's report and note its alerts.

        Never raises on a store failure: the appraisal stands, the report is derived data that
        the chip's next Evidence restores (the failure is logged).
        """
        try:
            self._commit(review)
        except StoreError as exc:
            log.error("pod report not stored", extra={"fields": {"error": str(exc)}})

    def _commit(self, review: PodReview) -> None:
        if review.ueid is None or review.report is None:
            return
        report = review.report
        old = self.reports.get(review.ueid)
        unchanged = old is not None and (
            old.pod_id,
            old.links,
            old.refusals,
            old.device_key,
            old.max_pod_size,
        ) == (report.pod_id, report.links, report.refusals, report.device_key, report.max_pod_size)
        # Write only what changed: steady pods rewrite nothing (and other workers reload nothing).
        if (old is not None or not report.empty) and not (unchanged and not report.empty):
            blob = None if report.empty else encode_report(report)
            if self._persistent:
                version = self.store.put_pod_report(review.ueid, blob, report.time_ms)
                # our copy stays current only if nobody else wrote since we last looked
                self._version = version if version == self._version + 1 else -1
            self._set_report(review.ueid, None if report.empty else report)
        self._note(review)

    def _note(self, review: PodReview) -> None:
        """Remember the alerts just emitted (each is logged once per node run)."""
        if len(self._alerted) > _MAX_ALERTED:
            self._alerted.clear()
        self._alerted.update(a.key for a in review.alerts)

    def graph(self, revoked_pods: frozenset[bytes] = frozenset()) -> GraphVerdict:
        """The full appraisal of every stored report (for summaries and operators)."""
        return appraise_graph(self.reports, self.pods, revoked_pods)


def record_alerts(
    alerts: Iterable[GraphAlert], metrics: NodeMetrics | None, logger: logging.Logger = log
) -> None:
    """Send new pod alerts to the log (one JSON object per alert) and to the metrics."""
    for alert in alerts:
        if metrics is not None:
            metrics.pod_alerts.labels(alert=alert.reason.name).inc()
        logger.warning("pod alert", extra={"fields": {"event": "pod_alert", **alert.as_json()}})
