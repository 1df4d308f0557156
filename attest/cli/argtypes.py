"""Argument types shared by the ``attest`` subcommands: one place for what a valid value is.

Each raises :class:`argparse.ArgumentTypeError`, so argparse reports the option, the value and
the reason and exits with status 2.
"""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

from attest.verify.policy import parse_version
from attest.verify.reasons import Tier

_U64 = 1 << 64


def non_negative_int(text: str) -> int:
    """0..2^64-1, written as an integer or in exact scientific notation (``1e18``)."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    value = int(number)
    if not 0 <= value < _U64:
        raise argparse.ArgumentTypeError("must be 0..2^64-1")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number >= 0")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def share(text: str) -> float:
    """A fraction of peak performance, 0..1."""
    value = non_negative_float(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def version(text: str) -> tuple[int, ...]:
    """A dotted firmware version such as ``1.2.0``."""
    try:
        return parse_version(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def identifier(text: str) -> str:
    """Identifiers end up in signed certificates: no empty or padded ones."""
    if not text or text != text.strip():
        raise argparse.ArgumentTypeError("must be non-empty, without surrounding spaces")
    return text


def hex_bytes(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hexadecimal") from None


def ueid(text: str) -> bytes:
    """A RAND-type UEID in hex: 0x01 and 16, 24 or 32 random bytes (SPEC §3.2)."""
    value = hex_bytes(text)
    if len(value) not in (17, 25, 33) or value[0] != 0x01:
        raise argparse.ArgumentTypeError("a UEID is 01 followed by 16, 24 or 32 bytes, in hex")
    return value


def digest(text: str) -> bytes:
    """A SHA-256 digest in hex."""
    value = hex_bytes(text)
    if len(value) != 32:
        raise argparse.ArgumentTypeError("must be 64 hex digits (a SHA-256 digest)")
    return value


def tier_name(value: int) -> str:
    """The name of a tier, or the number if this build does not know it."""
    try:
        return Tier(value).name
    except ValueError:
        return str(value)
