"""The federation part of a verifier node: routes partner chains by the agreement in force.

Configured by the node's ``[federation]`` section; built by :func:`build` (attest/node/app.py
calls it through the registry). The part is a :class:`~attest.mechanism.ChainPart`: the node
asks it, before each appraisal, which anchors judge the chip's chain. It adds no Evidence
claims, keeps no per-chip tables and never grants.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from attest.errors import ConfigError
from attest.federation.committee import Committee, open_committee
from attest.federation.route import Federation
from attest.federation.sign import FederationError
from attest.federation.state import load_federation
from attest.mechanism import ChainPart, ChainRoute, Conclusion, Findings, NodeContext
from attest.messages.revocation import Revocations
from attest.store.base import Step
from attest.verify.chain import DeviceChain
from attest.verify.core import Appraisal, Verdict


@dataclass(frozen=True)
class FederationSection:
    """Federation: appraise partner authorities' chips under a signed agreement."""

    #: take part in a federation at all
    enabled: bool = False
    #: the federation agreement (COSE_Sign signed by its members' officers)
    agreement_file: str = "agreement.cose"
    #: this node's authority as a committee descriptor (empty: the single-key authority of
    #: the trust anchors, the 1-of-1 committee); when given, its officers (k of n) also judge
    #: the chains of this authority's own chips
    committee_file: str = ""
    #: comma-separated partner committee rotations to take (each COSE_Sign by the current one)
    rotation_files: str = ""
    #: the durable record of the agreement and committees in force (anti-rollback)
    state_file: str = "federation-state.json"


def check_section(section: FederationSection) -> None:
    """Nothing to check beyond types unless enabled (files are read by :func:`build`)."""
    if section.enabled and not section.agreement_file:
        raise ConfigError("federation.agreement_file is required when federation is enabled")


class FederationVerifier(ChainPart):
    """Routes chains by a :class:`~attest.federation.route.Federation` (see the module doc)."""

    def __init__(self, federation: Federation) -> None:
        self.federation = federation

    def route(self, chain: DeviceChain, *, now_ms: int) -> ChainRoute | None:
        return self.federation.route(chain, now_s=now_ms // 1000)

    # -- VerifierPart: nothing per chip ----------------------------------------------------

    def load(self, ueid: bytes) -> None:
        return None

    def appraise(
        self, view: None, core: Appraisal, *, revocations: Revocations, now_ms: int
    ) -> Findings[None]:
        return Findings()

    def steps(self, findings: Findings[None], verdict: Verdict) -> Sequence[Step]:
        return ()

    def conclude(self, findings: Findings[None], verdict: Verdict, *, now_ms: int) -> Conclusion:
        return Conclusion()


def _read(ctx: NodeContext, name: str, what: str) -> bytes:
    path = ctx.resolve(name)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from None


def build(ctx: NodeContext) -> FederationVerifier | None:
    """The node's federation part if ``[federation] enabled`` (its documents taken durably)."""
    section: FederationSection = ctx.section
    if not section.enabled:
        return None
    home = Committee.single(ctx.anchors.authority_id, ctx.anchors.authority_key)
    if section.committee_file:
        try:
            home = open_committee(_read(ctx, section.committee_file, "committee descriptor"))
        except FederationError as exc:
            raise ConfigError(f"federation.committee_file: {exc}") from None
        if home.authority_id != ctx.anchors.authority_id:
            raise ConfigError("federation.committee_file is another authority's committee")
    rotations = [
        _read(ctx, name.strip(), "committee rotation")
        for name in section.rotation_files.split(",")
        if name.strip()
    ]
    loaded = load_federation(
        home=home,
        state_path=ctx.resolve(section.state_file),
        agreement_token=_read(ctx, section.agreement_file, "federation agreement"),
        rotations=rotations,
        now_s=int(time.time()),
        judge_home=bool(section.committee_file),
    )
    return FederationVerifier(loaded.federation)
