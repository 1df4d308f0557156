"""Real places for simulations, tests and the demo (DESIGN.md §8), and sample licensed regions.

The cities are those of the design brief. The regions are *policy* polygons of the kind an
operator writes into a node's regions file: simplified, hand-drawn outlines of the Malaysian
and Singaporean jurisdictions (land and coastal waters to roughly the median lines with the
neighbours; the Johor Strait follows the boundary in the coastline data, error of the order of
10 km elsewhere). They are not legal boundaries; Brunei's enclave and Limbang are one notch.
"""

from __future__ import annotations

from typing import Any

from attest.location.geometry import Place

#: DESIGN.md §8
CITIES: dict[str, Place] = {
    "Kuala Lumpur": Place(3.139, 101.687),
    "Johor Bahru": Place(1.493, 103.741),
    "Singapore": Place(1.352, 103.820),
    "Bangkok": Place(13.756, 100.502),
    "Jakarta": Place(-6.208, 106.846),
    "Ho Chi Minh City": Place(10.823, 106.630),
    "Manila": Place(14.600, 120.984),
}

# The Johor Strait boundary, west to east (shared by both outlines, so they do not overlap).
_STRAIT = [
    (103.60, 1.28), (103.66, 1.38), (103.69, 1.43), (103.76, 1.44), (103.80, 1.465),
    (103.88, 1.44), (103.95, 1.41), (104.03, 1.43), (104.08, 1.42), (104.09, 1.31),
]  # fmt: skip

_PENINSULA = [
    # Thai border, west to east
    (99.50, 6.43), (99.90, 6.50), (100.10, 6.42), (100.20, 6.70), (100.30, 6.70),
    (100.35, 6.55), (100.55, 6.50), (100.75, 6.52), (100.85, 6.25), (101.05, 6.27),
    (101.00, 5.80), (101.15, 5.65), (101.30, 5.80), (101.60, 5.88), (101.75, 5.78),
    (101.85, 5.80), (102.00, 6.00), (102.10, 6.15),
    # South China Sea, southwards
    (102.35, 6.35), (103.15, 5.75), (103.60, 5.00), (103.70, 4.30), (103.65, 3.70),
    (103.70, 3.00), (104.00, 2.70), (104.20, 2.50), (104.50, 1.70), (104.45, 1.38),
    (104.20, 1.30),
    # the Johor Strait, east to west
    *reversed(_STRAIT),
    # the Strait of Malacca, northwards
    (103.45, 1.18), (102.90, 1.55), (102.35, 1.90), (101.75, 2.35), (101.25, 2.80),
    (100.95, 3.20), (100.55, 3.85), (100.30, 4.30), (100.10, 4.90), (100.05, 5.40),
    (99.95, 5.90), (99.60, 6.20), (99.50, 6.43),
]  # fmt: skip

_BORNEO = [
    # Sarawak coast, north-eastwards
    (109.60, 2.05), (110.20, 2.00), (111.00, 2.30), (111.30, 2.80), (112.90, 3.30),
    (113.60, 4.20), (113.95, 4.75),
    # Brunei (and Limbang) left out as one notch
    (114.10, 4.60), (114.35, 4.30), (114.60, 4.00), (114.80, 4.10), (114.85, 4.60),
    (115.00, 4.60), (115.15, 4.35), (115.35, 4.35), (115.30, 4.90), (115.10, 5.15),
    # Labuan and the Sabah coast
    (115.10, 5.40), (115.50, 5.55), (115.90, 6.15), (116.50, 6.90), (116.85, 7.25),
    (117.30, 7.15), (117.80, 6.55), (118.30, 6.05), (119.00, 5.55), (119.40, 5.20),
    (118.80, 4.60), (118.30, 4.30), (117.65, 4.15),
    # the Kalimantan border, westwards
    (117.00, 4.33), (116.00, 4.33), (115.60, 4.20), (115.50, 3.50), (115.20, 2.80),
    (114.80, 2.20), (114.60, 1.50), (114.00, 1.45), (113.50, 1.30), (113.00, 1.40),
    (112.50, 1.55), (112.00, 1.30), (111.50, 1.00), (111.00, 1.00), (110.50, 0.87),
    (110.10, 1.05), (109.80, 1.40), (109.65, 1.65), (109.60, 2.05),
]  # fmt: skip

_SINGAPORE = [
    *_STRAIT,
    (104.05, 1.20), (103.85, 1.17), (103.65, 1.17), (103.60, 1.28),
]  # fmt: skip


def _feature(name: str, polygons: list[list[tuple[float, float]]]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"name": name},
        "geometry": {
            "type": "MultiPolygon",
            "coordinates": [[[list(p) for p in ring]] for ring in polygons],
        },
    }


def sample_regions(chips: dict[str, list[bytes]] | None = None) -> dict[str, Any]:
    """A regions file (GeoJSON FeatureCollection): MY, SG and the coalition zone MY+SG.

    ``chips`` names the chips licensed for each region (by region name), as a node's file does.
    """
    features = [
        _feature("MY", [_PENINSULA, _BORNEO]),
        _feature("SG", [_SINGAPORE]),
        _feature("MY+SG", [_PENINSULA, _BORNEO, _SINGAPORE]),
    ]
    for f in features:
        listed = (chips or {}).get(f["properties"]["name"])
        if listed:
            f["properties"]["chips"] = [u.hex() for u in listed]
    return {"type": "FeatureCollection", "features": features}
