"""Verification-core throughput against its baselines, measured side by side in one process.

The workload is realistic Evidence: a pool of distinct tokens from one chip of the
deterministic test world (:mod:`attest.testvectors.world`), each answering its own challenge,
appraised against the chip's stored state with its certificate chain already in the
:class:`~attest.verify.chain.ChainCache` (as the daemon has it after a chip's first session).
Every contender gets the same token bytes:

* ``libsodium``: ``crypto_sign_verify_detached`` of PyNaCl's bundled libsodium on the exact
  Sig_structure bytes (the cryptographic floor: no parsing at all);
* ``pynacl_open``: PyNaCl's public ``crypto_sign_open`` on the same bytes (what
  ``nacl.signing.VerifyKey.verify`` does: it copies signature and message around);
* ``core``: :func:`attest.verify.core.appraise` (strict COSE and CBOR parsing, the signature,
  the schema, every check of SPEC.md §9, the verdict and the new state);
* ``pycose``: ``Sign1Message.decode`` + ``verify_signature`` (no payload decoding);
* ``cwt``: python-cwt's ``COSE.decode`` with the key (verify, return the payload).

Each contender runs in rounds of ``round_s`` interleaved with the others (A B C D E A B C ...),
and its rate is the median over rounds, so drift of the machine's speed during the run hits
every contender alike. The process is pinned to one core when the OS allows it.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from attest.codec.cose import parse_sign1, protected_header, sig_structure
from attest.keys import _verify_detached
from attest.messages.content import ContentType
from attest.messages.revocation import Revocations
from attest.testvectors.world import (
    ROUND1_MS,
    ROUND1_S,
    ROUND1_SIGN_S,
    ROUND2_MS,
    ROUND2_S,
    ROUND2_SIGN_S,
    build_world,
)
from attest.verify.chain import ChainCache
from attest.verify.core import appraise
from attest.verify.policy import Policy
from attest.verify.reasons import Tier

POOL = 256
CHIP = "hx100-a"


class Workload:
    """A pool of evidence tokens, their appraisal inputs and the bytes the baselines need."""

    def __init__(self, pool: int = POOL) -> None:
        world = build_world()
        chip = world.honest_chip(CHIP)
        cert = world.verifiers["kl-1"].cert
        self.anchors = world.anchors
        self.policy = Policy()
        self.revocations = Revocations()
        self.cache = ChainCache()
        self.chain = chip.chain
        self.public_key = chip.public_key.raw
        # Round 1 enrols the chip; every pooled token is a round-2 answer to its own challenge.
        _, token = world.challenge("bench/round1")
        first = chip.accept_challenge(cert, token, ROUND1_S)
        verdict = appraise(
            chip.answer(first, ROUND1_SIGN_S),
            challenge=first,
            chain=self.chain,
            state=None,
            anchors=self.anchors,
            revocations=self.revocations,
            policy=self.policy,
            now_ms=ROUND1_MS,
            cache=self.cache,
        )
        assert verdict.new_state is not None
        self.state = verdict.new_state
        chip.run_workload(30.0, 0.5)
        self.items: list[tuple[bytes, Any]] = []
        for i in range(pool):
            _, token = world.challenge(f"bench/{i}", issued_at=ROUND2_S)
            challenge = chip.accept_challenge(cert, token, ROUND2_S)
            self.items.append((chip.answer(challenge, ROUND2_SIGN_S), challenge))
        protected = protected_header(ContentType.EVIDENCE)
        self.signed: list[tuple[bytes, bytes]] = []  # (Sig_structure, signature)
        for token, _ in self.items:
            msg = parse_sign1(token)
            self.signed.append((sig_structure(protected, msg.payload), msg.signature))
        self.now_ms = ROUND2_MS

    def appraise(self, token: bytes, challenge: Any) -> Any:
        return appraise(
            token,
            challenge=challenge,
            chain=self.chain,
            state=self.state,
            anchors=self.anchors,
            revocations=self.revocations,
            policy=self.policy,
            now_ms=self.now_ms,
            cache=self.cache,
        )


def _libsodium_op(w: Workload) -> Callable[[int], None]:
    pk, signed = w.public_key, w.signed

    def run(n: int) -> None:
        verify = _verify_detached
        for i in range(n):
            tbs, sig = signed[i & (POOL - 1)]
            if not verify(sig, tbs, pk):
                raise AssertionError("baseline signature did not verify")

    return run


def _pynacl_open_op(w: Workload) -> Callable[[int], None]:
    from nacl.bindings import crypto_sign_open

    pk, signed = w.public_key, w.signed

    def run(n: int) -> None:
        for i in range(n):
            tbs, sig = signed[i & (POOL - 1)]
            crypto_sign_open(sig + tbs, pk)

    return run


def _core_op(w: Workload) -> Callable[[int], None]:
    items = w.items
    w.appraise(*items[0])  # the chain is in the cache from here on, as in the daemon

    def run(n: int) -> None:
        for i in range(n):
            token, challenge = items[i & (POOL - 1)]
            if w.appraise(token, challenge).tier is not Tier.AFFIRMING:
                raise AssertionError("benchmark evidence was not affirmed")

    return run


def _pycose_op(w: Workload) -> Callable[[int], None]:
    from pycose.keys import OKPKey  # type: ignore[attr-defined]
    from pycose.keys.curves import Ed25519
    from pycose.messages import Sign1Message  # type: ignore[attr-defined]

    key = OKPKey(crv=Ed25519, x=w.public_key)
    tokens = [t for t, _ in w.items]

    def run(n: int) -> None:
        for i in range(n):
            msg = Sign1Message.decode(tokens[i & (POOL - 1)])
            msg.key = key
            if not msg.verify_signature():
                raise AssertionError("pycose did not verify")

    return run


def _cwt_op(w: Workload) -> Callable[[int], None]:
    import cwt

    key = cwt.COSEKey.new({1: 1, -1: 6, -2: w.public_key, 3: -8})
    ctx = cwt.COSE.new()
    tokens = [t for t, _ in w.items]

    def run(n: int) -> None:
        for i in range(n):
            ctx.decode(tokens[i & (POOL - 1)], key)

    return run


CONTENDERS: dict[str, Callable[[Workload], Callable[[int], None]]] = {
    "libsodium": _libsodium_op,
    "pynacl_open": _pynacl_open_op,
    "core": _core_op,
    "pycose": _pycose_op,
    "cwt": _cwt_op,
}


def pin_to_one_core() -> int | None:
    """Pin this process to one CPU (the one it runs on) so "per core" means one core."""
    try:
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return None


def _rate(op: Callable[[int], None], round_s: float) -> float:
    """Operations per second of ``op`` over about ``round_s`` seconds."""
    n, elapsed = 0, 0.0
    batch = 16
    start = time.perf_counter()
    while elapsed < round_s:
        op(batch)
        n += batch
        elapsed = time.perf_counter() - start
        batch = min(batch * 2, 4096)
    return n / elapsed


def measure_libsodium(seconds: float = 1.0, workload: Workload | None = None) -> float:
    """libsodium verifications per second (the baseline the e2e ratios use)."""
    w = workload or Workload(pool=POOL)
    op = _libsodium_op(w)
    op(64)
    rounds = [_rate(op, seconds / 5) for _ in range(5)]
    return statistics.median(rounds)


def run_core(*, seconds: float = 10.0, rounds: int = 10, pin: bool = True) -> dict[str, Any]:
    """The core benchmark: every contender for about ``seconds`` in total, interleaved."""
    cpu = pin_to_one_core() if pin else None
    w = Workload()
    ops = {name: make(w) for name, make in CONTENDERS.items()}
    for op in ops.values():
        op(64)  # warm-up: caches, first-call paths
    per_round = seconds / (rounds * len(ops))
    samples: dict[str, list[float]] = {name: [] for name in ops}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    try:
        for _ in range(rounds):
            for name, op in ops.items():
                samples[name].append(_rate(op, per_round))
    finally:
        if gc_was_enabled:
            gc.enable()
    rate = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "libsodium_verify_per_s": rate["libsodium"],
        "pynacl_crypto_sign_open_per_s": rate["pynacl_open"],
        "core_per_s": rate["core"],
        "pycose_per_s": rate["pycose"],
        "cwt_per_s": rate["cwt"],
        "core_vs_libsodium": rate["core"] / rate["libsodium"],
        "core_vs_pynacl_open": rate["core"] / rate["pynacl_open"],
        "core_vs_pycose": rate["core"] / rate["pycose"],
        "core_vs_cwt": rate["core"] / rate["cwt"],
        "core_us_per_appraisal": 1e6 / rate["core"],
        "libsodium_us_per_verify": 1e6 / rate["libsodium"],
        "rounds": rounds,
        "round_s": per_round,
        "samples_per_s": samples,
        "pinned_cpu": cpu,
        "evidence_bytes": len(w.items[0][0]),
    }
