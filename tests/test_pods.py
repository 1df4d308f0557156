"""Fixed Set on the chip side: pod certificates, the link handshake over real loopback TCP,
the link table, replay and relay attempts, and one end-to-end aggregation caught by a node.

Chips and pods come from the deterministic vector world (attest/testvectors/pod_vectors.py):
pod A = a0..a3 and pod B = b0, b1 (HX100, size class 8); BIG lists a0, a1 with size class 64.
No test asserts on wall-clock time; ``trio.fail_after`` only guards against hangs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from attest.chip.adversary import TamperedFirmwareChip
from attest.chip.device import Chip, fabricate
from attest.chip.runner import attest
from attest.codec.cose import verify1
from attest.errors import (
    ChipRefusal,
    ContentTypeError,
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
)
from attest.identity import VerifierIdentity
from attest.keys import SigningKey
from attest.messages.attestation import Evidence
from attest.messages.content import ContentType
from attest.messages.revocation import ListRefusal, RevocationList, Revocations
from attest.node.app import assemble
from attest.node.server import NodeSettings, VerifierNode
from attest.pods.cert import PodCredential
from attest.pods.chip import PodsChip, PodState
from attest.pods.driver import LinkSession, listen_links, maintain_links, open_link
from attest.pods.graph import KnownPod, refused_signer
from attest.pods.link import (
    FRAME_TYPES,
    TRANSITIONS,
    Direction,
    LinkBye,
    LinkConfirmFrame,
    LinkConnection,
    LinkEndpoint,
    LinkFrameType,
    LinkHello,
    LinkOutcome,
    LinkRefuse,
    LinkReply,
    LinkRole,
    LinkState,
    LinkUp,
    decode_link_body,
    encode_link_frame,
)
from attest.pods.links import DEFAULT_CAP_BPS, LinkRecord, LinkTable
from attest.pods.messages import (
    LINK_RESPONSE_CONTENT_TYPE,
    LinkConfirm,
    LinkResponse,
    PodCert,
    links_of,
    pod_cert_digest,
    pod_id_of,
)
from attest.pods.names import Refusal
from attest.pods.reasons import PodReason
from attest.pods.tables import PodTables
from attest.pods.verifier import PodsVerifier
from attest.store import verify_audit
from attest.store.sqlite import SqliteStore
from attest.testvectors.pod_vectors import member, pod_cert, pod_chip, pod_id
from attest.testvectors.world import NOW_S, World, build_world
from attest.verify.policy import Policy
from attest.verify.reasons import Tier

HOST = "127.0.0.1"
GUARD_S = 10.0  # hang guard only
PEAK = 900 * 10**9


@pytest.fixture(scope="module")
def w() -> World:
    return build_world()


def chip_in(w: World, name: str, pod: str | None, cls: type[Chip] = Chip, **kw: object) -> Chip:
    """A fresh chip named ``name`` holding pod ``pod``'s certificate (None: no pod)."""
    chip = pod_chip(w, name, chip_class=cls, **kw)  # type: ignore[arg-type]
    if pod is not None:
        token, issuer = pod_cert(pod)
        pods_of(chip).install_pod_cert(token, issuer, now_s=NOW_S)
    return chip


def pods_of(chip: Chip) -> PodsChip:
    """The chip's Fixed Set part (its pod slot and link table)."""
    return chip.part(PodsChip)


def revocation_list(w: World, number: int, *pods: str) -> bytes:
    return w.authority.revocation_list(number, now_s=NOW_S, pods=[pod_id(p) for p in pods])


@asynccontextmanager
async def links_up(*chips: Chip) -> AsyncIterator[dict[bytes, int]]:
    """Every chip listens for links on loopback; yields {ueid: port}."""
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            ports = {c.ueid: await nursery.start(listen_links, c) for c in chips}
            yield ports
            nursery.cancel_scope.cancel()


async def link(a: Chip, b: Chip, ports: dict[bytes, int]) -> LinkSession:
    session = await open_link(a, HOST, ports[b.ueid])
    await settle(b)
    return session


async def settle(*chips: Chip) -> None:
    """Let the responders' tasks record their outcomes (they run concurrently)."""
    for _ in range(20):
        await trio.sleep(0)


def last_refusal(chip: Chip) -> str | None:
    links = pods_of(chip).links
    return links.refusals[-1].reason if links.refusals else None


def record(a: Chip, b: Chip) -> tuple[LinkHello, LinkReply, LinkConfirmFrame]:
    """A genuine a→b handshake run in memory: its HELLO, REPLY and CONFIRM (an eavesdropper's
    recording). Nothing is recorded in either chip's link table."""
    ia = LinkEndpoint(LinkRole.INITIATOR, pods_of(a).link_context, os.urandom)
    rb = LinkEndpoint(LinkRole.RESPONDER, pods_of(b).link_context, os.urandom)
    hello = ia.initiate()
    reply = rb.receive_data(hello, NOW_S)
    confirm = ia.receive_data(reply, NOW_S)
    up = rb.receive_data(confirm, NOW_S)
    ia.receive_data(up, NOW_S)
    assert ia.outcomes[-1].full and rb.outcomes[-1].full
    frames = [decode_link_body(x[4:]) for x in (hello, reply, confirm)]
    assert isinstance(frames[0], LinkHello) and isinstance(frames[1], LinkReply)
    assert isinstance(frames[2], LinkConfirmFrame)
    return frames[0], frames[1], frames[2]


