"""Two regional nodes on one PostgreSQL database, over real TCP: the guarantees they share.

Each test runs two in-process :class:`VerifierNode`s (Kuala Lumpur and Johor Bahru, both region
MY) with their own identities, keys and audit chains, on separate :class:`PostgresStore`s
connected to one throwaway database, and drives real chips (attest.chip) against both. Store
calls run in each node's worker thread, so sessions of the two nodes really overlap in the
database. No timing assertions; ``trio.fail_after`` only guards against hangs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from attest.chip.device import Chip, fabricate
from attest.chip.runner import attest
from attest.identity import Authority, Manufacturer, VerifierIdentity
from attest.keys import SigningKey
from attest.licensing.authority import delegate
from attest.licensing.chip import ChipLicensing, LicensingChip
from attest.licensing.ledger import LicenseLedger
from attest.licensing.messages import Budgets
from attest.licensing.verifier import LicensingSection
from attest.mechanism import Grant
from attest.messages.attestation import AttestationResult
from attest.messages.revocation import Revocations
from attest.net import receive_event, send_event
from attest.node.app import assemble
from attest.node.server import NodeSettings, VerifierNode
from attest.protocol.connection import Connection
from attest.protocol.events import (
    PROTOCOL_VERSION,
    ChallengeFrame,
    EvidenceFrame,
    Hello,
    ResultFrame,
)
from attest.protocol.machine import Role
from attest.store import verify_audit
from attest.store.postgres import PostgresStore
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, Tier

HOST = "127.0.0.1"
REGION = "MY"
BUDGET = 10**15
GUARD_S = 30.0


@dataclass(frozen=True)
class Federation:
    auth: Authority
    mfr: Manufacturer
    nodes: tuple[VerifierIdentity, VerifierIdentity]
    now_s: int

    def chip(self, state_dir: Path | None = None, *, licensed: bool = False) -> Chip:
        parts = {"licensing": ChipLicensing()} if licensed else None
        chip = fabricate(
            self.mfr, self.auth.anchors, hwmodel="HX100", pod_class=8, now_s=self.now_s,
            state_dir=state_dir, parts=parts,
        )  # fmt: skip
        chip.boot(time.time())
        return chip


@pytest.fixture(scope="module")
def fed() -> Federation:
    now = int(time.time())
    auth = Authority("authority.my", SigningKey.derive_insecure_for_tests("xnode-authority"))
    mkey = SigningKey.derive_insecure_for_tests("xnode-mfr")
    mfr = Manufacturer(
        "mfr-a", mkey, auth.certify_manufacturer("mfr-a", mkey.public_key, now_s=now)
    )
    nodes = []
    for vid in ("kl-1", "jb-1"):
        key = SigningKey.derive_insecure_for_tests(f"xnode-{vid}")
        cert = auth.certify_verifier(vid, REGION, key.public_key, now_s=now)
        nodes.append(VerifierIdentity(vid, REGION, key, cert))
    return Federation(auth, mfr, (nodes[0], nodes[1]), now)


@asynccontextmanager
async def two_nodes(
    fed: Federation, url: str, folder: Path, *, licensing: bool = False, quota: int = 100
) -> AsyncIterator[tuple[VerifierNode, VerifierNode]]:
    """Kuala Lumpur and Johor Bahru on one database; each with a delegation if ``licensing``."""
    nodes = []
    for i, identity in enumerate(fed.nodes):
        store = PostgresStore(url, verifier_id=identity.verifier_id, signing_key=identity.key)
        sections: dict[str, Any] = {}
        if licensing:
            path = folder / f"{identity.verifier_id}.delegation.cose"
            path.write_bytes(
                delegate(
                    fed.auth,
                    delegation_id=i + 1,
                    verifier_id=identity.verifier_id,
                    public_key=identity.key.public_key,
                    region=REGION,
                    quota=Budgets(quota * BUDGET),
                    now_s=fed.now_s,
                )
            )
            sections["licensing"] = LicensingSection(
                enabled=True, delegation_file=str(path), budget_flops=BUDGET
            )
        service = assemble(
            identity=identity, anchors=fed.auth.anchors, store=store, policy=Policy(),
            revocations=Revocations(), sections=sections,
        ).service  # fmt: skip
        nodes.append(VerifierNode(service, NodeSettings(http_port=-1)))
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        try:
            yield nodes[0], nodes[1]
        finally:
            for node in nodes:
                node.shutdown()
    for node, identity in zip(nodes, fed.nodes, strict=True):
        assert node.finished.is_set()
        with PostgresStore(url, verifier_id=identity.verifier_id, readonly=True) as ro:
            assert verify_audit(ro, identity.key.public_key).ok  # each chain verifies alone


def port(node: VerifierNode) -> int:
    assert node.address is not None
    return node.address.port


class Session:
    """One chip's connection to one node, driven step by step (so two can be interleaved)."""

    def __init__(self, chip: Chip, node: VerifierNode) -> None:
        self.chip, self.node = chip, node
        self.conn = Connection(Role.CHIP)

    async def open(self) -> None:
        self.stream = await trio.open_tcp_stream(HOST, port(self.node))
        hello = Hello((PROTOCOL_VERSION,), self.chip.chain.device_cert,
                      self.chip.chain.manufacturer_cert)  # fmt: skip
        await send_event(self.stream, self.conn, hello)
        frame = await receive_event(self.stream, self.conn)
        assert isinstance(frame, ChallengeFrame), frame
        self.cert = frame.verifier_cert
        self.challenge = self.chip.accept_challenge(
            frame.verifier_cert, frame.challenge, int(time.time())
        )

    def answer(self) -> bytes:
        return self.chip.answer(self.challenge, time.time())

    async def send(self, evidence: bytes) -> tuple[AttestationResult, ResultFrame]:
        await send_event(self.stream, self.conn, EvidenceFrame(evidence))
        frame = await receive_event(self.stream, self.conn)
        assert isinstance(frame, ResultFrame), frame
        await self.stream.aclose()
        result = AttestationResult.verify(frame.result, self.node.service.identity.key.public_key)
        return result, frame


