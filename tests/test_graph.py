"""The link-graph appraisal (attest/verify/graph.py) and the node's pod monitor.

Properties over generated topologies (hypothesis): honest topologies — every link mutual and
inside one pod, every component within its pod — are never flagged; every chip of a component
larger than its limit is flagged and no other; a chip reporting a link outside its pod is
flagged; a link only one end reports is a warning on both ends; the subject-restricted
appraisal the node runs agrees with the full one. Named cases cover non-members, two pods,
revoked and unknown pods and refused-link evidence.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.chip.adversary import CompromisedChip
from attest.chip.device import fabricate
from attest.errors import StoreError
from attest.mechanism import Findings
from attest.messages.revocation import Revocations
from attest.pods.graph import GraphAlert, GraphVerdict, KnownPod, PodReport, appraise_graph
from attest.pods.messages import LinkConfirm, PodCert, pod_cert_digest
from attest.pods.reasons import PodReason
from attest.pods.tables import PodTables
from attest.pods.verifier import PodReview, PodsVerifier, decode_report, encode_report
from attest.store.base import Database
from attest.store.sqlite import SqliteStore
from attest.testvectors.pod_vectors import member, pod_cert, pod_id, transcript
from attest.testvectors.world import NOW_S, World, build_world
from attest.verify.core import Appraisal, Verdict
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, Tier, registered_reasons, tier_of
from attest.verify.state import ChipState

GRAPH_REASONS = [r for r in registered_reasons() if 130 <= r <= 159]
HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ueid(i: int) -> bytes:
    return b"\x01" + hashlib.sha256(b"graph-chip" + i.to_bytes(4, "big")).digest()[:16]


def key_of(u: bytes) -> bytes:
    return hashlib.sha256(b"graph-key" + u).digest()


def pid(i: int) -> bytes:
    return hashlib.sha256(b"graph-pod" + i.to_bytes(4, "big")).digest()[:16]


# -- generated worlds ---------------------------------------------------------------------------


@st.composite
def pods_and_chips(draw: st.DrawFn) -> tuple[dict[bytes, KnownPod], dict[bytes, tuple[bytes, int]]]:
    """Pods (size class 1, 2, 4 or 8) with members, and each chip's (pod id, model limit)."""
    n_pods = draw(st.integers(1, 5))
    pods: dict[bytes, KnownPod] = {}
    chips: dict[bytes, tuple[bytes, int]] = {}
    next_chip = 0
    for p in range(n_pods):
        size = draw(st.sampled_from([1, 2, 4, 8]))
        count = draw(st.integers(1, size))
        members = {}
        for _ in range(count):
            u = ueid(next_chip)
            next_chip += 1
            members[u] = key_of(u)
            chips[u] = (pid(p), draw(st.sampled_from([size, 8, 64])))
        pods[pid(p)] = KnownPod(pid(p), hashlib.sha256(pid(p)).digest(), size, members)
    return pods, chips


@st.composite
def honest_topology(draw: st.DrawFn) -> tuple[dict[bytes, KnownPod], dict[bytes, PodReport]]:
    """Mutual links inside each pod only; every chip reports its pod."""
    pods, chips = draw(pods_and_chips())
    links: dict[bytes, set[bytes]] = {u: set() for u in chips}
    for pod in pods.values():
        ms = sorted(pod.members)
        for i, a in enumerate(ms):
            for b in ms[i + 1 :]:
                if draw(st.booleans()):
                    links[a].add(b)
                    links[b].add(a)
    reports = {
        u: PodReport(u, key_of(u), limit, p, frozenset(links[u])) for u, (p, limit) in chips.items()
    }
    return pods, reports


@st.composite
def tampered_topology(draw: st.DrawFn) -> tuple[dict[bytes, KnownPod], dict[bytes, PodReport]]:
    """An honest topology plus mutual links between chips of different pods."""
    pods, reports = draw(honest_topology())
    chips = sorted(reports)
    extra = draw(st.lists(st.tuples(st.sampled_from(chips), st.sampled_from(chips)), max_size=6))
    links = {u: set(r.links) for u, r in reports.items()}
    for a, b in extra:
        if a != b and reports[a].pod_id != reports[b].pod_id:
            links[a].add(b)
            links[b].add(a)
    return pods, {u: replace(r, links=frozenset(links[u])) for u, r in reports.items()}