async def read_frame(stream: trio.abc.ReceiveStream) -> object:
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
        data = await stream.receive_some(65536)
        if not data:
            return None
        buf += data
    return decode_link_body(buf[4 : 4 + int.from_bytes(buf[:4], "big")])


# ================================================================================================
# Pod certificates and the chip's acceptance rules
# ================================================================================================


def test_pod_certificate_lists_members_sorted(w: World) -> None:
    token, _ = pod_cert("A")
    cert = PodCert.verify(token, w.anchors.authority_key)
    assert cert.pod_id == pod_id("A") and cert.size_class == 8
    ueids = [u for u, _ in cert.members]
    assert ueids == sorted(ueids) and len(ueids) == 4
    ueid, key = member("a2")
    assert cert.member_key(ueid) == key.public_key
    assert cert.member_key(member("b0")[0]) is None


def test_pod_certificate_may_not_list_more_chips_than_its_class(w: World) -> None:
    ueid, key = member("a0")
    with pytest.raises(DecodeError, match="size class"):
        PodCert(
            "x", 0, pod_id("z"), ((ueid, key.public_key), (b"\x01" + bytes(16), key.public_key)), 1
        )


@pytest.mark.parametrize(
    ("token_of", "expected"),
    [
        (lambda: pod_cert("A")[0], ContentType.EVIDENCE),
        (lambda: pod_cert("A")[0], LINK_RESPONSE_CONTENT_TYPE),
        (lambda: pod_cert("A")[0], ContentType.DEVICE_CERT),
    ],
)
def test_a_pod_certificate_never_verifies_as_another_type(
    w: World, token_of: Callable[[], bytes], expected: str
) -> None:
    with pytest.raises(ContentTypeError):
        verify1(token_of(), w.anchors.authority_key, expected)


def test_link_proofs_are_bound_to_their_role_and_type(w: World) -> None:
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    _, reply, confirm = record(a0, a1)
    a1_key, a0_key = a1.public_key, a0.public_key
    LinkResponse.verify(reply.proof, a1_key)
    LinkConfirm.verify(confirm.proof, a0_key)
    for token, key, other in (
        (reply.proof, a1_key, LinkConfirm),
        (confirm.proof, a0_key, LinkResponse),
    ):
        with pytest.raises(ContentTypeError):
            other.verify(token, key)
        with pytest.raises(ContentTypeError):
            Evidence.verify(token, key)


@pytest.mark.parametrize(
    ("chip_name", "hwmodel", "pod", "revoked", "refusal"),
    [
        ("a0", "HX100", "A", (), None),
        ("m0", "HX100", "M", (), None),  # manufacturer-issued, at a trusted facility
        ("cx0", "CX10", "CX", (), None),
        ("b0", "HX100", "A", (), Refusal.POD_NOT_MEMBER),
        ("a0", "HX100", "BIG", (), Refusal.POD_TOO_LARGE),
        ("a0", "HX100", "SIZE9", (), Refusal.POD_TOO_LARGE),
        ("cx0", "CX10", "CX2", (), Refusal.POD_TOO_LARGE),
        ("a0", "HX100", "A", ("A",), Refusal.POD_REVOKED),
    ],
)
def test_install_rules(
    w: World, chip_name: str, hwmodel: str, pod: str, revoked: tuple[str, ...], refusal: str | None
) -> None:
    chip = pod_chip(w, chip_name, hwmodel)
    if revoked:
        pods_of(chip).apply_revocations(revocation_list(w, 1, *revoked))
    token, issuer = pod_cert(pod)
    if refusal is None:
        pods_of(chip).install_pod_cert(token, issuer, now_s=NOW_S)
        assert pods_of(chip).pod.pod_id == pod_id(pod)
    else:
        with pytest.raises(ChipRefusal) as exc:
            pods_of(chip).install_pod_cert(token, issuer, now_s=NOW_S)
        assert exc.value.reason == refusal
        assert pods_of(chip).pod.credential is None


def test_install_refuses_forged_and_unbacked_certificates(w: World) -> None:
    chip = pod_chip(w, "a0")
    token, _ = pod_cert("A")
    forged = token[:-1] + bytes([token[-1] ^ 1])
    m_token, _ = pod_cert("M")
    for bad, issuer in ((forged, b""), (m_token, b""), (w.chain("hx100-a").device_cert, b"")):
        with pytest.raises(ChipRefusal) as exc:
            pods_of(chip).install_pod_cert(bad, issuer, now_s=NOW_S)
        assert exc.value.reason == Refusal.POD_CERT_INVALID