def reasons(result: AttestationResult) -> set[Reason]:
    return {Reason(r) for r in result.reasons if r < 100}


async def both(*coros: Any) -> list[Any]:
    """Run coroutines at the same moment; their results in order."""
    out: list[Any] = [None] * len(coros)

    async def run(i: int, c: Any) -> None:
        out[i] = await c

    async with trio.open_nursery() as nursery:
        for i, c in enumerate(coros):
            nursery.start_soon(run, i, c)
    return out


def stored_counter(node: VerifierNode, chip: Chip) -> int:
    rec = node.service.store.get_chip(chip.ueid)
    assert rec is not None
    return rec.state.attest_counter


# -- the guarantees ----------------------------------------------------------------------------


async def test_evidence_accepted_by_one_node_is_a_replay_at_the_other(
    fed: Federation, pg_url: str, tmp_path: Path
) -> None:
    with trio.fail_after(GUARD_S):
        async with two_nodes(fed, pg_url, tmp_path) as (kl, jb):
            chip = fed.chip()
            at_kl = Session(chip, kl)
            await at_kl.open()
            evidence = at_kl.answer()
            result, _ = await at_kl.send(evidence)
            assert result.status == Tier.AFFIRMING
            at_jb = Session(chip, jb)
            await at_jb.open()
            replayed, _ = await at_jb.send(evidence)  # the same bytes, to the other node
            assert replayed.status == Tier.CONTRAINDICATED
            assert Reason.EVIDENCE_REPLAY in reasons(replayed)
            assert Reason.CLONE_SUSPECTED not in reasons(replayed)  # the very same Evidence
            (entry,) = jb.service.store.audit_by_nonce(at_jb.challenge.nonce)
            assert Reason.EVIDENCE_REPLAY in entry.entry.reasons
            assert stored_counter(jb, chip) == chip.attest_counter  # nothing moved


async def test_one_chip_at_two_nodes_at_once_advances_once_per_evidence(
    fed: Federation, pg_url: str, tmp_path: Path
) -> None:
    """An honest chip answering both nodes at the same moment: the state never goes back or
    moves twice from one value, and the honest chip is never called a clone."""
    with trio.fail_after(GUARD_S):
        async with two_nodes(fed, pg_url, tmp_path) as (kl, jb):
            chip = fed.chip()
            first = Session(chip, kl)
            await first.open()
            await first.send(first.answer())
            lower_won = 0
            for _ in range(8):
                a, b = Session(chip, kl), Session(chip, jb)
                await both(a.open(), b.open())
                base = stored_counter(kl, chip)
                ev_a, ev_b = a.answer(), b.answer()  # counters base+1 and base+2
                (ra, _), (rb, _) = await both(a.send(ev_a), b.send(ev_b))
                assert rb.status == Tier.AFFIRMING  # the higher counter is accepted either way
                if ra.status == Tier.AFFIRMING:
                    lower_won += 1  # it committed first; the other then advanced from it
                else:
                    assert reasons(ra) == {Reason.COUNTER_ROLLBACK}
                assert stored_counter(jb, chip) == base + 2
            entries = [
                e.entry
                for n in (kl, jb)
                for e in n.service.store.audit_entries()
                if e.entry.ueid == chip.ueid
            ]
            assert len(entries) == 17
            assert all(Reason.CLONE_SUSPECTED not in e.reasons for e in entries)
            affirmed = sum(1 for e in entries if e.tier == Tier.AFFIRMING)
            assert affirmed == 1 + 8 + lower_won