def components(reports: dict[bytes, PodReport]) -> dict[bytes, frozenset[bytes]]:
    """Reference: connected components of mutual links, by plain union-find."""
    parent = {u: u for u in reports}

    def find(u: bytes) -> bytes:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for u, r in reports.items():
        for v in r.links:
            if v in reports and u in reports[v].links:
                parent[find(u)] = find(v)
    groups: dict[bytes, set[bytes]] = {}
    for u in reports:
        groups.setdefault(find(u), set()).add(u)
    return {u: frozenset(groups[find(u)]) for u in reports}


def limit(r: PodReport, pods: dict[bytes, KnownPod]) -> int:
    pod = pods[r.pod_id] if r.pod_id is not None else None
    return min(r.max_pod_size, pod.size_class) if pod else 1


# -- properties ---------------------------------------------------------------------------------


@HYPOTHESIS
@given(honest_topology())
def test_honest_topologies_are_never_flagged(
    world: tuple[dict[bytes, KnownPod], dict[bytes, PodReport]],
) -> None:
    pods, reports = world
    verdict = appraise_graph(reports, pods)
    assert not any(verdict.reasons.values()) and verdict.alerts == ()
    assert sum(len(c) for c in verdict.components) == len(reports)


@HYPOTHESIS
@given(tampered_topology())
def test_every_component_over_its_limit_is_flagged(
    world: tuple[dict[bytes, KnownPod], dict[bytes, PodReport]],
) -> None:
    pods, reports = world
    verdict = appraise_graph(reports, pods)
    comps = components(reports)
    assert {frozenset(c) for c in verdict.components} == set(comps.values())
    for u, r in reports.items():
        over = len(comps[u]) > limit(r, pods)
        assert (PodReason.COMPONENT_OVER_LIMIT in verdict.of(u)) == over, (u.hex(), len(comps[u]))
        outside = any(v not in pods[r.pod_id].members for v in r.links)  # type: ignore[index]
        assert (PodReason.LINK_NON_MEMBER in verdict.of(u)) == outside
        # tampered links are mutual: never one-sided
        assert PodReason.LINK_ONE_SIDED not in verdict.of(u)
    flagged_components = {
        a.chips for a in verdict.alerts if a.reason is PodReason.COMPONENT_OVER_LIMIT
    }
    assert flagged_components == {
        tuple(sorted(c))
        for c in set(comps.values())
        if any(len(c) > limit(reports[u], pods) for u in c)
    }


@HYPOTHESIS
@given(tampered_topology(), st.data())
def test_links_only_one_end_reports_are_warnings_on_both_ends(
    world: tuple[dict[bytes, KnownPod], dict[bytes, PodReport]], data: st.DataObject
) -> None:
    pods, reports = world
    edges = sorted((u, v) for u, r in reports.items() for v in r.links if u < v)
    if not edges:
        return
    u, v = data.draw(st.sampled_from(edges))
    reports = {**reports, v: replace(reports[v], links=reports[v].links - {u})}
    verdict = appraise_graph(reports, pods)
    assert PodReason.LINK_ONE_SIDED in verdict.of(u) and PodReason.LINK_ONE_SIDED in verdict.of(v)
    # a one-sided link never joins components: they are those of the mutual links
    assert {frozenset(c) for c in verdict.components} == set(components(reports).values())


@HYPOTHESIS
@given(tampered_topology(), st.data())
def test_the_subject_appraisal_agrees_with_the_full_one(
    world: tuple[dict[bytes, KnownPod], dict[bytes, PodReport]], data: st.DataObject
) -> None:
    pods, reports = world
    if data.draw(st.booleans()):  # sometimes break a link on one side too
        u = data.draw(st.sampled_from(sorted(reports)))
        reports = {**reports, u: replace(reports[u], links=frozenset())}
    full = appraise_graph(reports, pods)
    for u in reports:
        mine = appraise_graph(reports, pods, subject=u)
        assert mine.of(u) == full.of(u)
        assert mine.alerts == tuple(a for a in full.alerts if u in a.chips)


def test_graph_reasons_have_the_specified_tiers() -> None:
    warnings = {PodReason.POD_UNKNOWN, PodReason.LINK_ONE_SIDED}
    for r in GRAPH_REASONS:
        assert r.tier is (Tier.WARNING if r in warnings else Tier.CONTRAINDICATED), r.name
    assert (
        tier_of([PodReason.LINK_ONE_SIDED, PodReason.COMPONENT_OVER_LIMIT]) is Tier.CONTRAINDICATED
    )


