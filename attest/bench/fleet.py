"""A throwaway world for the daemon benchmarks: authority, manufacturer, verifier and chips.

The authority, manufacturer and verifier folders are made by the same library functions as the
``attest authority`` commands (attest.node.provision), so the daemon under test starts from the
same files an operator would use. Chips are
lighter than :class:`attest.chip.device.Chip`: the load generator is a separate process and must
make thousands of sessions per second, so chip keys are derived from a per-run random seed
(written, with the device certificates, to a 0600 "fleet file" that only the load generator
reads) instead of each living in its own state folder.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nacl.bindings import crypto_sign_seed_keypair

from attest import files
from attest.codec.cbor import decode, encode
from attest.durable import atomic_write
from attest.keys import PublicKey
from attest.node import provision
from attest.store.base import ChipRecord
from attest.store.sqlite import SqliteStore
from attest.verify.state import ChipState

HWMODEL = "HX100"
POD_CLASS = 8
FIRMWARE = (1, 2, 0)
VERIFIER_ID = "bench-verifier"


@dataclass(frozen=True, slots=True)
class BenchWorld:
    """The folders of one benchmark run."""

    root: Path
    authority: Path
    manufacturer: Path
    verifier: Path

    @property
    def config(self) -> Path:
        return self.verifier / files.VERIFIER_CONFIG_FILE

    @property
    def db(self) -> Path:
        return self.verifier / files.VERIFIER_DB_FILE

    @property
    def fleet_file(self) -> Path:
        return self.root / "fleet.cbor"


def make_world(root: Path) -> BenchWorld:
    """Authority, manufacturer and verifier folders, as ``attest authority ...`` makes them."""
    world = BenchWorld(root, root / "authority", root / "manufacturer", root / "verifier")
    authority = provision.create_authority(world.authority, "bench-authority")
    provision.certify_manufacturer_folder(authority, world.manufacturer, "bench-mfr")
    provision.certify_verifier_folder(authority, world.verifier, VERIFIER_ID, "BENCH")
    return world


def chip_keypair(seed: bytes, index: int) -> tuple[bytes, bytes]:
    """(public key, libsodium secret key) of chip ``index`` of a fleet."""
    return crypto_sign_seed_keypair(hashlib.sha256(seed + index.to_bytes(8, "big")).digest())


def chip_ueid(seed: bytes, index: int) -> bytes:
    return b"\x01" + hashlib.sha256(b"ueid" + seed + index.to_bytes(8, "big")).digest()[:16]


@dataclass(frozen=True, slots=True)
class Fleet:
    """What the load generator needs: the key seed and every chip's certificates."""

    seed: bytes
    manufacturer_cert: bytes
    chips: tuple[tuple[bytes, bytes], ...]  # (ueid, device certificate)

    def write(self, path: Path) -> None:
        data = {
            "seed": self.seed,
            "manufacturer_cert": self.manufacturer_cert,
            "chips": [list(c) for c in self.chips],
        }
        atomic_write(path, encode(data), mode=0o600)

    @classmethod
    def read(cls, path: Path) -> Fleet:
        raw = decode(path.read_bytes(), max_bytes=1 << 30)
        return cls(raw["seed"], raw["manufacturer_cert"], tuple(tuple(c) for c in raw["chips"]))


def make_fleet(world: BenchWorld, count: int) -> Fleet:
    """``count`` chips endorsed by the world's manufacturer (keys derived from a fresh seed)."""
    manufacturer, _ = files.load_manufacturer(world.manufacturer)
    seed = os.urandom(32)
    now_s = int(time.time())
    chips = []
    for i in range(count):
        pk, _ = chip_keypair(seed, i)
        ueid = chip_ueid(seed, i)
        cert = manufacturer.endorse(
            PublicKey(pk), ueid=ueid, hwmodel=HWMODEL, pod_class=POD_CLASS, now_s=now_s
        )
        chips.append((ueid, cert))
    return Fleet(seed, manufacturer.cert, tuple(chips))


def register(world: BenchWorld, fleet: Fleet, count: int) -> int:
    """Enrol the first ``count`` chips of ``fleet`` in the verifier's store (as an operator
    would with ``attest verifier enroll``); returns the number of chips in the store."""
    identity_key = files.read_key(world.verifier / files.VERIFIER_KEY_FILE, "verifier key")
    with SqliteStore(world.db, verifier_id=VERIFIER_ID, signing_key=identity_key) as store:
        records = []
        for i, (ueid, cert) in enumerate(fleet.chips[:count]):
            pk, _ = chip_keypair(fleet.seed, i)
            state = ChipState.enrolled(ueid, PublicKey(pk), HWMODEL)
            records.append(ChipRecord(cert, fleet.manufacturer_cert, state))
        with store.group_commit():  # one transaction, not one fsync per chip
            for record in records:
                store.enroll(record)
        return store.count_chips()
