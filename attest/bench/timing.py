"""A dudect-style leakage test of the verification core (Reparaz, Balasch, Verbauwhede 2017).

Question: does the time :func:`attest.verify.core.appraise` takes depend on *which* check
fails? For each pair of failure classes we time appraisals of inputs of both classes,
interleaved in a random order (so drift of the machine hits both alike), and compare the two
timing distributions with Welch's t-test, on all measurements and on measurements cropped at
several percentiles of the pooled distribution (cropping removes the long tail of interrupts
and scheduling, which otherwise hides small differences). ``|t| > 4.5`` on any of them means
the classes are distinguishable: leakage.

Classes:

* ``bad_signature``: well-formed Evidence signed with another chip's key;
* ``bad_nonce``: signed Evidence answering another nonce than the challenge's;
* ``counter_rollback``: signed Evidence whose counter the stored state has already reached;
* ``nonce_first_byte`` / ``nonce_last_byte``: signed Evidence whose nonce differs from the
  challenge's only in the first / only in the last byte (the constant-time comparison).

See :class:`Inputs` for how the pools keep libsodium's variable-time verification of public
values from becoming a per-class constant.

The test is only worth something if it can see a leak, so the same harness also runs two
controls on the first-byte / last-byte pair with the core's comparison swapped for a leaky one:
a byte-by-byte loop that returns at the first difference (must show ``|t|`` far above 4.5),
and Python's ``bytes ==`` (a memcmp: its first-versus-last-byte difference on 32 bytes is a few
nanoseconds, which is reported for what it is). Garbage collection is off while measuring and
the process is pinned to one core.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from attest.bench.core import pin_to_one_core
from attest.codec.cose import sign1
from attest.messages.content import ContentType
from attest.messages.revocation import Revocations
from attest.testvectors.world import ROUND1_MS, ROUND1_S, ROUND1_SIGN_S, build_world
from attest.verify import core
from attest.verify.chain import ChainCache
from attest.verify.policy import Policy
from attest.verify.reasons import Reason

THRESHOLD = 4.5
#: dudect's cropping percentiles: 1 - 0.5 ** (10 * (k + 1) / N), here with N = 10
PERCENTILES = tuple(100 * (1 - 0.5 ** (10 * (k + 1) / 10)) for k in range(10))
CLASSES = ("bad_signature", "bad_nonce", "counter_rollback", "nonce_first_byte", "nonce_last_byte")
PAIRS = (
    ("bad_signature", "bad_nonce"),
    ("bad_signature", "counter_rollback"),
    ("bad_nonce", "counter_rollback"),
    ("nonce_first_byte", "nonce_last_byte"),
)
EXPECTED = {
    "bad_signature": (Reason.BAD_SIGNATURE,),
    "bad_nonce": (Reason.NONCE_MISMATCH,),
    "counter_rollback": (Reason.COUNTER_ROLLBACK,),
    "nonce_first_byte": (Reason.NONCE_MISMATCH,),
    "nonce_last_byte": (Reason.NONCE_MISMATCH,),
}


def _leaky_loop_eq(a: bytes, b: bytes) -> bool:
    """The naive comparison the core must not use: returns at the first differing byte."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):  # noqa: SIM110 - the explicit early exit is the point
        if x != y:
            return False
    return True


def _bytes_eq(a: bytes, b: bytes) -> bool:
    return a == b


CONTROLS: dict[str, Callable[[bytes, bytes], bool]] = {
    "control_leaky_loop": _leaky_loop_eq,
    "control_bytes_eq": _bytes_eq,
}


class Inputs:
    """Pools of appraisal inputs per class, all for one enrolled chip.

    Item ``i`` of every class but ``bad_signature`` uses the *same* signed token ``T_i``; what
    makes its check fail is another input of appraise(): a challenge with another nonce
    (``bad_nonce``), a stored state whose counter already reached the token's
    (``counter_rollback``), a challenge whose nonce differs from the token's in the first or
    the last byte. Class pairs among these therefore time the same signature verifications,
    item for item. ``bad_signature`` has its own tokens (same claims, another chip's key);
    its pool is large so that its mean verification time matches the others' to well below
    the noise.
    """

    def __init__(self, pool: int = 20_000) -> None:
        world = build_world()
        chip = world.chip("hx100-a")
        cert = world.verifiers["kl-1"].cert
        self.anchors, self.policy, self.revocations = world.anchors, Policy(), Revocations()
        self.cache = ChainCache()
        self.chain = chip.chain
        _, token = world.challenge("timing/enrol")
        first = chip.accept_challenge(cert, token, ROUND1_S)
        verdict = self.appraise_with(chip.answer(first, ROUND1_SIGN_S), first, None)
        assert verdict.new_state is not None
        state = verdict.new_state
        ahead = dataclasses.replace(state, attest_counter=state.attest_counter + 1)
        wrong_key = world.device_key("hx100-b")
        self.pools: dict[str, list[tuple[bytes, Any, Any]]] = {c: [] for c in CLASSES}
        for i in range(pool):
            challenge = dataclasses.replace(first, nonce=hashlib.sha256(b"timing/%d" % i).digest())
            claims = dataclasses.replace(
                chip.current_evidence(challenge, ROUND1_SIGN_S),
                attest_counter=state.attest_counter + 1,
                uptime_s=70_000 + i,  # same encoded length for every i
            )
            token = chip.sign_arbitrary_evidence(claims)
            forged = sign1(wrong_key, ContentType.EVIDENCE, claims.payload())
            other = dataclasses.replace(challenge, nonce=hashlib.sha256(challenge.nonce).digest())
            first_byte, last_byte = bytearray(challenge.nonce), bytearray(challenge.nonce)
            first_byte[0] ^= 0x01
            last_byte[-1] ^= 0x01
            self.pools["bad_signature"].append((forged, challenge, state))
            self.pools["bad_nonce"].append((token, other, state))
            self.pools["counter_rollback"].append((token, challenge, ahead))
            self.pools["nonce_first_byte"].append(
                (token, dataclasses.replace(challenge, nonce=bytes(first_byte)), state)
            )
            self.pools["nonce_last_byte"].append(
                (token, dataclasses.replace(challenge, nonce=bytes(last_byte)), state)
            )
        for cls in CLASSES:  # every input fails exactly as its class says
            for evidence, challenge, prior in self.pools[cls][:8]:
                got = self.appraise_with(evidence, challenge, prior).reasons
                if got != EXPECTED[cls]:
                    raise AssertionError(f"{cls}: expected {EXPECTED[cls]}, got {got}")

    def appraise_with(self, evidence: bytes, challenge: Any, state: Any) -> Any:
        return core.appraise(
            evidence,
            challenge=challenge,
            chain=self.chain,
            state=state,
            anchors=self.anchors,
            revocations=self.revocations,
            policy=self.policy,
            now_ms=ROUND1_MS,
            cache=self.cache,
        )


