"""Group commit: stores that defer fsync, the daemon's shared fsync, bulk writes in one
transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from attest.errors import StoreError
from attest.keys import PublicKey
from attest.node.groupsync import GroupSync
from attest.store.base import ChipRecord
from attest.store.sqlite import SqliteStore
from attest.verify.state import ChipState


def _record(i: int) -> ChipRecord:
    ueid = b"\x01" + i.to_bytes(16, "big")
    state = ChipState.enrolled(ueid, PublicKey(bytes([i % 250 + 1]) * 32), "HX100")
    return ChipRecord(b"device-cert-%d" % i, b"mfr-cert", state)


def _synchronous(path: Path) -> int:
    with SqliteStore(path, verifier_id="v") as store:
        assert store.db._conn is not None
        return int(store.db._conn.execute("PRAGMA synchronous").fetchone()[0])


def test_group_sync_store_commits_without_fsync_and_syncs_on_demand(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db", verifier_id="v", group_sync=True)
    assert store.db._conn is not None
    assert store.db._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert store.enroll(_record(1))
    store.sync()  # fsyncs the WAL
    assert store.db._wal_fd is not None
    store.close()
    assert _synchronous(tmp_path / "g.db") == 2  # a plain store still syncs in COMMIT (FULL)
    with SqliteStore(tmp_path / "g.db", verifier_id="v") as again:
        assert again.count_chips() == 1


def test_sync_is_a_no_op_for_plain_stores(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "p.db", verifier_id="v") as store:
        store.sync()
        assert store.db._wal_fd is None


def test_group_commit_is_one_transaction_with_per_write_atomicity(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    with SqliteStore(path, verifier_id="v") as store:
        with store.group_commit():
            assert store.enroll(_record(1))
            other = sqlite3.connect(path)
            assert other.execute("SELECT count(*) FROM chips").fetchone()[0] == 0  # not yet
            clash = _record(1)
            clash = ChipRecord(
                clash.device_cert,
                clash.manufacturer_cert,
                ChipState.enrolled(clash.state.ueid, PublicKey(b"\x09" * 32), "HX100"),
            )
            with pytest.raises(StoreError):
                store.enroll(clash)  # rolled back to its savepoint; the batch goes on
            assert store.enroll(_record(2))
        assert other.execute("SELECT count(*) FROM chips").fetchone()[0] == 2
        other.close()
        with pytest.raises(RuntimeError), store.group_commit():
            store.enroll(_record(3))
            raise RuntimeError("abandon the batch")
        assert store.count_chips() == 2


async def test_group_sync_shares_one_fsync_among_waiters() -> None:
    calls = []

    def sync() -> None:
        calls.append(1)

    async with trio.open_nursery() as nursery:
        group = GroupSync(sync, nursery.start_soon)
        async with trio.open_nursery() as waiters:
            for _ in range(20):
                waiters.start_soon(group.durable)
    assert group.covered == 20
    assert 1 <= len(calls) == group.rounds < 20


async def test_group_sync_failure_reaches_every_waiter_and_stops_the_node() -> None:
    def sync() -> None:
        raise OSError(5, "I/O error")

    errors: list[BaseException] = []

    async def wait(group: GroupSync) -> None:
        try:
            await group.durable()
        except StoreError as exc:
            errors.append(exc)

    with pytest.raises(BaseExceptionGroup) as info:
        async with trio.open_nursery() as nursery:
            group = GroupSync(sync, nursery.start_soon)
            for _ in range(3):
                nursery.start_soon(wait, group)
    assert len(errors) == 3
    assert info.group_contains(StoreError)
    with pytest.raises(StoreError):
        await group.durable()  # and every later caller
