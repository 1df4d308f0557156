"""Quota arithmetic, shared by the store's issuing transaction and the published vectors.

A quota (a delegation's, or a region's cap) limits, per meter, the total budget ever granted
under it. ``None`` as a limit means that meter is not limited; ``None`` as a budget means the
license does not limit the chip's use of that meter — so a license that leaves a *limited*
meter unbudgeted would let the chip use it without bound and is refused like an overrun.
"""

from __future__ import annotations

METER_NAMES = ("flops", "energy_mj", "interconnect_bytes")
_U64 = 1 << 64


def exceeded_meter(
    issued: tuple[int, int, int],
    budgets: tuple[int | None, int | None, int | None],
    limits: tuple[int | None, int | None, int | None],
) -> str | None:
    """The first meter the budget would take past its limit (or leave unbounded), else None."""
    for name, i, b, q in zip(METER_NAMES, issued, budgets, limits, strict=True):
        if q is not None and (b is None or i + b > q):
            return name
        if i + (b or 0) >= _U64:
            return name
    return None


def charged(
    issued: tuple[int, int, int], budgets: tuple[int | None, int | None, int | None]
) -> tuple[int, int, int]:
    """Issued totals after granting ``budgets``."""
    f, e, x = (i + (b or 0) for i, b in zip(issued, budgets, strict=True))
    return (f, e, x)