def test_tampered_firmware_installs_an_oversized_certificate(w: World) -> None:
    chip = chip_in(w, "a0", "BIG", TamperedFirmwareChip)
    pod = pods_of(chip).pod
    assert pod.credential is not None and pod.credential.cert.size_class == 64


def test_pod_state_survives_a_restart_and_revocations_never_roll_back(
    w: World, tmp_path: Path
) -> None:
    ueid, key = member("a0")
    chip = fabricate(
        w.manufacturers["mfr-a"], w.anchors, hwmodel="HX100", pod_class=8, now_s=NOW_S,
        ueid=ueid, device_key=key, state_dir=tmp_path,
    )  # fmt: skip
    pods_of(chip).install_pod_cert(pod_cert("A")[0], now_s=NOW_S)
    assert pods_of(chip).apply_revocations(revocation_list(w, 2, "B")) == 2
    again = Chip.load(tmp_path)
    pod = pods_of(again).pod
    assert pod.pod_id == pod_id("A")
    assert pod.revoked_pods == {pod_id("B")} and pod.revocations_number == 2
    for number in (1, 2):
        with pytest.raises(ChipRefusal) as exc:
            pods_of(again).apply_revocations(revocation_list(w, number))
        assert exc.value.reason == ListRefusal.REVOCATIONS_STALE
    impostor = RevocationList("x", NOW_S, 9).sign(SigningKey.derive_insecure_for_tests("nobody"))
    with pytest.raises(ChipRefusal) as exc:
        pods_of(again).apply_revocations(impostor)
    assert exc.value.reason == ListRefusal.REVOCATIONS_INVALID


# ================================================================================================
# The handshake over real streams
# ================================================================================================


async def test_members_link_at_full_bandwidth(w: World) -> None:
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    async with links_up(a0, a1) as ports:
        session = await link(a0, a1, ports)
        assert session.full
        ours, theirs = pods_of(a0).links.records(), pods_of(a1).links.records()
        assert [r.peer for r in ours] == [a1.ueid] and [r.peer for r in theirs] == [a0.ueid]
        assert ours[0].bandwidth_bps == theirs[0].bandwidth_bps == PEAK
        assert ours[0].session_key == theirs[0].session_key is not None
        assert pods_of(a0).links.peer_bandwidth(a1.ueid) == PEAK
        claims = pods_of(a0).evidence_claims(NOW_S)
        assert claims == {"pod_id": pod_id("A"), "links": (a1.ueid,)}
        # a re-verification on the same stream keeps the link, with a fresh key
        outcome = await session.reverify()
        await settle(a1)
        assert outcome.full and outcome.session_key != ours[0].session_key
        assert pods_of(a1).links.records()[0].session_key == outcome.session_key
        await session.aclose()


async def test_evidence_reports_pod_and_links(w: World) -> None:
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    _, token = w.challenge("pods/evidence")
    challenge = a0.accept_challenge(w.verifiers["kl-1"].cert, token, NOW_S)
    async with links_up(a0, a1) as ports:
        await link(a0, a1, ports)
        ev = Evidence.verify(a0.answer(challenge, NOW_S), a0.public_key)
    assert pod_id_of(ev) == pod_id("A") and links_of(ev) == (a1.ueid,)
    assert "link_refusals" not in ev.extensions
    # a chip outside the Fixed Set reports none of the claims (its Evidence is unchanged)
    plain = w.honest_chip("hx100-a")
    plain_ev = plain.current_evidence(challenge, NOW_S)
    assert {"pod_id", "links", "link_refusals"}.isdisjoint(plain_ev.extensions)


async def test_non_members_get_a_capped_link(w: World) -> None:
    a0, b0 = chip_in(w, "a0", "A"), chip_in(w, "b0", "B")
    async with links_up(a0, b0) as ports:
        session = await link(a0, b0, ports)
    assert not session.full
    # b0 declined in its own proof; a0 then refused: both name the rule, both are capped
    assert last_refusal(a0) == last_refusal(b0) == Refusal.LINK_NOT_MEMBER
    assert pods_of(a0).links.records()[0].bandwidth_bps == DEFAULT_CAP_BPS
    assert pods_of(a0).links.full_peers() == () and pods_of(b0).links.full_peers() == ()
    # honest chips decline: no signed acceptance, nothing to report against the other
    assert pods_of(a0).evidence_claims(NOW_S).get("link_refusals") is None


@pytest.mark.parametrize("initiator_has_pod", [True, False])
async def test_a_chip_without_a_pod_certificate_is_not_a_member(
    w: World, initiator_has_pod: bool
) -> None:
    pod, stranger = chip_in(w, "a0", "A"), chip_in(w, "stranger", None)
    a, b = (pod, stranger) if initiator_has_pod else (stranger, pod)
    async with links_up(a, b) as ports:
        session = await link(a, b, ports)
    assert not session.full
    assert last_refusal(pod) == Refusal.LINK_NOT_MEMBER
    assert last_refusal(stranger) in (Refusal.LINK_NO_POD, Refusal.LINK_PEER_REFUSED)


