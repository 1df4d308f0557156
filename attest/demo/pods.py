"""Demo section "pods": certified pods, real link handshakes, and an aggregation caught.

The story: the Authority certifies HX100 pods of eight and a rack of CX10 consumer chips (pods
of one). Every chip listens for links on loopback; the pods cable up as a full mesh and every
link runs the real handshake over TCP. Then an operator with tampered firmware on a few chips
cables three pods together and meshes the consumer rack, hoping for one large cluster: honest
chips refuse the links (keeping the tampered peer's signed acceptance), tampered chips accept
each other. Every chip attests twice to the running nodes; the nodes' link-graph appraisal
flags the aggregation from the reported graph and from the honest refusals. A revoked pod, a
chip certified into two pods, an oversized and a forged certificate and a replayed handshake
complete the attacks.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import trio
from rich.console import Console
from rich.table import Table

from attest.chip.adversary import TamperedFirmwareChip
from attest.chip.device import Chip
from attest.chip.runner import attest
from attest.codec.cose import parse_sign1
from attest.demo.sections import SectionResult, count, listing
from attest.demo.world import RunningNode, World
from attest.errors import AttestError, ChipRefusal
from attest.keys import SigningKey
from attest.messages.attestation import AttestationResult
from attest.messages.revocation import RevocationList, Revocations
from attest.pods.cert import PodCredential, certify_pod
from attest.pods.chip import PodsChip, PodState
from attest.pods.driver import LinkSession, listen_links, open_link
from attest.pods.link import (
    LinkConfirmFrame,
    LinkEndpoint,
    LinkHello,
    LinkRefuse,
    LinkReply,
    LinkRole,
    decode_link_body,
    encode_link_frame,
)
from attest.pods.messages import PodCert, pod_cert_digest
from attest.pods.names import Refusal
from attest.pods.reasons import PodReason
from attest.pods.verifier import PodsVerifier
from attest.verify.reasons import ReasonCode, Tier, reason_name

#: HX100 pods that stay honest, pods that tampered chips cable together
HONEST_PODS = ("P1", "P2")
ATTACKED_PODS = ("A1", "A2", "A3")
POD_SIZE = 8
#: consumer rack: CX10 chips, pods of one; which of them run tampered firmware
RACK = 6
RACK_TAMPERED = (3, 4, 5)


@dataclass
class _Pod:
    name: str
    chips: list[Chip]
    token: bytes = b""
    issuer_cert: bytes = b""

    @property
    def pod_id(self) -> bytes:
        return PodCert.from_payload(_payload(self.token)).pod_id


def _payload(token: bytes) -> bytes:
    return parse_sign1(token).payload


@dataclass
class _Run:
    world: World
    now: int
    pods: dict[str, _Pod] = field(default_factory=dict)
    rack: list[_Pod] = field(default_factory=list)
    ports: dict[bytes, int] = field(default_factory=dict)
    sessions: list[LinkSession] = field(default_factory=list)
    results: dict[bytes, AttestationResult] = field(default_factory=dict)
    verdicts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    names: dict[bytes, str] = field(default_factory=dict)

    def fabricate(self, name: str, hwmodel: str, pod_class: int, tampered: bool = False) -> Chip:
        chip = self.world.fabricate(
            hwmodel, pod_class, chip_class=TamperedFirmwareChip if tampered else Chip
        )
        self.names[chip.ueid] = name
        return chip

    def certify(self, name: str, chips: list[Chip], size_class: int) -> _Pod:
        token = certify_pod(
            self.world.authority,
            [(c.ueid, c.public_key) for c in chips],
            size_class=size_class,
            now_s=self.now,
        )
        for c in chips:
            _pods(c).install_pod_cert(token, now_s=self.now)
        return _Pod(name, chips, token)


def _pods(chip: Chip) -> PodsChip:
    return chip.part(PodsChip)


def _monitor(running: RunningNode) -> PodsVerifier:
    part = running.node.service.part(PodsVerifier)
    assert part is not None, "every node runs the Fixed Set"
    return part


def _pairs(chips: list[Chip]) -> Iterable[tuple[Chip, Chip]]:
    for i, a in enumerate(chips):
        for b in chips[i + 1 :]:
            yield a, b


def _tampered(chips: Iterable[Chip]) -> list[Chip]:
    return [c for c in chips if isinstance(c, TamperedFirmwareChip)]


#: which signal each graph reason comes from (chips flagged per reason, in the summary)
_SOURCES = {
    "reported link graph": ("COMPONENT_OVER_LIMIT", "LINK_NON_MEMBER", "LINK_ONE_SIDED"),
    "honest chips' refusals": ("LINK_ATTEMPT_REFUSED",),
    "pod certificates and revocations": (
        "POD_REVOKED",
        "POD_CONFLICT",
        "POD_NOT_MEMBER",
        "POD_UNKNOWN",
    ),
}


class PodsSection:
    name = "pods"

    async def run(self, world: World, nodes: list[RunningNode]) -> SectionResult:
        # The alerts are in the summary; on stderr they show only with --log-level INFO.
        alerts = logging.getLogger("attest.node.pods")
        quiet = alerts.getEffectiveLevel() >= logging.WARNING
        level = alerts.level
        if quiet:
            alerts.setLevel(logging.ERROR)
        try:
            return await self._run(world, nodes)
        finally:
            alerts.setLevel(level)

    async def _run(self, world: World, nodes: list[RunningNode]) -> SectionResult:
        started = time.perf_counter()
        run = _Run(world, int(time.time()))
        result = SectionResult()
        self._build(run)
        for running in nodes:
            for pod in [*run.pods.values(), *run.rack]:
                _monitor(running).register(pod.token, pod.issuer_cert, now_s=run.now)
        chips = [c for p in [*run.pods.values(), *run.rack] for c in p.chips]
        async with trio.open_nursery() as nursery:
            for chip in chips:
                run.ports[chip.ueid] = await nursery.start(listen_links, chip)
            links = await self._cable(run)
            revoked = await self._revoke(run, nodes)
            attacks_chip = [
                await self._oversized(run),
                await self._forged(run),
                await self._replayed(run),
            ]
            await self._attest_all(run, nodes)
            for session in run.sessions:
                await session.aclose()
            nursery.cancel_scope.cancel()
        graphs = {
            r.identity.verifier_id: _monitor(r).graph(r.node.service.revocations.pods)
            for r in nodes
        }
        result.attacks = self._attacks(run, revoked) + attacks_chip
        result.verdicts = dict(run.verdicts)
        result.errors = run.errors
        honest = [*(c for p in HONEST_PODS for c in run.pods[p].chips)]
        honest += [c for p in run.rack for c in p.chips if not isinstance(c, TamperedFirmwareChip)]
        honest_ok = sum(
            1
            for c in honest
            if c.ueid in run.results and run.results[c.ueid].status == Tier.AFFIRMING
        )
        result.ok = honest_ok == len(honest) and not run.errors
        if honest_ok != len(honest):
            result.errors.append(f"pods: {len(honest) - honest_ok} honest pod chip(s) not affirmed")
        result.summary = self._summary(run, links, graphs, honest_ok, len(honest), nodes)
        result.summary["seconds"] = round(time.perf_counter() - started, 2)
        return result

    # -- building the world --------------------------------------------------------------------
    def _build(self, run: _Run) -> None:
        for name in HONEST_PODS:
            chips = [run.fabricate(f"{name}.{i}", "HX100", 8) for i in range(POD_SIZE)]
            run.pods[name] = run.certify(name, chips, 8)
        for k, name in enumerate(ATTACKED_PODS):
            chips = [run.fabricate(f"{name}.{i}", "HX100", 8, i < 2) for i in range(POD_SIZE)]
            if k == len(ATTACKED_PODS) - 1:
                chips[1].hide_links = True  # type: ignore[attr-defined]  # stealthy: hides links
            run.pods[name] = run.certify(name, chips, 8)
        for i in range(RACK):
            chip = run.fabricate(f"CX.{i}", "CX10", 1, i in RACK_TAMPERED)
            run.rack.append(run.certify(f"CX.{i}", [chip], 1))
        # a pod whose certificate the authority will revoke
        run.pods["R"] = run.certify("R", [run.fabricate(f"R.{i}", "HX100", 8) for i in range(4)], 8)
        # a chip certified into two pods: the authority's pod C1, and C2 from a manufacturer's
        # facility that lists it again (the chip itself holds C1)
        c1 = [run.fabricate(f"C1.{i}", "HX100", 8) for i in range(3)]
        run.pods["C1"] = run.certify("C1", c1, 8)
        other = run.fabricate("C2.1", "HX100", 8)
        mfr = run.world.manufacturer
        c2 = certify_pod(
            mfr,
            [(c1[0].ueid, c1[0].public_key), (other.ueid, other.public_key)],
            size_class=8,
            now_s=run.now,
        )
        _pods(other).install_pod_cert(c2, mfr.cert, now_s=run.now)
        run.pods["C2"] = _Pod("C2", [other], c2, mfr.cert)

    async def _link(self, run: _Run, a: Chip, b: Chip) -> bool:
        session = await open_link(a, "127.0.0.1", run.ports[b.ueid])
        run.sessions.append(session)
        return session.full

    async def _cable(self, run: _Run) -> dict[str, Any]:
        """Pods mesh internally; then the aggregation attempt cables pods and the rack."""
        up = refused = 0
        for pod in run.pods.values():
            for a, b in _pairs(pod.chips):
                ok = await self._link(run, a, b)
                up, refused = up + ok, refused + (not ok)
        intra = {"up": up, "refused": refused}
        # Aggregation: tampered chips link across pods in a ring, and every tampered chip also
        # cables to two honest chips of the next pod (whole pods were meant to join).
        attack_up = attack_refused = 0
        ring = [run.pods[n] for n in ATTACKED_PODS]
        for k, pod in enumerate(ring):
            nxt = ring[(k + 1) % len(ring)]
            for t, peer in zip(_tampered(pod.chips), _tampered(nxt.chips)[::-1], strict=True):
                ok = await self._link(run, t, peer)
                attack_up, attack_refused = attack_up + ok, attack_refused + (not ok)
            for t in _tampered(pod.chips):
                for h in nxt.chips[2:4]:
                    ok = await self._link(run, t, h)
                    attack_up, attack_refused = attack_up + ok, attack_refused + (not ok)
        rack = [p.chips[0] for p in run.rack]
        for a, b in _pairs(rack):
            ok = await self._link(run, a, b)
            attack_up, attack_refused = attack_up + ok, attack_refused + (not ok)
        await trio.sleep(0.02)  # responders record a round's end as they read its last frame
        refusals = Counter(
            r.reason
            for c in [*(c for p in run.pods.values() for c in p.chips), *rack]
            for r in _pods(c).links.refusals
            if not r.by_peer
        )
        return {
            "pod_links": intra,
            "aggregation_links": {"up": attack_up, "refused": attack_refused},
            "refusals_by_reason": dict(sorted(refusals.items())),
        }

    async def _revoke(self, run: _Run, nodes: list[RunningNode]) -> dict[str, Any]:
        """The authority revokes pod R: nodes and chips adopt list N+1; re-verification caps."""
        world = run.world
        pod = run.pods["R"]
        token = world.authority.revocation_list(
            world.revocations.number + 1,
            now_s=run.now,
            devices=sorted(world.revocations.devices),
            manufacturers=sorted(world.revocations.manufacturers),
            verifiers=sorted(world.revocations.verifiers),
            pods=sorted({*world.revocations.pods, pod.pod_id}),
        )
        world.revocations = Revocations.from_list(
            RevocationList.verify(token, world.authority.key.public_key)
        )
        for running in nodes:
            running.node.service.revocations = world.revocations
        full_before = sum(len(_pods(c).links.full_peers()) for c in pod.chips)
        for chip in pod.chips:
            _pods(chip).apply_revocations(token)
        for session in run.sessions:
            if session.chip in pod.chips and session.open:
                await session.reverify()
        # the responders record a round's end as they read the REFUSE: give them the moment
        with trio.move_on_after(1.0):
            while any(_pods(c).links.full_peers() for c in pod.chips):
                await trio.sleep(0.001)
        full_after = sum(len(_pods(c).links.full_peers()) for c in pod.chips)
        return {"full_links_before": full_before, "full_links_after": full_after}

    # -- chip-side attacks ---------------------------------------------------------------------
    async def _oversized(self, run: _Run) -> dict[str, Any]:
        """An HX100 is offered a certificate for a 64-chip pod: it refuses to install it."""
        victim = run.pods["P1"].chips[0]
        extra = [SigningKey.generate().public_key for _ in range(15)]
        members = [(victim.ueid, victim.public_key)] + [
            (b"\x01" + os.urandom(16), k) for k in extra
        ]
        token = certify_pod(run.world.authority, members, size_class=64, now_s=run.now)
        return _chip_attack(
            "pod-oversized-certificate",
            Refusal.POD_TOO_LARGE,
            "a 64-chip pod certificate offered to an HX100 (limit 8)",
            lambda: _pods(victim).install_pod_cert(token, now_s=run.now),
        )

    async def _forged(self, run: _Run) -> dict[str, Any]:
        """Tampered firmware holding a self-made certificate that lists it in pod P2."""
        target = run.pods["P2"].chips[0]
        forger = run.fabricate("forger", "HX100", 8, tampered=True)
        fake_key = SigningKey.generate()
        members = [(c.ueid, c.public_key) for c in run.pods["P2"].chips[:7]]
        members.append((forger.ueid, forger.public_key))
        cert = PodCert(
            run.world.authority.authority_id,
            run.now,
            run.pods["P2"].pod_id,
            tuple(sorted(members, key=lambda m: m[0])),
            8,
        )
        token = cert.sign(fake_key)
        _pods(forger).pod = PodState(PodCredential(token, b"", cert, pod_cert_digest(token)))
        session = await open_link(forger, "127.0.0.1", run.ports[target.ueid])
        await session.aclose()
        seen = [r.reason for r in _pods(target).links.refusals if r.peer == forger.ueid]
        return {
            "name": "pod-forged-certificate",
            "expected_reason": str(Refusal.POD_CERT_INVALID),
            "description": "a forged pod certificate presented in a link handshake",
            "detected": str(Refusal.POD_CERT_INVALID) in seen and not session.full,
            "node": "chip",
            "verdict": "refused",
            "reasons": seen,
        }

    async def _replayed(self, run: _Run) -> dict[str, Any]:
        """An eavesdropper replays a member's recorded HELLO and CONFIRM to another member."""
        a, b, target = run.pods["P1"].chips[1:4]
        hello, confirm = _record_handshake(a, b)
        stream = await trio.open_tcp_stream("127.0.0.1", run.ports[target.ueid])
        reason = ""
        async with stream:
            await stream.send_all(encode_link_frame(hello))
            reply = await _read_frame(stream)
            if isinstance(reply, LinkReply):
                await stream.send_all(encode_link_frame(confirm))
                answer = await _read_frame(stream)
                reason = answer.reason if isinstance(answer, LinkRefuse) else type(answer).__name__
        return {
            "name": "pod-replayed-handshake",
            "expected_reason": str(Refusal.LINK_PROOF_MISMATCH),
            "description": "a recorded HELLO and CONFIRM of a pod member replayed to another",
            "detected": reason == Refusal.LINK_PROOF_MISMATCH,
            "node": "chip",
            "verdict": "refused",
            "reasons": [reason] if reason else [],
        }

    # -- attestation ---------------------------------------------------------------------------
    async def _attest_all(self, run: _Run, nodes: list[RunningNode]) -> None:
        hx = [c for p in run.pods.values() for c in p.chips]
        rack = [p.chips[0] for p in run.rack]
        plan = [(c, nodes[0]) for c in hx] + [(c, nodes[-1]) for c in rack]
        for _ in range(2):  # round two sees every chip's report of round one
            async with trio.open_nursery() as nursery:
                for chip, node in plan:
                    nursery.start_soon(self._attest_one, run, chip, node)

    async def _attest_one(self, run: _Run, chip: Chip, node: RunningNode) -> None:
        try:
            results = await attest(chip, "127.0.0.1", node.port)
        except (AttestError, OSError, trio.TooSlowError) as exc:
            run.errors.append(f"pods: chip {run.names.get(chip.ueid)}: {exc!r}")
            return
        run.results[chip.ueid] = results[-1]
        run.verdicts[Tier(results[-1].status).name.lower()] += 1

    # -- judging -------------------------------------------------------------------------------
    def _flagged(self, run: _Run, chips: Iterable[Chip], reason: ReasonCode) -> tuple[int, int]:
        chips = list(chips)
        hit = 0
        for c in chips:
            res = run.results.get(c.ueid)
            if res is not None and res.status == Tier.CONTRAINDICATED and reason in res.reasons:
                hit += 1
        return hit, len(chips)

    def _attacks(self, run: _Run, revoked: dict[str, Any]) -> list[dict[str, Any]]:
        attacked = [c for n in ATTACKED_PODS for c in run.pods[n].chips]
        rack_tampered = [run.rack[i].chips[0] for i in RACK_TAMPERED]
        stealthy = [c for c in attacked if getattr(c, "hide_links", False)]
        cases = [
            (
                "pod-aggregate-hx100",
                PodReason.COMPONENT_OVER_LIMIT,
                "tampered chips link three 8-chip pods into one 24-chip cluster",
                attacked,
                run.world.nodes[0],
            ),
            (
                "pod-aggregate-consumer",
                PodReason.LINK_NON_MEMBER,
                "tampered consumer chips (pods of one) link into a cluster",
                rack_tampered,
                run.world.nodes[-1],
            ),
            (
                "pod-refused-links",
                PodReason.LINK_ATTEMPT_REFUSED,
                "honest chips refused the tampered chips' links and reported their signed accepts",
                _tampered(attacked) + rack_tampered,
                run.world.nodes[0],
            ),
            (
                "pod-hidden-links",
                PodReason.LINK_ATTEMPT_REFUSED,
                "a tampered chip hides its cross-pod links from the verifier",
                stealthy,
                run.world.nodes[0],
            ),
            (
                "pod-revoked",
                PodReason.POD_REVOKED,
                "chips of a pod whose certificate the authority revoked",
                run.pods["R"].chips,
                run.world.nodes[0],
            ),
            (
                "pod-two-pods",
                PodReason.POD_CONFLICT,
                "a chip listed in two pod certificates",
                run.pods["C1"].chips[:1],
                run.world.nodes[0],
            ),
        ]
        out = []
        for name, reason, text, chips, node in cases:
            hit, total = self._flagged(run, chips, reason)
            reasons = Counter(
                reason_name(r)
                for c in chips
                if c.ueid in run.results
                for r in run.results[c.ueid].reasons
            )
            entry: dict[str, Any] = {
                "name": name,
                "expected_reason": reason.name,
                "description": text,
                "detected": total > 0 and hit == total,
                "node": node.identity.verifier_id,
                "verdict": f"{hit}/{count(total, 'chip')} contraindicated with {reason.name}",
                "reasons": sorted(reasons),
            }
            if name == "pod-revoked":
                entry["links_full_before_after"] = [
                    revoked["full_links_before"],
                    revoked["full_links_after"],
                ]
                entry["detected"] &= revoked["full_links_after"] == 0
            out.append(entry)
        return out

    def _summary(
        self,
        run: _Run,
        links: dict[str, Any],
        graphs: dict[str, Any],
        honest_ok: int,
        honest_total: int,
        nodes: list[RunningNode],
    ) -> dict[str, Any]:
        pods = []
        for pod in [*run.pods.values(), *run.rack]:
            cert = PodCert.from_payload(_payload(pod.token))
            pods.append(
                {
                    "name": pod.name,
                    "pod_id": cert.pod_id.hex()[:12],
                    "model": pod.chips[0].hwmodel,
                    "size_class": cert.size_class,
                    "members": len(cert.members),
                    "issuer": cert.issuer,
                    "tampered": len(_tampered(pod.chips)),
                }
            )
        components = {}
        for vid, g in graphs.items():
            sizes = [len(c) for c in g.components]
            components[vid] = {
                "sizes": sizes,
                "largest": [run.names.get(u, u.hex()[:8]) for u in g.components[0]]
                if g.components
                else [],
                "alerts": dict(sorted(Counter(a.reason.name for a in g.alerts).items())),
            }
        signals: Counter[str] = Counter()
        for res in run.results.values():
            for r in res.reasons:
                if 130 <= r <= 159:
                    signals[reason_name(r)] += 1
        metrics = {}
        for running in nodes:
            registry = running.node.metrics.mechanisms  # the mechanisms' metrics live there
            metrics[running.identity.verifier_id] = {
                s.labels["alert"]: int(s.value)
                for m in registry.collect()
                if m.name == "attest_pod_alerts"
                for s in m.samples
                if s.name.endswith("_total")
            }
        return {
            "pods": pods,
            "chips": len(run.names),
            "links": links,
            "components": components,
            "signals": dict(sorted(signals.items())),
            "caught_by": {
                source: {r: signals[r] for r in reasons if signals.get(r)}
                for source, reasons in _SOURCES.items()
            },
            "alerts_metric": metrics,
            "honest_affirmed": f"{honest_ok}/{honest_total}",
        }

    def render(self, console: Console, result: SectionResult) -> None:
        s = result.summary
        if not s:
            return
        table = Table(title="pods (Fixed Set)")
        for col in ("pod", "model", "size class", "members", "tampered", "issuer"):
            table.add_column(col)
        for p in s["pods"]:
            table.add_row(
                f"{p['name']} {p['pod_id'][:8]}",
                p["model"],
                str(p["size_class"]),
                str(p["members"]),
                str(p["tampered"]),
                p["issuer"],
            )
        console.print(table)
        links = s["links"]
        console.print(
            f"links: pods {links['pod_links']['up']} up / {links['pod_links']['refused']} refused;"
            f" aggregation attempt {links['aggregation_links']['up']} up /"
            f" {links['aggregation_links']['refused']} refused; refusals:"
            f" {listing(links['refusals_by_reason'])}"
        )
        for vid, comp in s["components"].items():
            sizes = ", ".join(map(str, comp["sizes"]))
            console.print(
                f"{vid}: component sizes {sizes} — largest {count(len(comp['largest']), 'chip')};"
                f" alerts: {listing(comp['alerts'])}"
            )
        for source, reasons in s["caught_by"].items():
            if reasons:
                flagged = ", ".join(f"{r} ({count(n, 'chip')})" for r, n in reasons.items())
                console.print(f"caught by the {source}: {flagged}")
        console.print(f"honest pod chips affirmed: {s['honest_affirmed']}")


