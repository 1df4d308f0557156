"""Shared fixtures, built on the deterministic world of the published vectors.

Tests get the same authority, manufacturers, verifiers and chips as ``vectors/`` (see
attest/testvectors/world.py), so a failing test and a failing vector talk about the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from attest.chip.adversary import CompromisedChip
from attest.messages.attestation import Challenge, Evidence
from attest.messages.revocation import Revocations
from attest.testvectors.world import (
    ROUND1_MS,
    ROUND1_S,
    ROUND1_SIGN_S,
    ROUND2_S,
    World,
    build_world,
)
from attest.verify.chain import DeviceChain
from attest.verify.core import Appraisal, appraise
from attest.verify.policy import Policy
from attest.verify.state import ChipState

#: the Evidence claims of the core (every other claim belongs to a mechanism)
_CORE_CLAIMS = frozenset(f.name for f in Evidence.FIELDS) | {
    "firmware_version",
    "firmware_measurement",
}


@dataclass
class Bench:
    """One fresh chip facing verifier kl-1, with every appraisal input defaulted.

    A test overrides only the input it is about; everything else is the honest default, so the
    verdict differs from affirming only because of that input.
    """

    world: World
    chip: CompromisedChip
    verifier: str = "kl-1"

    @property
    def chain(self) -> DeviceChain:
        return self.chip.chain

    def challenge(self, label: str = "round1", *, issued_at: int = ROUND1_S) -> Challenge:
        """A challenge from the verifier, checked and accepted by the chip."""
        _, token = self.world.challenge(
            f"{self.chip.ueid.hex()}/{label}", verifier=self.verifier, issued_at=issued_at
        )
        cert = self.world.verifiers[self.verifier].cert
        return self.chip.accept_challenge(cert, token, issued_at)

    def answer(self, challenge: Challenge, at_s: int = ROUND1_SIGN_S) -> bytes:
        return self.chip.answer(challenge, at_s)

    def forge(self, challenge: Challenge, at_s: int = ROUND1_SIGN_S, **changes: Any) -> bytes:
        """Honest claims (counter advanced) with ``changes``, signed with the chip's real key.

        ``changes`` may name core claims and mechanism claims (``license_state``, ``pod_id``,
        ``links`` ...; None removes one) alike.
        """
        self.chip.attest_counter += 1
        core = {k: v for k, v in changes.items() if k in _CORE_CLAIMS}
        mechanism = {k: v for k, v in changes.items() if k not in _CORE_CLAIMS}
        claims = self.chip.current_evidence(challenge, at_s).replaced(**core)
        if mechanism:
            claims = claims.with_claims(**mechanism)
        return self.chip.sign_arbitrary_evidence(claims)

    def appraise(
        self,
        evidence: bytes,
        challenge: Challenge,
        *,
        state: ChipState | None = None,
        chain: DeviceChain | None = None,
        revocations: Revocations | None = None,
        policy: Policy | None = None,
        now_ms: int = ROUND1_MS,
    ) -> Appraisal:
        """The verification core's appraisal (its verdict and the state it accepted)."""
        return appraise(
            evidence,
            challenge=challenge,
            chain=chain or self.chain,
            state=state,
            anchors=self.world.anchors,
            revocations=revocations or Revocations(),
            policy=policy or Policy(),
            now_ms=now_ms,
        )

    def accepted_round(self) -> tuple[Challenge, bytes, ChipState]:
        """An honest first round the core accepts: (challenge, evidence, new state)."""
        self.chip.run_workload(1800, 0.5)
        ch = self.challenge()
        ev = self.answer(ch)
        verdict = self.appraise(ev, ch)
        assert verdict.new_state is not None, verdict
        return ch, ev, verdict.new_state

    def next_round(self) -> tuple[ChipState, Challenge]:
        """After an accepted round and a minute of work: (stored state, next challenge).

        Sign the answer at ``world.ROUND2_SIGN_S`` and appraise it at ``world.ROUND2_MS``.
        """
        _, _, state = self.accepted_round()
        self.chip.run_workload(60, 0.5)
        return state, self.challenge("round2", issued_at=ROUND2_S)


@pytest.fixture(scope="session")
def world() -> World:
    return build_world()


@pytest.fixture
def make_bench(world: World) -> Callable[..., Bench]:
    """Factory: ``make_bench("hx800-a")`` is a bench around a freshly fabricated chip."""

    def make(chip: str = "hx100-a") -> Bench:
        return Bench(world, world.chip(chip))

    return make


@pytest.fixture
def bench(make_bench: Callable[..., Bench]) -> Bench:
    return make_bench()


# -- PostgreSQL: one throwaway server per test session, a fresh database per test -------------

_PG_SKIP = (
    "PostgreSQL not available here ({why}); install the test extra (pip install -e "
    "'.[test]' brings pgserver) or Debian's postgresql package. In CI (CI set) this fails."
)


@pytest.fixture(scope="session")
def pg_cluster() -> Any:
    """A real PostgreSQL server on a loopback port (attest/bench/pgcluster.py).

    A test that needs it and cannot have it is skipped with a clear message, except in CI
    (the ``CI`` environment variable set, as ``.ci/run`` does), where it fails.
    """
    import os

    try:
        import psycopg  # noqa: F401 - the client the store uses: without it nothing can connect

        from attest.bench.pgcluster import Cluster

        cluster = Cluster()
        cluster.start()
    except Exception as exc:  # no binaries, no psycopg, cannot start
        message = _PG_SKIP.format(why=f"{type(exc).__name__}: {exc}")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield cluster
    cluster.close()


@pytest.fixture
def pg_url(pg_cluster: Any, request: pytest.FixtureRequest) -> str:
    """The URL of a new, empty database on the session's server."""
    import re
    import secrets

    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    url: str = pg_cluster.create_database(f"t_{name}_{secrets.token_hex(3)}")
    return url