# -- named cases ------------------------------------------------------------------------------


def report(
    u: bytes, pod: bytes | None, links: tuple[bytes, ...] | list[bytes] = (), limit: int = 8
) -> PodReport:
    return PodReport(u, key_of(u), limit, pod, frozenset(links))


def known(i: int, members: list[bytes], size: int = 4) -> KnownPod:
    return KnownPod(pid(i), hashlib.sha256(pid(i)).digest(), size, {u: key_of(u) for u in members})


def test_non_members_pod_states_and_two_pods() -> None:
    a, b, c, d, x = (ueid(i) for i in range(5))
    pods = {pid(0): known(0, [a, b]), pid(1): known(1, [c, x]), pid(2): known(2, [x, d])}
    reports = {
        a: report(a, pid(0), [b, c]),  # c is not in pod 0
        b: report(b, pid(0), [a]),
        c: report(c, pid(1), [a]),  # a is not in pod 1
        x: report(x, pid(1)),  # listed in pods 1 and 2
        d: report(d, pid(0)),  # claims a pod that does not list it
    }
    v = appraise_graph(reports, pods)
    assert v.of(a) == (PodReason.LINK_NON_MEMBER,)
    assert v.of(c) == (PodReason.LINK_NON_MEMBER,)
    assert v.of(b) == ()
    assert v.of(x) == (PodReason.POD_CONFLICT,)
    assert v.of(d) == (PodReason.POD_NOT_MEMBER,)
    revoked = appraise_graph(reports, pods, frozenset({pid(2)}))
    assert revoked.of(x) == ()  # the other pod is revoked: no conflict
    assert appraise_graph(reports, pods, frozenset({pid(0)})).of(b) == (PodReason.POD_REVOKED,)
    # a key that differs from the certificate's is not membership
    wrong = {**reports, b: replace(reports[b], device_key=bytes(32))}
    assert PodReason.POD_NOT_MEMBER in appraise_graph(wrong, pods).of(b)


def test_unknown_pods_are_a_warning_and_judged_by_reports() -> None:
    a, b, c = ueid(0), ueid(1), ueid(2)
    ghost, other = pid(90), pid(91)
    reports = {a: report(a, ghost, [b]), b: report(b, ghost, [a]), c: report(c, other, [a])}
    v = appraise_graph(reports, {})
    assert v.of(a) == (PodReason.POD_UNKNOWN, PodReason.LINK_ONE_SIDED)  # c's claim is one-sided
    assert v.of(b) == (PodReason.POD_UNKNOWN,)
    assert v.of(c) == (PodReason.POD_UNKNOWN, PodReason.LINK_NON_MEMBER, PodReason.LINK_ONE_SIDED)
    assert tier_of(list(v.of(b))) is Tier.WARNING


def test_a_claim_cannot_merge_honest_pods() -> None:
    """A chip claiming links to two full honest pods does not make them one component."""
    p0 = [ueid(i) for i in range(4)]
    p1 = [ueid(i) for i in range(4, 8)]
    liar = ueid(99)
    pods = {pid(0): known(0, p0), pid(1): known(1, p1), pid(2): known(2, [liar], 1)}
    reports = {u: report(u, pid(0), [v for v in p0 if v != u]) for u in p0}
    reports |= {u: report(u, pid(1), [v for v in p1 if v != u]) for u in p1}
    reports[liar] = report(liar, pid(2), p0 + p1, limit=1)
    v = appraise_graph(reports, pods)
    assert all(PodReason.COMPONENT_OVER_LIMIT not in v.of(u) for u in p0 + p1)
    assert all(v.of(u) == (PodReason.LINK_ONE_SIDED,) for u in p0 + p1)  # a warning, no more
    assert v.of(liar) == (PodReason.LINK_NON_MEMBER, PodReason.LINK_ONE_SIDED)


