"""The demo's world: one authority, one manufacturer, regional verifier nodes on loopback.

Everything is created fresh with libsodium-generated keys in a temporary folder (one SQLite file
and one delegation file per node), and every node is built by :mod:`attest.node.app` exactly as
``attest verifier serve`` builds it, only in one process.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio

from attest import files
from attest.chip.device import Chip, fabricate
from attest.durable import atomic_write
from attest.identity import Authority, Manufacturer, VerifierIdentity
from attest.keys import SigningKey
from attest.licensing.authority import delegate
from attest.licensing.messages import Budgets
from attest.licensing.verifier import LicensingSection
from attest.messages.revocation import RevocationList, Revocations
from attest.node.app import assemble
from attest.node.server import NodeSettings, VerifierNode
from attest.store.sqlite import SqliteStore
from attest.verify.policy import Policy

#: (verifier id, region, city) of the demo's nodes — DESIGN.md §8 geography
NODES: tuple[tuple[str, str, str], ...] = (
    ("verifier-kl-1", "MY", "Kuala Lumpur"),
    ("verifier-sg-1", "SG", "Singapore"),
)
#: Offline Licensing: each region's delegation quota (FLOPs) and the nodes' renewal policy.
#: Budgets are tiny next to the peaks (10^14 FLOPs = 0.1 s of an HX100) so licensed chips
#: visibly exhaust, throttle and renew within a second; SG's quota runs out during the demo.
LICENSE_QUOTA_FLOPS: dict[str, int] = {"MY": 4 * 10**15, "SG": 6 * 10**14}
LICENSE_SECTION = LicensingSection(
    enabled=True, budget_flops=10**14, validity_s=3600, renew_below=0.5
)
#: model mix of the demo fleet: (hwmodel, pod class, share of the fleet)
FLEET: tuple[tuple[str, int, float], ...] = (
    ("HX100", 8, 0.5),
    ("HX800", 64, 0.3),
    ("CX10", 1, 0.2),
)


@dataclass
class RunningNode:
    identity: VerifierIdentity
    city: str
    node: VerifierNode
    db_path: Path

    @property
    def port(self) -> int:
        assert self.node.address is not None
        return self.node.address.port


@dataclass
class World:
    authority: Authority
    manufacturer: Manufacturer
    nodes: list[RunningNode] = field(default_factory=list)
    revocations: Revocations = field(default_factory=Revocations)
    #: chips the authority has revoked (fabricated before the nodes start)
    revoked_chips: list[Chip] = field(default_factory=list)
    #: the demo's folder (node databases ...), and where a section may draw its map (None: not)
    workdir: Path | None = None
    map_path: Path | None = None

    def fabricate(
        self,
        hwmodel: str,
        pod_class: int,
        chip_class: type[Chip] = Chip,
        parts: dict[str, Any] | None = None,
    ) -> Chip:
        now = time.time()
        chip = fabricate(
            self.manufacturer,
            self.authority.anchors,
            hwmodel=hwmodel,
            pod_class=pod_class,
            now_s=int(now),
            chip_class=chip_class,
            parts=parts,
        )
        chip.boot(now)
        return chip


def create_world() -> World:
    now = int(time.time())
    authority = Authority("authority.compute-south.example", SigningKey.generate())
    mkey = SigningKey.generate()
    manufacturer = Manufacturer(
        "vendor-a", mkey, authority.certify_manufacturer("vendor-a", mkey.public_key, now_s=now)
    )
    return World(authority, manufacturer)


def revoke(world: World, chips: list[Chip]) -> None:
    """The authority publishes revocation list N+1; nodes started afterwards enforce it."""
    world.revoked_chips.extend(chips)
    token = world.authority.revocation_list(
        world.revocations.number + 1,
        now_s=int(time.time()),
        devices=[c.ueid for c in world.revoked_chips],
    )
    world.revocations = Revocations.from_list(
        RevocationList.verify(token, world.authority.key.public_key)
    )


@asynccontextmanager
async def running_nodes(world: World, workdir: Path) -> AsyncIterator[list[RunningNode]]:
    """Start every node of ``NODES`` on loopback; drain and close them on exit."""
    now = int(time.time())
    async with trio.open_nursery() as nursery:
        for verifier_id, region, city in NODES:
            key = SigningKey.generate()
            cert = world.authority.certify_verifier(verifier_id, region, key.public_key, now_s=now)
            identity = VerifierIdentity(verifier_id, region, key, cert)
            # beside the store, for `attest audit verify --verifier-cert` on a kept folder
            files.write_bytes(workdir / f"{verifier_id}.cert", cert)
            db_path = workdir / f"{verifier_id}.db"
            store = SqliteStore(db_path, verifier_id=verifier_id, signing_key=key, group_sync=True)
            # Offline Licensing: the authority delegates a regional quota to the node
            delegation = workdir / f"{verifier_id}.delegation.cose"
            atomic_write(
                delegation,
                delegate(
                    world.authority,
                    delegation_id=len(world.nodes) + 1,
                    verifier_id=verifier_id,
                    public_key=key.public_key,
                    region=region,
                    quota=Budgets(LICENSE_QUOTA_FLOPS[region]),
                    now_s=now,
                ),
            )
            built = assemble(
                identity=identity,
                anchors=world.authority.anchors,
                store=store,
                policy=Policy(),
                revocations=world.revocations,
                sections={"licensing": replace(LICENSE_SECTION, delegation_file=str(delegation))},
            )
            settings = NodeSettings(port=0, http_port=-1, group_sync=True)
            node = VerifierNode(built.service, settings, built.metrics)
            await nursery.start(node.run)
            world.nodes.append(RunningNode(identity, city, node, db_path))
        try:
            yield world.nodes
        finally:
            for running in world.nodes:
                running.node.shutdown()
