"""Column encodings and schema scripts shared by the SQLite tables.

uint64 counters and amounts are stored as 8-byte big-endian BLOBs: exact over the whole uint64
range, and SQLite compares BLOBs bytewise, so ordering stays numeric. Times and tiers fit a
signed 64-bit INTEGER.
"""

from __future__ import annotations

import sqlite3

from attest.errors import StoreError

_U64 = 1 << 64
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1


def u64_to_blob(v: int) -> bytes:
    """A uint64 as the 8-byte big-endian BLOB the chips table stores."""
    if type(v) is not int or not 0 <= v < _U64:
        raise StoreError(f"{v!r} is not a uint64")
    return v.to_bytes(8, "big")


def blob_to_u64(b: bytes) -> int:
    if type(b) is not bytes or len(b) != 8:
        raise StoreError("corrupt uint64 column")
    return int.from_bytes(b, "big")


def i64(v: int, name: str) -> int:
    if type(v) is not int or not _I64_MIN <= v <= _I64_MAX:
        raise StoreError(f"{name} = {v!r} does not fit a signed 64-bit column")
    return v


def split_sql(script: str) -> list[str]:
    """Split SCHEMA into statements (``sqlite3.complete_statement`` handles trigger bodies)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError("incomplete SQL statement in schema")
    return out
