"""Geometry on the real Earth: WGS84 geodesics, distance bounds as disks, licensed regions.

Every quantity here is rounded in the direction that keeps a location bound *sound* — a
feasible region computed here always contains the chip's true position (SPEC §15.4):

* **Light to surface.** A record's bound ``v`` limits the straight-line (3D) distance between
  landmark and chip. The chip is on the surface (or above it, which is only farther), so it
  lies in the geodesic disk of radius :func:`surface_radius_m` ``(v)`` =
  ``ceil(2 R asin(v / 2R)) + 1`` m with ``R`` = 6 335 000 m, at most the least radius of
  curvature of WGS84 (``b²/a`` = 6 335 439 m, times the cosine of the largest angle between the
  normal and the radius, 0.19°): by Schur's comparison theorem no plane section of the
  ellipsoid between two points ``v`` apart is longer than that circular arc, and the geodesic is
  no longer than any path. Beyond ``v`` = 12 000 km the bound no longer follows and the disk is
  the whole Earth.
* **Distances** are WGS84 geodesics from geographiclib (accurate to nanometres); every use adds
  :data:`SLACK_M` (1 m) on the safe side, which also covers positions rounded to microdegrees.
  Two cheap bounds bracket a geodesic ``s`` and let most decisions skip geographiclib:
  ``max(chord, b·θ) ≤ s ≤ 2R asin(chord / 2R)`` (θ the angle at the centre, b the semi-minor
  axis: no point of the surface is nearer the centre; the upper bound is the same theorem).
* **Cells.** Regions are decided on a quadtree of latitude/longitude cells. Every point of a
  cell is within :func:`cell_reach_m` of its centre along a meridian then a parallel, using the
  largest radii of curvature (6 399 594 m): an upper bound of the geodesic (and the chord).
* **Licensed regions** are GeoJSON polygons whose edges are straight in longitude/latitude
  (RFC 7946 §3.1.1); containment is decided exactly in that plane.

A cell is dropped from a feasible region only if *some* disk provably excludes all of it; a
region is proven to contain (or miss) the feasible region only if *every* surviving cell is
inside (or outside) it. Undecided cells (the budget or the smallest size reached) leave the
answer undecided, never wrong.
"""

from __future__ import annotations

import enum
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from geographiclib.geodesic import Geodesic

from attest.errors import ConfigError

_WGS84 = Geodesic.WGS84
A_M = 6_378_137.0
F = 1 / 298.257223563
E2 = F * (2 - F)
#: the largest radius of curvature of WGS84 (meridional and prime vertical, at the poles), up
M_MAX_M = 6_399_594.0
#: the least meridional radius of curvature (b²/a, at the equator), down
M_MIN_M = 6_335_439.0
#: the comparison radius of the Schur bound (see the module doc), down
SCHUR_R_M = 6_335_000.0
#: the semi-minor axis: no point of the surface is nearer the centre (6 356 752.3 m), down
POLAR_B_M = 6_356_752.0
#: straight-line bounds at or beyond this give no surface bound (the whole Earth)
MAX_CHORD_M = 12_000_000
#: the longest geodesic on WGS84 (half a meridian, 20 003 931.46 m), up
MAX_GEODESIC_M = 20_003_932
#: added on the safe side wherever a floating-point distance decides something
SLACK_M = 1.0
#: cells smaller than this are not split further (their question stays undecided)
MIN_CELL_M = 20.0
#: most cells one decision may examine
CELL_BUDGET = 4000


