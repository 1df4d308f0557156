"""Appraisal of the reported link graph (Fixed Set): one pure function over the latest reports.

Each chip's latest accepted Evidence gives a *pod report*: the pod it claims, the peers it
links to at full bandwidth, and the signed acceptances of links it refused. From all reports,
the verifier's pod certificates and the revoked pod ids, :func:`appraise_graph` derives
per-chip reason codes and alert records. It reads no clock and does no I/O (verifying a refused
peer's signature is memoised as a pure function), so the node, the vectors and the tests run
the same code.

Definitions (SPEC: Fixed Set, graph appraisal). For chip ``u`` with report ``r_u``:

* POD_UNKNOWN (warning) — ``r_u`` names a pod with no registered certificate;
* POD_NOT_MEMBER — the certificate of its pod does not list ``u`` with its device key;
* POD_REVOKED — its pod id is revoked;
* POD_CONFLICT — ``u`` is listed in two or more unrevoked certificates;
* LINK_NON_MEMBER — ``u`` reports a link to ``v`` although ``u`` is not a valid member of a
  known pod that lists ``v`` (for an unknown pod: ``v`` does not report the same pod id);
* LINK_ONE_SIDED (warning, on both ends) — ``u`` reports ``v`` but ``v``'s report does not
  report ``u`` (a peer with no report yet is pending, not one-sided: reports arrive one chip at
  a time);
* COMPONENT_OVER_LIMIT — the connected component of ``u`` in the graph of *mutually* reported
  links has more chips than ``u``'s limit: ``min(model limit, size class)`` for a valid member
  of a known pod, the model limit for an unknown pod, 1 without a valid pod;
* LINK_ATTEMPT_REFUSED (on the signer ``s``) — ``r_u`` carries a proof, signed by ``s``'s
  device key, in which ``s`` accepted a full link with ``u`` between two different pod
  certificates: ``s``'s firmware ignores the pod rule, and ``u`` (honestly) refused.

Only mutual links form components, so a chip cannot make an honest pod look oversized by
claiming links to it; such claims are LINK_ONE_SIDED (and LINK_NON_MEMBER on the claimer).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from attest.codec.cose import parse_sign1
from attest.errors import AttestError
from attest.keys import PublicKey
from attest.pods.messages import PROOF_TYPES, LinkProof, PodCert
from attest.pods.reasons import PodReason

#: components listed in an alert's ``chips`` are cut to this many (the size is in ``detail``)
MAX_ALERT_CHIPS = 256


@dataclass(frozen=True, slots=True)
class PodReport:
    """What one chip's latest accepted Evidence says about its pod and links."""

    ueid: bytes
    #: the chip's device key (from its validated device certificate), 32 bytes
    device_key: bytes
    #: its model's maximum pod size (policy)
    max_pod_size: int
    pod_id: bytes | None = None
    links: frozenset[bytes] = frozenset()
    #: signed acceptances (LinkResponse / LinkConfirm tokens) of links it refused
    refusals: tuple[bytes, ...] = ()
    time_ms: int = 0

    @property
    def empty(self) -> bool:
        """True if the report says nothing (no pod, no links, no refusals)."""
        return self.pod_id is None and not self.links and not self.refusals


@dataclass(frozen=True, slots=True)
class KnownPod:
    """A pod certificate the verifier holds (already verified): who is in it, how large."""

    pod_id: bytes
    #: SHA-256 of the certificate token (what link proofs bind)
    digest: bytes
    size_class: int
    #: member UEID -> raw device key
    members: Mapping[bytes, bytes]

    @classmethod
    def from_cert(cls, cert: PodCert, digest: bytes) -> KnownPod:
        return cls(cert.pod_id, digest, cert.size_class, {u: k.raw for u, k in cert.members})


@dataclass(frozen=True, slots=True)
class GraphAlert:
    """One finding for the log and metrics: what, which chips, which pod."""

    reason: PodReason
    chips: tuple[bytes, ...]
    pod_id: bytes | None = None
    detail: str = ""
    #: for a component: the pods it spans (b"" for chips without a pod); the alert's identity,
    #: so a cluster that grows chip by chip is one alert until another pod joins it
    pods: tuple[bytes, ...] = ()

    @property
    def key(self) -> tuple[PodReason, tuple[bytes, ...], bytes | None]:
        if self.pods:
            return (self.reason, self.pods, None)
        return (self.reason, self.chips, self.pod_id)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "alert": self.reason.name,
            "code": int(self.reason),
            "chips": [c.hex() for c in self.chips],
            "pod_id": self.pod_id.hex() if self.pod_id is not None else None,
            "detail": self.detail,
        }
        if self.pods:
            out["pods"] = [p.hex() for p in self.pods]
        return out


@dataclass(frozen=True, slots=True)
class GraphVerdict:
    """Per-chip reasons (sorted by code) and the alerts, deduplicated, in a fixed order."""

    reasons: Mapping[bytes, tuple[PodReason, ...]] = field(default_factory=dict)
    alerts: tuple[GraphAlert, ...] = ()
    #: connected components of the mutual-link graph, largest first (chips sorted)
    components: tuple[tuple[bytes, ...], ...] = ()

    def of(self, ueid: bytes) -> tuple[PodReason, ...]:
        return self.reasons.get(ueid, ())


