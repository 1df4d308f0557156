"""Attacks the demo injects over the real network, each with the reason code that must catch it.

Every attack is a coroutine that plays one adversary against a running node and returns the
verifier's signed verdict. Later mechanisms (licensing, pods) append to :data:`ATTACKS`.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from attest.chip.adversary import CompromisedChip
from attest.chip.device import Chip
from attest.chip.runner import attest
from attest.demo.world import RunningNode, World
from attest.messages.attestation import AttestationResult, Challenge
from attest.verify.reasons import Reason


@dataclass(frozen=True, slots=True)
class Attack:
    name: str
    expected_reason: Reason
    description: str
    run: Callable[[World, RunningNode], Awaitable[AttestationResult]]


async def _session(chip: Chip, node: RunningNode, **kwargs: object) -> AttestationResult:
    results = await attest(chip, "127.0.0.1", node.port, **kwargs)  # type: ignore[arg-type]
    return results[-1]


async def evidence_replay(world: World, node: RunningNode) -> AttestationResult:
    """An eavesdropper records a chip's evidence and replays it in a later session."""
    chip = world.fabricate("HX100", 8)
    captured: list[bytes] = []

    def record(c: Chip, challenge: Challenge, now: float) -> bytes:
        captured.append(c.answer(challenge, now))
        return captured[-1]

    await _session(chip, node, make_evidence=record)
    return await _session(chip, node, make_evidence=lambda c, ch, now: captured[0])


async def counter_rollback(world: World, node: RunningNode) -> AttestationResult:
    """A chip whose non-volatile state was restored to an older snapshot (counter goes back)."""
    chip = world.fabricate("HX100", 8, chip_class=CompromisedChip)
    await _session(chip, node, rounds=2)

    def rolled_back(c: Chip, challenge: Challenge, now: float) -> bytes:
        assert isinstance(c, CompromisedChip)
        return c.sign_arbitrary_evidence(
            replace(c.current_evidence(challenge, now), attest_counter=1)
        )

    return await _session(chip, node, make_evidence=rolled_back)


async def wrong_nonce(world: World, node: RunningNode) -> AttestationResult:
    """Evidence pre-computed for a guessed nonce instead of the verifier's fresh one."""
    chip = world.fabricate("HX800", 64, chip_class=CompromisedChip)

    def guessed(c: Chip, challenge: Challenge, now: float) -> bytes:
        assert isinstance(c, CompromisedChip)
        ev = c.current_evidence(challenge, now)
        return c.sign_arbitrary_evidence(
            replace(ev, nonce=os.urandom(32), attest_counter=ev.attest_counter + 1)
        )

    return await _session(chip, node, make_evidence=guessed)


async def forged_signature(world: World, node: RunningNode) -> AttestationResult:
    """Evidence altered in transit (or signed without the device key): the signature breaks."""
    chip = world.fabricate("CX10", 1)

    def tampered(c: Chip, challenge: Challenge, now: float) -> bytes:
        token = bytearray(c.answer(challenge, now))
        token[-1] ^= 0x01  # last byte of the Ed25519 signature
        return bytes(token)

    return await _session(chip, node, make_evidence=tampered)


async def revoked_chip(world: World, node: RunningNode) -> AttestationResult:
    """A chip on the authority's revocation list (reported stolen) tries to attest."""
    chip = world.revoked_chips[0]
    return await _session(chip, node)


ATTACKS: list[Attack] = [
    Attack(
        "evidence-replay", Reason.EVIDENCE_REPLAY, "recorded evidence sent again", evidence_replay
    ),
    Attack(
        "counter-rollback",
        Reason.COUNTER_ROLLBACK,
        "attestation counter restored to 1",
        counter_rollback,
    ),
    Attack("wrong-nonce", Reason.NONCE_MISMATCH, "evidence bound to a guessed nonce", wrong_nonce),
    Attack("forged-signature", Reason.BAD_SIGNATURE, "one signature bit flipped", forged_signature),
    Attack("revoked-chip", Reason.DEVICE_REVOKED, "chip on revocation list #1", revoked_chip),
]