@contextmanager
def _core_comparison(eq: Callable[[bytes, bytes], bool] | None) -> Iterator[None]:
    """Temporarily swap the core's byte comparison (for the controls only)."""
    if eq is None:
        yield
        return
    saved = core._eq
    core._eq = eq
    try:
        yield
    finally:
        core._eq = saved


def measure_pair(inputs: Inputs, a: str, b: str, per_class: int, seed: int = 0) -> tuple[Any, Any]:
    """Timings (ns) of ``per_class`` appraisals of each class, interleaved at random."""
    import numpy as np

    rng = np.random.default_rng(seed)
    order = rng.permutation(np.repeat(np.array([0, 1], dtype=np.int8), per_class))
    pools = (inputs.pools[a], inputs.pools[b])
    cursors = [itertools.cycle(pools[0]), itertools.cycle(pools[1])]
    times = np.empty(len(order), dtype=np.int64)
    appraise = inputs.appraise_with
    replace = dataclasses.replace
    clock = time.perf_counter_ns
    for _ in range(200):  # warm-up
        appraise(*next(cursors[0]))
        appraise(*next(cursors[1]))
    gc_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for i, cls in enumerate(order.tolist()):
            evidence, challenge, prior = next(cursors[cls])
            # Fresh copies of the varying inputs for every measurement of every class, so
            # that both classes' inputs sit equally hot in the caches (without this, where a
            # pool's objects happen to lie in memory shows up as tens of nanoseconds).
            evidence = bytes(memoryview(evidence))
            challenge = replace(challenge, nonce=bytes(memoryview(challenge.nonce)))
            start = clock()
            appraise(evidence, challenge, prior)
            times[i] = clock() - start
    finally:
        if gc_enabled:
            gc.enable()
    return times[order == 0], times[order == 1]


def welch_t(x: Any, y: Any) -> float:
    from scipy import stats

    if len(x) < 2 or len(y) < 2:
        return 0.0
    t = stats.ttest_ind(x, y, equal_var=False).statistic
    return float(t) if t == t else 0.0  # NaN (identical constant samples) reads as 0


def analyse(x: Any, y: Any) -> dict[str, Any]:
    """Welch's t on all data and on data cropped at each percentile of the pooled times."""
    import numpy as np

    pooled = np.concatenate([x, y])
    tests = {"uncropped": welch_t(x, y)}
    for p in PERCENTILES:
        cut = np.percentile(pooled, p)
        tests[f"p{p:.2f}"] = welch_t(x[x < cut], y[y < cut])
    worst = max(tests, key=lambda k: abs(tests[k]))
    return {
        "max_abs_t": abs(tests[worst]),
        "max_at": worst,
        "t": tests,
        "n": [len(x), len(y)],
        "median_ns": [float(np.median(x)), float(np.median(y))],
        "leak": abs(tests[worst]) > THRESHOLD,
    }


def run_timing(
    *,
    per_class: int = 100_000,
    control_per_class: int | None = None,
    pool: int = 20_000,
    pin: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Every failure-class pair, then the controls; see the module docstring."""
    cpu = pin_to_one_core() if pin else None
    progress(f"building {pool} inputs per class")
    inputs = Inputs(pool)
    out: dict[str, Any] = {"per_class": per_class, "threshold": THRESHOLD, "pairs": {}}
    for seed, (a, b) in enumerate(PAIRS):
        progress(f"{a} vs {b}: {per_class} measurements per class")
        x, y = measure_pair(inputs, a, b, per_class, seed)
        out["pairs"][f"{a} vs {b}"] = analyse(x, y)
    n_control = control_per_class or per_class
    out["controls"] = {}
    for name, eq in CONTROLS.items():
        progress(f"{name}: nonce_first_byte vs nonce_last_byte, {n_control} per class")
        with _core_comparison(eq):
            x, y = measure_pair(inputs, "nonce_first_byte", "nonce_last_byte", n_control, 99)
        out["controls"][name] = analyse(x, y)
    out["max_abs_t"] = max(r["max_abs_t"] for r in out["pairs"].values())
    out["no_leak_detected"] = out["max_abs_t"] < THRESHOLD
    out["control_detected"] = out["controls"]["control_leaky_loop"]["leak"]
    out["pinned_cpu"] = cpu
    return out