def _chip_attack(name: str, refusal: Refusal, text: str, attempt: Any) -> dict[str, Any]:
    try:
        attempt()
        got = "accepted"
    except ChipRefusal as exc:
        got = exc.reason
    return {
        "name": name,
        "expected_reason": str(refusal),
        "description": text,
        "detected": got == refusal,
        "node": "chip",
        "verdict": "refused" if got != "accepted" else "accepted",
        "reasons": [str(got)],
    }


def _record_handshake(a: Chip, b: Chip) -> tuple[LinkHello, LinkConfirmFrame]:
    """Run a genuine handshake a→b in memory and keep a's HELLO and CONFIRM (the recording)."""
    ia = LinkEndpoint(LinkRole.INITIATOR, _pods(a).link_context, os.urandom)
    rb = LinkEndpoint(LinkRole.RESPONDER, _pods(b).link_context, os.urandom)
    now = int(time.time())
    hello_bytes = ia.initiate()
    reply = rb.receive_data(hello_bytes, now)
    confirm_bytes = ia.receive_data(reply, now)
    rb.receive_data(confirm_bytes, now)
    hello = decode_link_body(hello_bytes[4:])
    confirm = decode_link_body(confirm_bytes[4:])
    assert isinstance(hello, LinkHello) and isinstance(confirm, LinkConfirmFrame)
    return hello, confirm


async def _read_frame(stream: trio.SocketStream) -> Any:
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
        data = await stream.receive_some(65536)
        if not data:
            return None
        buf += data
    return decode_link_body(buf[4 : 4 + int.from_bytes(buf[:4], "big")])


SECTION = PodsSection()