async def test_a_chip_without_a_pod_refuses_even_a_willing_peer(w: World) -> None:
    stranger = chip_in(w, "stranger", None)
    tampered = chip_in(w, "b1", "B", TamperedFirmwareChip)
    async with links_up(stranger, tampered) as ports:
        session = await link(tampered, stranger, ports)
    assert not session.full
    assert last_refusal(stranger) == Refusal.LINK_NO_POD
    # even tampered firmware needs a certificate to check the peer's key against: no link
    assert pods_of(tampered).links.full_peers() == ()


@pytest.mark.parametrize("who_knows", ["both", "responder", "initiator"])
async def test_revoked_pods_are_refused(w: World, who_knows: str) -> None:
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    for chip, role in ((a0, "initiator"), (a1, "responder")):
        if who_knows in ("both", role):
            pods_of(chip).apply_revocations(revocation_list(w, 1, "A"))
    async with links_up(a0, a1) as ports:
        session = await link(a0, a1, ports)
    assert not session.full
    knowing = [c for c, r in ((a0, "initiator"), (a1, "responder")) if who_knows in ("both", r)]
    for chip in knowing:
        assert last_refusal(chip) == Refusal.POD_REVOKED


async def test_forged_certificates_are_refused(w: World) -> None:
    """Tampered firmware holding a self-made certificate that lists it in pod A."""
    a0 = chip_in(w, "a0", "A")
    forger = chip_in(w, "forger", None, TamperedFirmwareChip)
    honest = PodCert.verify(pod_cert("A")[0], w.anchors.authority_key)
    cert = PodCert(
        honest.issuer,
        NOW_S,
        honest.pod_id,
        tuple(sorted((*honest.members, (forger.ueid, forger.public_key)), key=lambda m: m[0])),
        8,
    )
    token = cert.sign(SigningKey.derive_insecure_for_tests("forger's authority"))
    pods_of(forger).pod = PodState(PodCredential(token, b"", cert, pod_cert_digest(token)))
    async with links_up(a0, forger) as ports:
        as_initiator = await link(forger, a0, ports)
        assert last_refusal(a0) == Refusal.POD_CERT_INVALID
        as_responder = await link(a0, forger, ports)
        assert last_refusal(a0) == Refusal.POD_CERT_INVALID
    assert not as_initiator.full and not as_responder.full
    assert pods_of(a0).links.refusals[-1].evidence is None  # never authenticated: nothing to report


async def test_oversized_certificates_are_refused(w: World) -> None:
    """An HX100 with tampered firmware installed a 64-chip certificate (BIG lists a0, a1)."""
    a0 = chip_in(w, "a0", "A")
    big = chip_in(w, "a1", "BIG", TamperedFirmwareChip)
    async with links_up(a0, big) as ports:
        session = await link(big, a0, ports)
    assert not session.full
    refusal = pods_of(a0).links.refusals[-1]
    assert refusal.reason == Refusal.POD_TOO_LARGE and refusal.authenticated
    assert refusal.evidence is not None  # the tampered chip signed accept across certificates


async def test_tampered_firmware_accepts_and_honest_chips_report_it(w: World) -> None:
    a0, b0 = chip_in(w, "a0", "A"), chip_in(w, "b0", "B")
    t1 = chip_in(w, "b1", "B", TamperedFirmwareChip)
    t2 = chip_in(w, "a3", "A", TamperedFirmwareChip)
    async with links_up(a0, b0, t1, t2) as ports:
        assert (await link(t1, b0, ports)).full  # its own pod: fine
        assert (await link(t1, t2, ports)).full  # two tampered chips across pods: linked
        assert not (await link(a0, t1, ports)).full  # honest initiator, tampered responder
        assert not (await link(t1, a0, ports)).full  # tampered initiator, honest responder
    assert set(pods_of(t1).links.full_peers()) == {b0.ueid, t2.ueid}
    # refusals are kept for an hour
    proofs = pods_of(a0).evidence_claims(time.time())["link_refusals"]
    assert isinstance(proofs, tuple) and len(proofs) == 2  # a LinkResponse and a LinkConfirm
    b_pod = PodCert.verify(pod_cert("B")[0], w.anchors.authority_key)
    by_digest = {
        pod_cert_digest(pod_cert("B")[0]): KnownPod.from_cert(
            b_pod, pod_cert_digest(pod_cert("B")[0])
        )
    }
    for proof in proofs:
        assert refused_signer(a0.ueid, proof, {}, by_digest) == t1.ueid
        # ... and not when forwarded by anyone else
        assert refused_signer(b0.ueid, proof, {}, by_digest) is None