@dataclass(frozen=True, slots=True)
class _Finding:
    flag: bytes
    reason: PodReason
    alert: GraphAlert


# -- refused-link evidence ------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _parse_proof(token: bytes) -> LinkProof | None:
    """The proof inside a forwarded token (unverified), or None if it is not a link proof."""
    try:
        kind = PROOF_TYPES.get(str(parse_sign1(token).content_type))
        if kind is None:
            return None
        return kind.from_payload(parse_sign1(token).payload)
    except AttestError:
        return None


@lru_cache(maxsize=8192)
def _verifies(token: bytes, key: bytes) -> bool:
    proof = _parse_proof(token)
    if proof is None:
        return False
    try:
        type(proof).verify(token, PublicKey(key))
    except AttestError:
        return False
    return True


def refused_signer(
    reporter: bytes,
    token: bytes,
    reports: Mapping[bytes, PodReport],
    by_digest: Mapping[bytes, KnownPod],
) -> bytes | None:
    """The chip proven to have accepted a cross-certificate link that ``reporter`` refused.

    The proof must name ``reporter`` as the other end, say ``accept``, bind two different pod
    certificates, and verify under the signer's device key — from the signer's own report, or
    else from the registered certificate the proof names for it. Otherwise None.
    """
    proof = _parse_proof(token)
    if proof is None or proof.other != reporter or proof.signer == reporter:
        return None
    if not proof.accept or proof.signer_pod == proof.other_pod:
        return None
    signer = proof.signer
    report = reports.get(signer)
    key: bytes | None = report.device_key if report is not None else None
    if key is None:
        pod = by_digest.get(proof.signer_pod)
        key = pod.members.get(signer) if pod is not None else None
    if key is None or not _verifies(token, key):
        return None
    return signer


def proof_signer(token: bytes) -> bytes | None:
    """Who claims to have signed a forwarded proof (unverified; for indexing only)."""
    proof = _parse_proof(token)
    return proof.signer if proof is not None else None


# -- the checks -----------------------------------------------------------------------------


class _Graph:
    def __init__(
        self,
        reports: Mapping[bytes, PodReport],
        pods: Mapping[bytes, KnownPod],
        revoked_pods: frozenset[bytes],
    ) -> None:
        self.reports = reports
        self.pods = pods
        self.revoked = revoked_pods
        self.by_digest = {p.digest: p for p in pods.values()}
        listed: dict[bytes, list[bytes]] = {}
        for pod in pods.values():
            if pod.pod_id not in revoked_pods:
                for member in pod.members:
                    listed.setdefault(member, []).append(pod.pod_id)
        self.listed = listed

    def links(self, u: bytes) -> frozenset[bytes]:
        r = self.reports.get(u)
        return r.links if r is not None else frozenset()

    def valid_pod(self, r: PodReport) -> KnownPod | None:
        """The known pod ``r`` claims, if it lists the chip with its device key."""
        pod = self.pods.get(r.pod_id) if r.pod_id is not None else None
        if pod is not None and pod.members.get(r.ueid) == r.device_key:
            return pod
        return None

    def limit(self, r: PodReport) -> int:
        pod = self.valid_pod(r)
        if pod is not None:
            return min(r.max_pod_size, pod.size_class)
        if r.pod_id is not None and r.pod_id not in self.pods:
            return r.max_pod_size
        return 1

    def report_findings(self, r: PodReport) -> Iterator[_Finding]:
        """Everything one report alone (plus its peers' reports) says."""
        u, pod_id = r.ueid, r.pod_id
        pod = self.pods.get(pod_id) if pod_id is not None else None
        valid = self.valid_pod(r)
        if pod_id is not None and pod is None:
            yield _Finding(
                u, PodReason.POD_UNKNOWN, GraphAlert(PodReason.POD_UNKNOWN, (u,), pod_id)
            )
        if pod is not None and valid is None:
            alert = GraphAlert(PodReason.POD_NOT_MEMBER, (u,), pod_id, "not listed with its key")
            yield _Finding(u, PodReason.POD_NOT_MEMBER, alert)
        if pod_id is not None and pod_id in self.revoked:
            yield _Finding(
                u, PodReason.POD_REVOKED, GraphAlert(PodReason.POD_REVOKED, (u,), pod_id)
            )
        pods_of_u = self.listed.get(u, ())
        if len(pods_of_u) >= 2:
            detail = "listed in pods " + ", ".join(sorted(p.hex() for p in pods_of_u))
            alert = GraphAlert(PodReason.POD_CONFLICT, (u,), None, detail)
            yield _Finding(u, PodReason.POD_CONFLICT, alert)
        for v in sorted(r.links):
            rv = self.reports.get(v)
            if valid is not None:
                allowed = v in valid.members
            elif pod_id is not None and pod is None:
                allowed = rv is not None and rv.pod_id == pod_id
            else:
                allowed = False
            ends = tuple(sorted((u, v)))
            if not allowed:
                alert = GraphAlert(PodReason.LINK_NON_MEMBER, ends, pod_id, "link to a non-member")
                yield _Finding(u, PodReason.LINK_NON_MEMBER, alert)
            if rv is not None and u not in rv.links:
                alert = GraphAlert(
                    PodReason.LINK_ONE_SIDED, ends, None, f"reported by {u.hex()} only"
                )
                yield _Finding(u, PodReason.LINK_ONE_SIDED, alert)
                yield _Finding(v, PodReason.LINK_ONE_SIDED, alert)
        for token in r.refusals:
            s = refused_signer(u, token, self.reports, self.by_digest)
            if s is not None:
                alert = GraphAlert(
                    PodReason.LINK_ATTEMPT_REFUSED,
                    tuple(sorted((s, u))),
                    None,
                    f"{s.hex()} accepted a link across pods; {u.hex()} refused it",
                )
                yield _Finding(s, PodReason.LINK_ATTEMPT_REFUSED, alert)

    def mutual(self, u: bytes) -> Iterator[bytes]:
        for v in self.links(u):
            if u in self.links(v):
                yield v

    def component(self, start: bytes) -> tuple[bytes, ...]:
        seen = {start}
        todo = [start]
        while todo:
            for v in self.mutual(todo.pop()):
                if v not in seen:
                    seen.add(v)
                    todo.append(v)
        return tuple(sorted(seen))

    def component_findings(self, comp: tuple[bytes, ...]) -> Iterator[_Finding]:
        n = len(comp)
        over = [u for u in comp if n > self.limit(self.reports[u])]
        if not over:
            return
        limit = min(self.limit(self.reports[u]) for u in comp)
        pods = tuple(sorted({self.reports[u].pod_id or b"" for u in comp}))
        alert = GraphAlert(
            PodReason.COMPONENT_OVER_LIMIT,
            comp[:MAX_ALERT_CHIPS],
            None,
            f"{n} chips linked at full bandwidth across {len(pods)} pod(s); limit {limit}",
            pods,
        )
        for u in over:
            yield _Finding(u, PodReason.COMPONENT_OVER_LIMIT, alert)


