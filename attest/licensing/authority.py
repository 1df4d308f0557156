"""Signing delegations and licenses: the authority's (and a delegated node's) issuing acts.

Thin constructors over the message types, so the CLI, the node, the demo and the vectors all
build these tokens the same way.
"""

from __future__ import annotations

from attest.identity import YEAR_S, Authority
from attest.keys import PublicKey, SigningKey
from attest.licensing.messages import Budgets, Delegation, License

#: default delegation lifetime: short, because chips learn of revocations only by hand
DEFAULT_DELEGATION_VALIDITY_S = YEAR_S // 4


def delegate(
    authority: Authority,
    *,
    delegation_id: int,
    verifier_id: str,
    public_key: PublicKey,
    region: str,
    quota: Budgets,
    now_s: int,
    validity_s: int = DEFAULT_DELEGATION_VALIDITY_S,
) -> bytes:
    """The authority lets ``verifier_id`` (bound to ``public_key``) license chips in ``region``."""
    return Delegation(
        issuer=authority.authority_id,
        verifier_id=verifier_id,
        issued_at=now_s,
        expires_at=now_s + validity_s,
        public_key=public_key,
        region=region,
        delegation_id=delegation_id,
        quota=quota,
    ).sign(authority.key)


def sign_license(
    key: SigningKey,
    *,
    issuer: str,
    ueid: bytes,
    serial: int,
    budgets: Budgets,
    expiry_s: int,
    now_s: int,
    min_firmware: tuple[int, ...] = (1, 1, 0),
    nonce: bytes | None = None,
    delegation_id: int | None = None,
) -> bytes:
    """A license token. ``key`` is the authority's (``issuer`` = authority id, no delegation) or
    a delegated verifier's (``issuer`` = its verifier id, ``delegation_id`` = its delegation)."""
    return License(
        issuer=issuer,
        issued_at=now_s,
        ueid=ueid,
        min_firmware=min_firmware,
        serial=serial,
        budgets=budgets,
        expiry_s=expiry_s,
        nonce=nonce,
        delegation_id=delegation_id,
    ).sign(key)