async def test_replayed_hello_and_confirm_fail(w: World) -> None:
    a0, a1, a2 = (chip_in(w, n, "A") for n in ("a0", "a1", "a2"))
    hello, _, confirm = record(a0, a1)
    async with links_up(a2) as ports:
        stream = await trio.open_tcp_stream(HOST, ports[a2.ueid])
        async with stream:
            await stream.send_all(encode_link_frame(hello))
            assert isinstance(await read_frame(stream), LinkReply)  # fresh nonce, fresh share
            await stream.send_all(encode_link_frame(confirm))
            answer = await read_frame(stream)
        await settle(a2)
    assert answer == LinkRefuse(Refusal.LINK_PROOF_MISMATCH)
    assert last_refusal(a2) == Refusal.LINK_PROOF_MISMATCH and pods_of(a2).links.full_peers() == ()


async def test_a_replayed_reply_fails(w: World) -> None:
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    _, reply, _ = record(a0, a1)

    async def impostor(stream: trio.SocketStream) -> None:
        assert isinstance(await read_frame(stream), LinkHello)
        await stream.send_all(encode_link_frame(reply))  # a1's REPLY from another session
        await read_frame(stream)

    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, impostor, 0)
            port = listeners[0].socket.getsockname()[1]
            session = await open_link(a0, HOST, port)
            nursery.cancel_scope.cancel()
    assert not session.full and last_refusal(a0) == Refusal.LINK_PROOF_MISMATCH


async def _middleman(
    a: Chip, b: Chip, b_port: int, rewrite: Callable[[object], object]
) -> tuple[LinkSession, list[LinkRecord]]:
    """Run a's handshake with b through a relay that passes every frame through ``rewrite``;
    returns a's session and b's link records as they were before the relay hung up."""

    async def relay(src: trio.SocketStream, dst: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while (frame := await read_frame(src)) is not None:
                await dst.send_all(encode_link_frame(rewrite(frame)))  # type: ignore[arg-type]

    async def handle(stream: trio.SocketStream) -> None:
        upstream = await trio.open_tcp_stream(HOST, b_port)
        async with upstream, trio.open_nursery() as n:
            n.start_soon(relay, stream, upstream)
            n.start_soon(relay, upstream, stream)

    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, handle, 0)
            session = await open_link(a, HOST, listeners[0].socket.getsockname()[1])
            await settle(b)
            records = pods_of(b).links.records()
            nursery.cancel_scope.cancel()
    return session, records


async def test_a_middleman_that_swaps_the_key_shares_is_caught(w: World) -> None:
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    mine = bytes(range(32))

    def swap(frame: object) -> object:
        if isinstance(frame, LinkHello | LinkReply):
            return replace(frame, share=mine)  # its own share, to read the traffic
        return frame

    async with links_up(a1) as ports:
        session, theirs = await _middleman(a0, a1, ports[a1.ueid], swap)
    assert not session.full
    assert last_refusal(a0) == Refusal.LINK_PROOF_MISMATCH
    assert not any(r.full for r in theirs)


async def test_a_transparent_relay_only_joins_the_two_members(w: World) -> None:
    """Forwarding unchanged frames is a cable: the link is a0–a1, keyed by their X25519."""
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    seen: list[bytes] = []

    def watch(frame: object) -> object:
        seen.append(encode_link_frame(frame))  # type: ignore[arg-type]
        return frame

    async with links_up(a1) as ports:
        session, theirs = await _middleman(a0, a1, ports[a1.ueid], watch)
    assert session.full
    key = pods_of(a0).links.records()[0].session_key
    assert key is not None and [r.session_key for r in theirs] == [key]
    assert all(key not in frame for frame in seen)


async def test_reflected_messages_fail(w: World) -> None:
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    hello, reply, _ = record(a0, a1)
    async with links_up(a0, a1) as ports:
        # a0's own HELLO sent back to a0
        async with await trio.open_tcp_stream(HOST, ports[a0.ueid]) as s:
            await s.send_all(encode_link_frame(hello))
            assert await read_frame(s) == LinkRefuse(Refusal.LINK_SELF)
        # a1's own LinkResponse presented to a1 as the initiator's LinkConfirm
        async with await trio.open_tcp_stream(HOST, ports[a1.ueid]) as s:
            await s.send_all(encode_link_frame(hello))
            assert isinstance(await read_frame(s), LinkReply)
            await s.send_all(encode_link_frame(LinkConfirmFrame(reply.proof)))
            assert await read_frame(s) == LinkRefuse(Refusal.LINK_PROOF_INVALID)


async def test_a_peer_that_breaks_the_protocol_gets_no_link(w: World) -> None:
    a0 = chip_in(w, "a0", "A")
    async with links_up(a0) as ports, await trio.open_tcp_stream(HOST, ports[a0.ueid]) as s:
        await s.send_all(encode_link_frame(LinkUp()))  # UP before any HELLO
        assert await read_frame(s) is None  # a0 just closes the stream
    assert pods_of(a0).links.full_peers() == ()


# ================================================================================================
# Re-verification and the link table
# ================================================================================================