@dataclass(frozen=True, slots=True)
class Place:
    """A point on WGS84: latitude and longitude in degrees."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"no such place: latitude {self.lat}, longitude {self.lon}")

    @classmethod
    def of_microdegrees(cls, position: tuple[int, int]) -> Place:
        return cls(position[0] / 1e6, position[1] / 1e6)

    def microdegrees(self) -> tuple[int, int]:
        return (round(self.lat * 1e6), round(self.lon * 1e6))

    def __str__(self) -> str:
        ns = "N" if self.lat >= 0 else "S"
        ew = "E" if self.lon >= 0 else "W"
        return f"{abs(self.lat):.3f} {ns}, {abs(self.lon):.3f} {ew}"


def geodesic_m(a: Place, b: Place) -> float:
    """The WGS84 geodesic distance in metres (geographiclib)."""
    s: float = _WGS84.Inverse(a.lat, a.lon, b.lat, b.lon, Geodesic.DISTANCE)["s12"]
    return s


def destination(origin: Place, azimuth_deg: float, distance_m: float) -> Place:
    """The point ``distance_m`` along the geodesic leaving ``origin`` at ``azimuth_deg``."""
    r = _WGS84.Direct(origin.lat, origin.lon, azimuth_deg, distance_m)
    lon = (r["lon2"] + 180.0) % 360.0 - 180.0
    return Place(max(-90.0, min(90.0, r["lat2"])), lon)


def ecef(p: Place) -> tuple[float, float, float]:
    """Earth-centred coordinates (metres) of a point on the WGS84 surface."""
    phi, lam = math.radians(p.lat), math.radians(p.lon)
    s = math.sin(phi)
    n = A_M / math.sqrt(1 - E2 * s * s)
    return (n * math.cos(phi) * math.cos(lam), n * math.cos(phi) * math.sin(lam), n * (1 - E2) * s)


def chord_m(a: Place, b: Place) -> float:
    """The straight-line distance through the Earth (a lower bound of the geodesic)."""
    return math.dist(ecef(a), ecef(b))


def geodesic_lower_m(a: Place, b: Place) -> float:
    """A lower bound of the geodesic: the larger of the chord and b·θ, with θ the angle the
    two points make at the centre — a path that stays at least b from the centre and turns
    through θ is at least b·θ long."""
    pa, pb = ecef(a), ecef(b)
    cross = math.dist(
        (0.0, 0.0, 0.0),
        (
            pa[1] * pb[2] - pa[2] * pb[1],
            pa[2] * pb[0] - pa[0] * pb[2],
            pa[0] * pb[1] - pa[1] * pb[0],
        ),
    )
    dot = pa[0] * pb[0] + pa[1] * pb[1] + pa[2] * pb[2]
    return max(math.dist(pa, pb), POLAR_B_M * math.atan2(cross, dot))


def arc_upper_m(chord: float) -> float:
    """An upper bound of the geodesic between two points ``chord`` apart (module doc)."""
    if chord >= MAX_CHORD_M:
        return float(MAX_GEODESIC_M)
    return 2 * SCHUR_R_M * math.asin(chord / (2 * SCHUR_R_M))


def surface_radius_m(vacuum_m: int) -> int | None:
    """The geodesic radius around a landmark that holds every chip within ``vacuum_m`` of it in
    a straight line, rounded up; None when no such bound follows (the whole Earth)."""
    if vacuum_m >= MAX_CHORD_M:
        return None
    return math.ceil(arc_upper_m(float(vacuum_m))) + int(SLACK_M)


@dataclass(frozen=True, slots=True)
class Disk:
    """Every point within ``radius_m`` (geodesic) of ``center``: where a chip can be."""

    center: Place
    radius_m: float
    #: a name for pictures and alerts (the landmark, the record)
    label: str = ""

    def contains(self, p: Place) -> bool:
        """Whether ``p`` is in the disk (a plain geodesic test, for display and tests)."""
        return geodesic_m(self.center, p) <= self.radius_m

    def grown(self, by_m: float) -> Disk:
        return Disk(self.center, self.radius_m + by_m, self.label)

    def bbox(self) -> tuple[float, float, float, float]:
        """A latitude/longitude box holding the disk: (lat0, lat1, lon0, lon1), degrees."""
        dlat = math.degrees(self.radius_m / M_MIN_M)
        lat0, lat1 = self.center.lat - dlat, self.center.lat + dlat
        far = max(abs(lat0), abs(lat1))
        lat0, lat1 = max(-90.0, lat0), min(90.0, lat1)
        if far >= 89.0:
            return (lat0, lat1, -180.0, 180.0)
        dlon = math.degrees(self.radius_m / (A_M * math.cos(math.radians(far))))
        lon0, lon1 = self.center.lon - dlon, self.center.lon + dlon
        if dlon >= 180.0 or lon0 < -180.0 or lon1 > 180.0:
            return (lat0, lat1, -180.0, 180.0)  # wraps the antimeridian: take every longitude
        return (lat0, lat1, lon0, lon1)


def separation_m(a: Disk, b: Disk) -> float:
    """A lower bound of the geodesic distance between any point of ``a`` and any point of
    ``b`` (0 when they may overlap)."""
    return max(0.0, geodesic_m(a.center, b.center) - a.radius_m - b.radius_m - SLACK_M)


# -- licensed regions ---------------------------------------------------------------------------
Segment = tuple[float, float, float, float]  # x0 (lon), y0 (lat), x1, y1


class Side(enum.Enum):
    INSIDE = "inside"
    OUTSIDE = "outside"
    CROSSING = "crossing"


@dataclass(frozen=True)
class Region:
    """A licensed region: polygons (outer rings and holes) in longitude/latitude.

    Containment is even-odd over every ring, so holes and several parts need no special case;
    the parts of a MultiPolygon must not overlap (RFC 7946).
    """

    name: str
    rings: tuple[tuple[tuple[float, float], ...], ...]
    edges: tuple[Segment, ...] = field(init=False, repr=False)
    #: edges by 0.1° latitude band, for ray casting
    _bands: dict[int, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # An edge two parts share (a coalition zone of neighbours) lies inside the union:
        # both copies go, which leaves every point's even-odd count as it was.
        count: dict[tuple[tuple[float, float], tuple[float, float]], int] = {}
        for ring in self.rings:
            if len(ring) < 4 or ring[0] != ring[-1]:
                raise ConfigError(f"region {self.name!r}: a ring is closed and has 4+ positions")
            for a, b in itertools.pairwise(ring):
                if a != b:
                    key = (min(a, b), max(a, b))
                    count[key] = count.get(key, 0) + 1
        edges: list[Segment] = [(a[0], a[1], b[0], b[1]) for (a, b), n in count.items() if n % 2]
        if not edges:
            raise ConfigError(f"region {self.name!r} has no edges")
        bands: dict[int, list[int]] = {}
        for i, (_, y0, _, y1) in enumerate(edges):
            for band in range(_band(min(y0, y1)), _band(max(y0, y1)) + 1):
                bands.setdefault(band, []).append(i)
        object.__setattr__(self, "edges", tuple(edges))
        object.__setattr__(self, "_bands", {k: tuple(v) for k, v in bands.items()})

    def contains(self, p: Place) -> bool:
        """Whether ``p`` lies inside (even-odd ray casting towards increasing longitude)."""
        x, y = p.lon, p.lat
        inside = False
        for i in self._bands.get(_band(y), ()):
            x0, y0, x1, y1 = self.edges[i]
            if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                inside = not inside
        return inside

    def side(
        self, lat0: float, lat1: float, lon0: float, lon1: float, candidates: Sequence[int]
    ) -> tuple[Side, tuple[int, ...]]:
        """Where a cell lies, and which of ``candidates`` (edge indices) touch it.

        A cell no edge touches is wholly inside or wholly outside: its centre decides.
        """
        touching = tuple(
            i for i in candidates if _segment_meets_box(self.edges[i], lon0, lat0, lon1, lat1)
        )
        if touching:
            return Side.CROSSING, touching
        centre = Place((lat0 + lat1) / 2, (lon0 + lon1) / 2)
        return (Side.INSIDE if self.contains(centre) else Side.OUTSIDE), ()

    def bbox(self) -> tuple[float, float, float, float]:
        lats = [y for ring in self.rings for _, y in ring]
        lons = [x for ring in self.rings for x, _ in ring]
        return (min(lats), max(lats), min(lons), max(lons))

    def as_geojson(self) -> dict[str, Any]:
        return {
            "type": "Feature",
            "properties": {"name": self.name},
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [[[list(pt) for pt in ring]] for ring in self.rings],
            },
        }


def _band(lat: float) -> int:
    return math.floor(lat * 10)


def _segment_meets_box(s: Segment, x0: float, y0: float, x1: float, y1: float) -> bool:
    """Whether a segment has a point in the closed box (Liang-Barsky clipping)."""
    sx0, sy0, sx1, sy1 = s
    dx, dy = sx1 - sx0, sy1 - sy0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, sx0 - x0), (dx, x1 - sx0), (-dy, sy0 - y0), (dy, y1 - sy0)):
        if p == 0:
            if q < 0:
                return False
        else:
            t = q / p
            if p < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
            if t0 > t1:
                return False
    return True


def regions_from_geojson(doc: Any) -> dict[str, tuple[Region, frozenset[bytes]]]:
    """Regions of a GeoJSON FeatureCollection: name -> (region, the chips licensed for it).

    Each Feature has a Polygon or MultiPolygon geometry and ``properties.name``; an optional
    ``properties.chips`` lists the UEIDs (hex) licensed for the region.
    """
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ConfigError("regions: expected a GeoJSON FeatureCollection")
    out: dict[str, tuple[Region, frozenset[bytes]]] = {}
    for feature in doc.get("features", []):
        props = feature.get("properties") or {}
        name = props.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError("regions: every feature needs properties.name")
        if name in out:
            raise ConfigError(f"regions: two features are named {name!r}")
        try:
            chips = frozenset(bytes.fromhex(u) for u in props.get("chips", []))
        except (TypeError, ValueError):
            raise ConfigError(f"regions: {name}: chips must be UEIDs in hex") from None
        out[name] = (Region(name, _rings(feature.get("geometry"), name)), chips)
    return out


def _rings(geometry: Any, name: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    if not isinstance(geometry, dict):
        raise ConfigError(f"regions: {name}: no geometry")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else None
    if not isinstance(polygons, list):
        raise ConfigError(f"regions: {name}: geometry must be a Polygon or a MultiPolygon")
    rings = []
    try:
        for polygon in polygons:
            for ring in polygon:
                pts = tuple((float(p[0]), float(p[1])) for p in ring)
                for lon, lat in pts:
                    Place(lat, lon)  # range check
                rings.append(pts)
    except (TypeError, ValueError, IndexError):
        raise ConfigError(f"regions: {name}: bad coordinates") from None
    return tuple(rings)


def read_regions(text: str) -> dict[str, tuple[Region, frozenset[bytes]]]:
    try:
        return regions_from_geojson(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"regions: not JSON: {exc}") from None


def union(name: str, regions: Iterable[Region]) -> Region:
    """One region made of several (e.g. a coalition zone); their parts must not overlap."""
    return Region(name, tuple(r for region in regions for r in region.rings))


# -- deciding where a feasible region lies ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Relation:
    """How the feasible region F (the intersection of some disks) relates to a region P."""

    #: F ⊆ P is proven
    contained: bool
    #: F ∩ P = ∅ is proven
    disjoint: bool
    #: F = ∅ is proven (the disks cannot all hold one point)
    empty: bool
    #: cells examined
    cells: int = 0


def cell_reach_m(lat0: float, lat1: float, lon0: float, lon1: float) -> float:
    """An upper bound of the distance from a cell's centre to any of its points (module doc)."""
    near = 0.0 if lat0 <= 0.0 <= lat1 else min(abs(lat0), abs(lat1))
    dphi = math.radians(lat1 - lat0) / 2
    dlam = math.radians(lon1 - lon0) / 2
    return M_MAX_M * dphi + M_MAX_M * math.cos(math.radians(near)) * dlam