async def test_a_copied_chip_is_flagged_as_a_clone(
    fed: Federation, pg_url: str, tmp_path: Path
) -> None:
    with trio.fail_after(GUARD_S):
        async with two_nodes(fed, pg_url, tmp_path) as (kl, jb):
            original = fed.chip(tmp_path / "chip")
            await attest(original, HOST, port(kl), rounds=2)
            shutil.copytree(tmp_path / "chip", tmp_path / "copy")  # the whole state folder
            copy = Chip.load(tmp_path / "copy")
            copy.boot(time.time())
            original.boot(time.time())
            # Both instances now hold one counter value and sign it for two nodes.
            (genuine,) = await attest(original, HOST, port(kl))
            (cloned,) = await attest(copy, HOST, port(jb))
            assert genuine.status == Tier.AFFIRMING
            assert cloned.status == Tier.CONTRAINDICATED
            assert reasons(cloned) == {Reason.CLONE_SUSPECTED, Reason.COUNTER_ROLLBACK}
            # At the same moment: whichever commits second is the one flagged.
            results = await both(attest(original, HOST, port(kl)), attest(copy, HOST, port(jb)))
            flagged = [r for (r,) in results if Reason.CLONE_SUSPECTED in reasons(r)]
            assert len(flagged) == 1 and flagged[0].status == Tier.CONTRAINDICATED


async def test_concurrent_renewals_through_two_nodes_issue_one_licence(
    fed: Federation, pg_url: str, tmp_path: Path
) -> None:
    with trio.fail_after(GUARD_S):
        async with two_nodes(fed, pg_url, tmp_path, licensing=True) as (kl, jb):
            chips = [fed.chip(licensed=True) for _ in range(4)]
            ledger = LicenseLedger(kl.service.store.db)
            for chip in chips:
                a, b = Session(chip, kl), Session(chip, jb)
                await both(a.open(), b.open())
                (_, fa), (rb, fb) = await both(a.send(a.answer()), b.send(b.answer()))
                assert rb.status == Tier.AFFIRMING
                grants = [f.grant for f in (fa, fb) if f.grant is not None]
                assert grants and all(g == grants[0] for g in grants)  # one licence, resent
                records = ledger.license_records(chip.ueid)
                assert [r.serial for r in records] == [1]
                part = chip.part(LicensingChip)
                token, companion = grants[0]
                part.accept_grant(Grant(token, companion), session_nonce=b.challenge.nonce,
                                  now_s=time.time())  # fmt: skip
                assert part.license_state().serial == 1
            assert ledger.region_status(REGION).licenses == 4


async def test_a_quota_shared_by_two_nodes_is_never_exceeded(
    fed: Federation, pg_url: str, tmp_path: Path
) -> None:
    with trio.fail_after(GUARD_S):
        async with two_nodes(fed, pg_url, tmp_path, licensing=True) as (kl, jb):
            ledger = LicenseLedger(kl.service.store.db)
            ledger.set_region_cap(REGION, Budgets(3 * BUDGET))  # the region's, both nodes'
            chips = [fed.chip(licensed=True) for _ in range(8)]
            results = await both(
                *(attest(c, HOST, port((kl, jb)[i % 2])) for i, c in enumerate(chips))
            )
            assert all(r.status == Tier.AFFIRMING for (r,) in results)
            region = ledger.region_status(REGION)
            assert region.licenses == 3 and region.issued[0] == 3 * BUDGET
            assert len(ledger.license_records()) == 3
            issued = [ledger.delegation_status(d).issued[0] for d in (1, 2)]  # type: ignore[union-attr]
            assert sum(issued) == 3 * BUDGET
            licensed = [c for c in chips if c.part(LicensingChip).license_state().serial == 1]
            assert len(licensed) == 3


async def test_one_node_serves_sessions_concurrently_on_postgresql(
    fed: Federation, pg_url: str, tmp_path: Path
) -> None:
    """A PostgreSQL node makes several store calls at once (the pool size): many chips at the
    same moment, with licensing and the pods cache, stay consistent."""
    with trio.fail_after(GUARD_S):
        async with two_nodes(fed, pg_url, tmp_path, licensing=True) as (kl, _):
            assert kl.service.store.concurrency > 1
            chips = [fed.chip(licensed=True) for _ in range(12)]
            rounds = await both(*(attest(c, HOST, port(kl), rounds=3) for c in chips))
            assert all(r.status == Tier.AFFIRMING for results in rounds for r in results)
            ledger = LicenseLedger(kl.service.store.db)
            assert sorted(r.ueid for r in ledger.license_records()) == sorted(c.ueid for c in chips)
            assert all(stored_counter(kl, c) == c.attest_counter for c in chips)
            kinds = [r.entry.kind for r in kl.service.store.audit_entries()]
            assert kinds.count("attestation") == 36  # every round, once
            assert kinds.count("license-issued") == 12  # every issuance joins the chain too
            assert kl.service.store.audit_head()[0] == len(kinds)