async def test_a_peer_that_fails_re_verification_drops_to_the_cap(w: World) -> None:
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    async with links_up(a0, a1) as ports:
        session = await link(a0, a1, ports)
        assert session.full
        pods_of(a1).apply_revocations(revocation_list(w, 1, "A"))  # a1 learns: pod A is revoked
        outcome = await session.reverify()
        await settle(a1)
    assert not outcome.full and outcome.refusal == Refusal.LINK_PEER_REFUSED
    assert pods_of(a0).links.records()[0].bandwidth_bps == DEFAULT_CAP_BPS
    assert last_refusal(a1) == Refusal.POD_REVOKED
    assert pods_of(a0).links.full_peers() == pods_of(a1).links.full_peers() == ()


async def test_a_vanished_peer_fails_re_verification(w: World) -> None:
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    async with links_up(a0, a1) as ports:
        session = await link(a0, a1, ports)
    # the responder's listener is gone (its streams closed): the next round cannot finish
    outcome = await session.reverify(timeout_s=GUARD_S)
    assert not outcome.full and pods_of(a0).links.full_peers() == ()


async def test_links_are_re_verified_periodically(w: World) -> None:
    a0, a1 = chip_in(w, "a0", "A"), chip_in(w, "a1", "A")
    chip_time = [float(NOW_S)]
    async with links_up(a1) as ports:
        session = await open_link(a0, HOST, ports[a1.ueid], clock=lambda: chip_time[0])
        first = pods_of(a0).links.records()[0].verified_s
        chip_time[0] += pods_of(a0).links.reverify_s  # a re-verification is due
        with trio.fail_after(GUARD_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    lambda: maintain_links(
                        a0, [session], interval_s=0.001, clock=lambda: chip_time[0]
                    )
                )
                while pods_of(a0).links.records()[0].verified_s == first:
                    await trio.sleep(0.001)
                nursery.cancel_scope.cancel()
    assert pods_of(a0).links.records()[0].full


def _full(peer: bytes = b"\x01" + bytes(16)) -> LinkOutcome:
    return LinkOutcome(peer, True, authenticated=True, session_key=bytes(32))


def test_overdue_links_drop_to_the_configured_cap() -> None:
    table = LinkTable(peak_bps=PEAK, cap_bps=5 * 10**8, reverify_s=60, grace_s=30)
    port = table.open_port()
    table.apply(_full(), 1000.0, port=port)
    assert table.due(1059.0) == [] and table.due(1060.0) == [port]
    assert table.expire(1090.0) == []  # late, but within the grace
    assert table.expire(1090.5) == [port]
    rec = table.get(port)
    assert rec is not None and not rec.full and rec.reason == Refusal.LINK_EXPIRED
    assert rec.bandwidth_bps == table.bandwidth(port) == 5 * 10**8
    assert table.bandwidth(99) == 5 * 10**8  # an unknown port is capped too
    assert LinkTable(peak_bps=10**8, cap_bps=10**9).capped_bps == 10**8  # never above peak


def test_a_stranger_claiming_a_members_ueid_cannot_downgrade_its_link() -> None:
    table = LinkTable(peak_bps=PEAK)
    genuine, other = table.open_port(), table.open_port()
    peer = b"\x01" + bytes(16)
    table.apply(_full(peer), 0.0, port=genuine)
    table.apply(LinkOutcome(peer, False, Refusal.LINK_PROOF_MISMATCH), 1.0, port=other)
    assert table.full_peers() == (peer,) and table.peer_bandwidth(peer) == PEAK


def test_refusal_evidence_is_reported_newest_first_within_the_window() -> None:
    table = LinkTable(peak_bps=PEAK, refusal_window_s=100)
    for i in range(20):
        table.apply(
            LinkOutcome(None, False, Refusal.LINK_NOT_MEMBER, evidence=bytes([i])), float(i), port=1
        )
    links, proofs = table.report(19.0)
    assert links == () and proofs == tuple(bytes([i]) for i in range(4, 20))
    assert table.report(200.0) == ((), ())


# ================================================================================================
# The sans-I/O state machine
# ================================================================================================


def test_every_live_state_has_a_way_out() -> None:
    for role in LinkRole:
        states = {s for (r, s, _, _) in TRANSITIONS if r is role}
        for state in states - {LinkState.CLOSED}:
            nexts = {n for (r, s, _, _), n in TRANSITIONS.items() if (r, s) == (role, state)}
            assert nexts, (role, state)
    # rounds end FULL or CAPPED; only the initiator opens one, from a rest state
    hellos = [(r, s) for (r, s, d, e) in TRANSITIONS if e is LinkHello and d is Direction.SEND]
    assert {r for r, _ in hellos} == {LinkRole.INITIATOR}