class _Fit(enum.Enum):
    EXCLUDED = 0
    PARTIAL = 1
    COVERED = 2


def _fit(disk: Disk, centre: Place, reach: float) -> _Fit:
    """Whether a cell (centre, reach) is outside, across or inside a disk (sound, see doc)."""
    chord = chord_m(disk.center, centre)
    lo = geodesic_lower_m(disk.center, centre) - SLACK_M
    hi = arc_upper_m(chord) + SLACK_M
    r = disk.radius_m
    if lo - reach > r:
        return _Fit.EXCLUDED
    if hi + reach <= r:
        return _Fit.COVERED
    exact = geodesic_m(disk.center, centre)  # the bracket is not enough: ask geographiclib
    if exact - SLACK_M - reach > r:
        return _Fit.EXCLUDED
    if exact + SLACK_M + reach <= r:
        return _Fit.COVERED
    return _Fit.PARTIAL


def feasible_bbox(disks: Sequence[Disk]) -> tuple[float, float, float, float] | None:
    """The intersection of the disks' boxes (None when it is empty)."""
    lat0, lat1, lon0, lon1 = -90.0, 90.0, -180.0, 180.0
    for d in disks:
        a, b, c, e = d.bbox()
        lat0, lat1, lon0, lon1 = max(lat0, a), min(lat1, b), max(lon0, c), min(lon1, e)
    if lat0 > lat1 or lon0 > lon1:
        return None
    return (lat0, lat1, lon0, lon1)


