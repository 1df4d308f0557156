"""The published audit checkpoint: the newest signed head, in a file outside the database.

Checkpoints inside the store cannot reveal that the store itself lost its newest commits: if a
crash is followed by the loss of SQLite's write-ahead log (deleted by hand, left behind by a
copy, a restored backup), the database silently goes back in time together with its
checkpoints, and the hash chain of what remains is intact. So the node also writes its newest
signed checkpoint to a file *beside* the store (by default ``<store>.checkpoint``), replacing
it atomically (attest.durable.atomic_write) each time it publishes. ``attest audit verify``
compares the store with that file: a log that ends before the published ``seq``, or differs
from the published head, has lost or changed entries. Copying the file off the machine (to the
authority, a relying party, another disk) extends the same check to an attacker who can
replace both.

Only durable entries are published: the store reads the head, makes its commits durable, and
only then signs and writes that head (see ``SqliteStore.publish_checkpoint``), so a crash can
never leave a file that names entries the store does not have.

The file holds the checkpoint's COSE_Sign1 token, nothing else (SPEC §6.9, §11.6).
"""

from __future__ import annotations

import os
from pathlib import Path

from attest.codec.cbor import decode
from attest.codec.cose import parse_sign1
from attest.durable import atomic_write
from attest.errors import AttestError
from attest.messages import claims as C

SUFFIX = ".checkpoint"


def checkpoint_file_for(store_path: str | os.PathLike[str]) -> Path:
    """The default checkpoint file of a store: ``<store path>.checkpoint``."""
    return Path(os.fspath(store_path) + SUFFIX)


def read_token(path: Path) -> bytes | None:
    """The published token, or None if there is no file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def unverified_seq(token: bytes) -> int | None:
    """The ``seq`` a token claims, without checking its signature (None if unreadable).

    Used only to keep the file from going backwards when several processes publish; an
    auditor checks the signature (attest.store.audit.verify_chain).
    """
    try:
        claims = decode(parse_sign1(token).payload)
    except AttestError:
        return None
    seq = claims.get(C.HEM_AUDIT_SEQ) if type(claims) is dict else None
    return seq if type(seq) is int else None


def publish(path: Path, token: bytes, seq: int) -> bool:
    """Replace the file with ``token`` (for ``seq``) unless it already names ``seq`` or later.

    Worker processes sharing one store all publish; the check keeps a slower one from putting
    an older head back (a race between two of them can still do so until the next publication,
    which only weakens the check for that moment: the file never names entries that are not
    durable). Returns whether the file was written.
    """
    current = read_token(path)
    if current is not None:
        published = unverified_seq(current)
        if published is not None and published >= seq:
            return False
    atomic_write(path, token, mode=0o644)
    return True