def test_illegal_moves_raise() -> None:
    conn = LinkConnection(LinkRole.RESPONDER)
    with pytest.raises(LocalProtocolError):
        conn.send(LinkUp())
    conn.receive_data(encode_link_frame(LinkBye()))
    assert isinstance(conn.next_event(), LinkBye) and conn.state is LinkState.CLOSED
    conn = LinkConnection(LinkRole.INITIATOR)
    conn.send(LinkHello(1, b"\x01" + bytes(16), bytes(32), bytes(32), b"", b""))
    conn.receive_data(encode_link_frame(LinkConfirmFrame(b"x")))
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    assert conn.state is LinkState.ERROR
    conn = LinkConnection(LinkRole.RESPONDER)
    conn.receive_data(b"\x00\x00\x00\x02\x81\x09")  # frame type 9
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_frames_are_checked_both_ways() -> None:
    with pytest.raises(LocalProtocolError):
        encode_link_frame(LinkHello(1, b"not a ueid", bytes(32), bytes(32), b"", b""))
    with pytest.raises(LocalProtocolError):
        encode_link_frame(LinkRefuse(""))
    # the frame type on the wire is the LinkFrameType value, in the schema's order
    assert [int(t) for t in LinkFrameType] == [FRAME_TYPES.index(c) + 1 for c in FRAME_TYPES]
    assert encode_link_frame(LinkBye())[4:] == bytes([0x81, LinkFrameType.BYE])
    good = encode_link_frame(LinkRefuse(str(Refusal.LINK_SELF)))
    assert decode_link_body(good[4:]) == LinkRefuse("LINK_SELF")


# ================================================================================================
# End to end: an aggregation flagged by a running verifier node
# ================================================================================================