def _collect(
    findings: Iterable[_Finding], subject: bytes | None
) -> tuple[dict[bytes, tuple[PodReason, ...]], tuple[GraphAlert, ...]]:
    reasons: dict[bytes, set[PodReason]] = {}
    # One alert per finding group *and* chip set: two separate over-limit components that span
    # the same pods are two alerts here (their shared ``key`` only dedups alerts over time).
    alerts: dict[tuple[Any, ...], GraphAlert] = {}
    for f in findings:
        if subject is None or f.flag == subject:
            reasons.setdefault(f.flag, set()).add(f.reason)
        if subject is None or subject in f.alert.chips:
            alerts.setdefault((f.alert.key, f.alert.chips), f.alert)
    ordered = tuple(sorted(alerts.values(), key=lambda a: (a.reason, a.chips, a.pod_id or b"")))
    return {u: tuple(sorted(rs)) for u, rs in sorted(reasons.items())}, ordered


def appraise_graph(
    reports: Mapping[bytes, PodReport],
    pods: Mapping[bytes, KnownPod],
    revoked_pods: frozenset[bytes] = frozenset(),
    *,
    subject: bytes | None = None,
) -> GraphVerdict:
    """Appraise the link graph of ``reports`` (keyed by UEID); see the module docstring.

    With ``subject`` only that chip's reasons and the alerts that involve it are computed (its
    own report, the reports that name it, its component): the same answer as the full
    appraisal restricted to the subject, at the cost of its neighbourhood instead of the graph.
    """
    g = _Graph(reports, pods, revoked_pods)
    if subject is None:
        findings: list[_Finding] = []
        for u in sorted(reports):
            findings += g.report_findings(reports[u])
        done: set[bytes] = set()
        components = []
        for u in sorted(reports):
            if u not in done:
                comp = g.component(u)
                done.update(comp)
                components.append(comp)
                findings += g.component_findings(comp)
        reasons, alerts = _collect(findings, None)
        components.sort(key=lambda c: (-len(c), c))
        return GraphVerdict(reasons, alerts, tuple(components))
    # Reports that can flag the subject or raise an alert about it: its own, those that link
    # to it, and those that carry a proof it signed.
    relevant = [
        r
        for u, r in sorted(reports.items())
        if u == subject or subject in r.links or any(proof_signer(t) == subject for t in r.refusals)
    ]
    findings = [f for r in relevant for f in g.report_findings(r)]
    comps: tuple[tuple[bytes, ...], ...] = ()
    if subject in reports:
        comp = g.component(subject)
        findings += g.component_findings(comp)
        comps = (comp,)
    reasons, alerts = _collect(findings, subject)
    return GraphVerdict(reasons, alerts, comps)