def test_refused_link_evidence_flags_the_signer_only_if_it_verifies() -> None:
    g0, h1 = member("g0")[0], member("h1")[0]
    t, _ = transcript("g0", "h1", "graph", ipod="G1", rpod="G2")
    proof = LinkConfirm.for_session(t, pod_id=pod_id("G1"), accept=True).sign(member("g0")[1])
    w = build_world()
    pods = {}
    for name in ("G1", "G2"):
        token = pod_cert(name)[0]
        cert = PodCert.verify(token, w.anchors.authority_key)
        pods[cert.pod_id] = KnownPod.from_cert(cert, pod_cert_digest(token))
    h1_key = member("h1")[1].public_key.raw
    reporter = PodReport(h1, h1_key, 8, pod_id("G2"), frozenset(), (proof,))
    v = appraise_graph({h1: reporter}, pods)
    assert v.of(g0) == (PodReason.LINK_ATTEMPT_REFUSED,) and v.of(h1) == ()
    assert [a.reason for a in v.alerts] == [PodReason.LINK_ATTEMPT_REFUSED]
    # the signer's own report supplies its key; a wrong key there means no evidence
    liar = PodReport(g0, bytes(32), 8, pod_id("G1"))
    assert appraise_graph({h1: reporter, g0: liar}, pods).of(g0) != (
        PodReason.LINK_ATTEMPT_REFUSED,
    )


# -- the node's monitor -------------------------------------------------------------------------


def _accepted(w: World, chip: CompromisedChip, **claims: object) -> Appraisal:
    """An accepted core appraisal for ``chip`` whose Evidence carries ``claims``."""
    _, token = w.challenge(f"graph/{chip.ueid.hex()}/{time.monotonic_ns()}")
    challenge = chip.accept_challenge(w.verifiers["kl-1"].cert, token, NOW_S)
    ev = chip.current_evidence(challenge, NOW_S).with_claims(**claims)
    state = ChipState.enrolled(chip.ueid, chip.public_key, chip.hwmodel)
    return Appraisal(Verdict(Tier.AFFIRMING, (), bytes(32), chip.ueid, ev), state)


@dataclass(frozen=True, slots=True)
class Reviewed:
    """One session through the pods part, as the node runs it (attest.mechanism)."""

    #: the verdict the node signs: the core's, with the graph's reasons added
    verdict: Verdict
    #: the state the session commits: the core's (the commit rule)
    new_state: ChipState | None
    findings: Findings[PodReview]

    @property
    def report(self) -> PodReport | None:
        detail = self.findings.detail
        return detail.report if detail is not None else None

    @property
    def alerts(self) -> tuple[GraphAlert, ...]:
        detail = self.findings.detail
        return detail.alerts if detail is not None else ()


def review(
    monitor: PodsVerifier, core: Appraisal, *, revoked_pods: frozenset[bytes], now_ms: int
) -> Reviewed:
    """Load, appraise and merge the verdict as attest.mechanism.appraise_session does."""
    findings = monitor.appraise(
        monitor.load(core.ueid or b""),
        core,
        revocations=Revocations(pods=revoked_pods),
        now_ms=now_ms,
    )
    verdict = core.verdict
    if findings.reasons:
        reasons = tuple(sorted({*verdict.reasons, *findings.reasons}))
        verdict = replace(verdict, reasons=reasons, tier=tier_of(reasons))
    return Reviewed(verdict, core.new_state, findings)


def commit(monitor: PodsVerifier, db: Database, reviewed: Reviewed, *, now_ms: int) -> None:
    """The part's writes in one transaction (the appraisal's, in a node), then its conclusion."""
    steps = monitor.steps(reviewed.findings, reviewed.verdict)
    db.write(lambda txn: [step(txn) for step in steps])
    monitor.conclude(reviewed.findings, reviewed.verdict, now_ms=now_ms)