def _roots(
    box: tuple[float, float, float, float],
) -> Iterator[tuple[float, float, float, float]]:
    lat0, lat1, lon0, lon1 = box
    step = max(1.0, (lat1 - lat0) / 16, (lon1 - lon0) / 16)
    ny = max(1, math.ceil((lat1 - lat0) / step))
    nx = max(1, math.ceil((lon1 - lon0) / step))
    for j in range(ny):
        for i in range(nx):
            yield (
                lat0 + (lat1 - lat0) * j / ny,
                lat0 + (lat1 - lat0) * (j + 1) / ny,
                lon0 + (lon1 - lon0) * i / nx,
                lon0 + (lon1 - lon0) * (i + 1) / nx,
            )


def relate(disks: Sequence[Disk], region: Region, *, budget: int = CELL_BUDGET) -> Relation:
    """Decide, soundly, whether the feasible region lies inside ``region`` or outside it.

    Breadth-first over cells of the feasible box: a cell some disk excludes is dropped; a cell
    that every disk covers and that lies wholly inside (outside) the region refutes
    "outside" ("inside"); other cells that still matter are split, until both questions are
    refuted, the cells run out, or the budget or the smallest size leaves a question open.
    """
    if not disks:  # no bound at all: the chip may be anywhere
        return Relation(False, False, False)
    box = feasible_bbox(disks)
    if box is None:
        return Relation(True, True, True)
    queue = [(*cell, tuple(range(len(region.edges)))) for cell in _roots(box)]
    seen = 0
    survived = in_witness = out_witness = open_in = open_out = False
    while queue and not (in_witness and out_witness):
        first: list[tuple[float, float, float, float, tuple[int, ...]]] = []
        next_level: list[tuple[float, float, float, float, tuple[int, ...]]] = []
        for lat0, lat1, lon0, lon1, candidates in queue:
            if in_witness and out_witness:
                break
            seen += 1
            centre = Place((lat0 + lat1) / 2, (lon0 + lon1) / 2)
            reach = cell_reach_m(lat0, lat1, lon0, lon1)
            fits = []
            for d in disks:
                fit = _fit(d, centre, reach)
                if fit is _Fit.EXCLUDED:
                    break
                fits.append(fit)
            else:
                survived = True
                covered = all(f is _Fit.COVERED for f in fits)
                side, touching = region.side(lat0, lat1, lon0, lon1, candidates)
                if covered and side is Side.INSIDE:
                    in_witness = True
                    continue
                if covered and side is Side.OUTSIDE:
                    out_witness = True
                    continue
                matters_in = side is not Side.OUTSIDE and not in_witness
                matters_out = side is not Side.INSIDE and not out_witness
                if not (matters_in or matters_out):
                    continue
                if reach < MIN_CELL_M or seen + len(first) + len(next_level) + 4 > budget:
                    open_in |= matters_in
                    open_out |= matters_out
                    continue
                mlat, mlon = (lat0 + lat1) / 2, (lon0 + lon1) / 2
                # cells wholly on one side of the region first: they decide soonest
                level = next_level if touching else first
                for a, b in ((lat0, mlat), (mlat, lat1)):
                    for c, e in ((lon0, mlon), (mlon, lon1)):
                        level.append((a, b, c, e, touching))
        queue = first + next_level
    if queue:  # stopped early: both questions refuted
        open_in = open_out = True
    contained = not out_witness and not open_out
    disjoint = not in_witness and not open_in
    return Relation(contained, disjoint, contained and disjoint and not survived, seen)