async def test_a_node_flags_an_aggregation_in_the_verdict_and_the_metrics(
    w: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Pods G1 = g0..g3 and G2 = h0..h3 (size class 4); tampered g0 and h0 link across."""
    vid = w.verifiers["kl-1"]
    ver = VerifierIdentity(vid.verifier_id, vid.region, vid.key, vid.cert)
    store = SqliteStore(tmp_path / "v.db", verifier_id=ver.verifier_id, signing_key=ver.key)
    built = assemble(
        identity=ver,
        anchors=w.anchors,
        store=store,
        policy=Policy(),
        revocations=Revocations(),
        sections={},
    )
    monitor = built.service.part(PodsVerifier)
    assert monitor is not None  # the Fixed Set part is always on
    for pod in ("G1", "G2"):
        monitor.register(*pod_cert(pod), now_s=int(time.time()))
    g = [chip_in(w, f"g{i}", "G1", TamperedFirmwareChip if i == 0 else Chip) for i in range(4)]
    h = [chip_in(w, f"h{i}", "G2", TamperedFirmwareChip if i == 0 else Chip) for i in range(4)]
    for c in g + h:  # the world's chips booted in the past; attest with today's clock
        c.boot(time.time())
    node = VerifierNode(built.service, NodeSettings(http_port=-1), built.metrics)
    caplog.set_level("WARNING", logger="attest.node.pods")
    results = {}
    with trio.fail_after(GUARD_S * 3):
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            assert node.address is not None
            async with links_up(*g, *h) as ports:
                cables = []  # a link lives as long as its stream
                for pod in (g, h):
                    for i, a in enumerate(pod):
                        cables += [await link(a, b, ports) for b in pod[i + 1 :]]
                cables.append(await link(g[0], h[0], ports))  # the aggregation
                cables.append(await link(g[0], h[1], ports))  # h1 refuses
                assert [c.full for c in cables] == [True] * 13 + [False]
                for _ in range(2):  # the second round sees everyone's first report
                    for c in g + h:
                        res = await attest(c, HOST, node.address.port)
                        results[c.ueid] = res[-1]
            node.shutdown()
    for c in g + h:
        assert results[c.ueid].status == Tier.CONTRAINDICATED
        assert PodReason.COMPONENT_OVER_LIMIT in results[c.ueid].reasons
    assert PodReason.LINK_NON_MEMBER in results[g[0].ueid].reasons
    assert PodReason.LINK_ATTEMPT_REFUSED in results[g[0].ueid].reasons
    assert PodReason.LINK_NON_MEMBER not in results[g[1].ueid].reasons
    metrics = node.metrics.render().decode()
    assert 'attest_pod_alerts_total{alert="COMPONENT_OVER_LIMIT"}' in metrics
    over = next(
        line
        for line in metrics.splitlines()
        if line.startswith('attest_reasons_total{reason="COMPONENT_OVER_LIMIT"}')
    )
    assert float(over.split()[-1]) >= 8  # every chip in round two (some already in round one)
    alerts = [r for r in caplog.records if r.getMessage() == "pod alert"]
    kinds = {r.fields["alert"] for r in alerts}  # type: ignore[attr-defined]
    assert {"COMPONENT_OVER_LIMIT", "LINK_NON_MEMBER", "LINK_ATTEMPT_REFUSED"} <= kinds
    # every alert is in the audit chain too, right after the attestation that raised it
    audit_store = SqliteStore(tmp_path / "v.db", readonly=True)
    records = list(audit_store.audit_entries())
    audited = [(i, r.entry) for i, r in enumerate(records) if r.entry.kind == "pod-alert"]
    assert sorted(e.reasons[0] for _, e in audited) == sorted(
        r.fields["code"]  # type: ignore[attr-defined]
        for r in alerts
    )
    for i, entry in audited:
        session = next(r.entry for r in reversed(records[:i]) if r.entry.kind == "attestation")
        assert (entry.ueid, entry.nonce) == (session.ueid, session.nonce)
        assert entry.tier == Tier.CONTRAINDICATED or entry.reasons == (PodReason.LINK_ONE_SIDED,)
    assert verify_audit(audit_store, ver.key.public_key).ok
    audit_store.close()
    # the graph survives a restart: reports and certificates are in the store
    again = SqliteStore(tmp_path / "v.db", verifier_id=ver.verifier_id)
    restarted = assemble(
        identity=ver,
        anchors=w.anchors,
        store=again,
        policy=Policy(),
        revocations=Revocations(),
        sections={},
    ).service.part(PodsVerifier)
    assert restarted is not None
    assert len(restarted.reports) == 8 and set(restarted.pods) == {
        pod_id("G1"),
        pod_id("G2"),
    }
    assert max(len(c) for c in restarted.graph().components) == 8
    again.close()


async def test_a_key_share_of_small_order_is_refused(w: World) -> None:
    """A share whose X25519 product is all zeros would make the session key public."""
    a0, a1, a2 = (chip_in(w, n, "A") for n in ("a0", "a1", "a2"))
    hello, _, _ = record(a0, a1)
    async with links_up(a2) as ports, await trio.open_tcp_stream(HOST, ports[a2.ueid]) as s:
        await s.send_all(encode_link_frame(replace(hello, share=bytes(32))))
        assert await read_frame(s) == LinkRefuse(Refusal.LINK_PROOF_INVALID)


# ================================================================================================
# Command line: certify, install, revoke and register pods
# ================================================================================================


def test_cli_certifies_installs_revokes_and_registers_pods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from attest.cli.main import main

    for name in [k for k in os.environ if k.startswith("ATTEST_")]:
        monkeypatch.delenv(name)
    auth, mfr, chips, kl = (tmp_path / n for n in ("auth", "mfr", "chips", "kl"))
    pod, revoked = tmp_path / "pod.cose", tmp_path / "rev.cose"
    for argv in (
        ["authority", "init", "--dir", auth, "--id", "authority.example"],
        ["authority", "certify-manufacturer", "--dir", auth, "--id", "vendor-a", "--out", mfr],
        [
            "authority",
            "certify-verifier",
            "--dir",
            auth,
            "--id",
            "kl-1",
            "--region",
            "MY",
            "--out",
            kl,
        ],
        [
            "chip",
            "fabricate",
            "--manufacturer",
            mfr,
            "--model",
            "HX100",
            "--state",
            chips,
            "--count",
            "3",
        ],
    ):
        assert main([str(a) for a in argv]) == 0
    # a size class below the member count is a usage error
    small = [
        "authority",
        "certify-pod",
        "--dir",
        auth,
        "--members",
        chips,
        "--out",
        pod,
        "--size-class",
        "2",
    ]
    assert main([str(a) for a in small]) == 2
    capsys.readouterr()
    assert (
        main(
            [
                str(a)
                for a in [
                    "authority",
                    "certify-pod",
                    "--dir",
                    auth,
                    "--members",
                    chips,
                    "--out",
                    pod,
                    "--install",
                ]
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    pod_hex = out.split()[1]
    assert "3 member(s), size class 8" in out and "installed in 3 chip(s)" in out
    members = sorted(chips.glob("chip-*"))
    assert all(Chip.load(d).part(PodsChip).pod.pod_id == bytes.fromhex(pod_hex) for d in members)
    assert (
        main(["authority", "revoke", "--dir", str(auth), "--pod", pod_hex, "--out", str(revoked)])
        == 0
    )
    anchors = Chip.load(members[0]).anchors
    assert RevocationList.verify(revoked.read_bytes(), anchors.authority_key).pods == (
        bytes.fromhex(pod_hex),
    )
    assert (
        main(["authority", "revoke", "--dir", str(auth), "--pod", "abcd", "--out", str(revoked)])
        == 2
    )
    assert main(["verifier", "register-pod", "--config", str(kl / "verifier.toml"), str(pod)]) == 0
    assert (
        main(["verifier", "register-pod", "--config", str(kl / "verifier.toml"), str(revoked)]) == 3
    )
    store = SqliteStore(kl / "verifier.db", readonly=True)
    assert [token for token, _ in PodTables(store.db).pod_certs()] == [pod.read_bytes()]
    store.close()


async def test_the_demo_reports_the_pod_alerts_its_nodes_counted() -> None:
    """The demo's ``alerts_metric`` is read from the registry the pods part counts in (it was
    read from the node's own registry and was always empty)."""
    from attest.demo.scenario import DemoOptions, run_demo

    with trio.fail_after(60):
        summary = await run_demo(DemoOptions(chips=4, rounds=1))
    pods = summary.as_json()["pods"]
    for verifier, counted in pods["alerts_metric"].items():
        raised = pods["components"][verifier]["alerts"]
        assert counted and set(counted) == set(raised), (verifier, counted, raised)
        assert all(counted[name] >= n for name, n in raised.items())