def test_monitor_adds_graph_reasons_and_persists_reports(tmp_path: Path) -> None:
    w = build_world()
    store = SqliteStore(tmp_path / "m.db", verifier_id="kl-1")
    monitor = PodsVerifier(store.db, w.anchors, Policy())
    for name in ("G1", "G2"):
        monitor.register(*pod_cert(name), now_s=NOW_S)
    with pytest.raises(StoreError):  # a pod id is never reused for another certificate
        PodTables(store.db).put_pod_cert(pod_id("G1"), pod_cert("G2")[0], b"")
    chips = {}
    for name in ("g0", "h0"):
        ueid_, key = member(name)
        chips[name] = fabricate(
            w.manufacturers["mfr-a"],
            w.anchors,
            hwmodel="HX100",
            pod_class=8,
            now_s=NOW_S,
            ueid=ueid_,
            device_key=key,
            chip_class=CompromisedChip,
        )
    g0, h0 = chips["g0"], chips["h0"]
    first = review(
        monitor,
        _accepted(w, g0, pod_id=pod_id("G1"), links=(h0.ueid,)),
        revoked_pods=frozenset(),
        now_ms=1,
    )
    assert first.verdict.reasons == (PodReason.LINK_NON_MEMBER,)
    assert first.verdict.tier is Tier.CONTRAINDICATED
    assert first.new_state is not None  # the appraisal state still advances
    commit(monitor, store.db, first, now_ms=1)
    second = review(
        monitor,
        _accepted(w, h0, pod_id=pod_id("G2"), links=(g0.ueid,)),
        revoked_pods=frozenset(),
        now_ms=2,
    )
    assert second.verdict.reasons == (PodReason.LINK_NON_MEMBER,)
    commit(monitor, store.db, second, now_ms=2)
    assert {a.reason for a in second.alerts} == {PodReason.LINK_NON_MEMBER}
    # each alert is new only once per node run
    again = review(
        monitor,
        _accepted(w, h0, pod_id=pod_id("G2"), links=(g0.ueid,)),
        revoked_pods=frozenset(),
        now_ms=3,
    )
    assert again.alerts == ()
    # a chip outside the Fixed Set passes untouched, and nothing is stored for it
    plain = w.chip("hx100-a")
    outside = review(monitor, _accepted(w, plain), revoked_pods=frozenset(), now_ms=4)
    assert outside.verdict.reasons == () and outside.report is None
    # restart: certificates and reports come back from the store
    store.close()
    reopened = PodsVerifier(
        SqliteStore(tmp_path / "m.db", verifier_id="kl-1").db, w.anchors, Policy()
    )
    assert set(reopened.reports) == {g0.ueid, h0.ueid}
    graph: GraphVerdict = reopened.graph()
    assert graph.of(g0.ueid) == (PodReason.LINK_NON_MEMBER,)
    assert [len(c) for c in graph.components] == [2]
    r = reopened.reports[g0.ueid]
    assert decode_report(g0.ueid, encode_report(r)) == r


def test_monitor_ignores_rejected_evidence(tmp_path: Path) -> None:
    w = build_world()
    store = SqliteStore(tmp_path / "r.db", verifier_id="kl-1")
    monitor = PodsVerifier(store.db, w.anchors, Policy())
    chip = w.chip("hx100-a")
    verdict = replace(
        _accepted(w, chip, pod_id=pod_id("G1"), links=(member("g1")[0],)).verdict,
        tier=Tier.CONTRAINDICATED,
        reasons=(Reason.NONCE_MISMATCH,),
    )
    reviewed = review(monitor, Appraisal(verdict, None), revoked_pods=frozenset(), now_ms=1)
    assert reviewed.verdict is verdict and reviewed.report is None
    store.close()


def test_monitors_sharing_a_store_see_each_others_reports(tmp_path: Path) -> None:
    """Two workers (``serve --workers``) on one SQLite file appraise one graph."""
    w = build_world()
    store_one = SqliteStore(tmp_path / "s.db", verifier_id="kl-1")
    one = PodsVerifier(store_one.db, w.anchors, Policy())
    two = PodsVerifier(SqliteStore(tmp_path / "s.db", verifier_id="kl-1").db, w.anchors, Policy())
    for name in ("G1", "G2"):
        one.register(*pod_cert(name), now_s=NOW_S)
    g0, h0 = (
        fabricate(
            w.manufacturers["mfr-a"],
            w.anchors,
            hwmodel="HX100",
            pod_class=8,
            now_s=NOW_S,
            ueid=member(n)[0],
            device_key=member(n)[1],
            chip_class=CompromisedChip,
        )
        for n in ("g0", "h0")
    )
    reviewed = review(
        one,
        _accepted(w, g0, pod_id=pod_id("G1"), links=(h0.ueid,)),
        revoked_pods=frozenset(),
        now_ms=1,
    )
    commit(one, store_one.db, reviewed, now_ms=1)
    # the second worker appraises h0: it sees g0's report (and the certificates) from the store
    other = review(
        two,
        _accepted(w, h0, pod_id=pod_id("G2"), links=(g0.ueid,)),
        revoked_pods=frozenset(),
        now_ms=2,
    )
    assert other.verdict.reasons == (PodReason.LINK_NON_MEMBER,)
    assert set(two.pods) == {pod_id("G1"), pod_id("G2")} and g0.ueid in two.reports
