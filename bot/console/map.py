"""The commander's map: last known unit positions and the mission's gazetteer drawn as plain
SVG coordinates (an equirectangular projection of the area in view; no tiles to fetch).

Pure: board rows in, points with x/y out; the template draws them, escaped like any text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.services.board import BoardRow

WIDTH = 640
HEIGHT = 480
MARGIN = 28
MIN_SPAN = 0.08  # degrees: a single unit still shows its neighbourhood
# Where the map looks when no unit has reported a position: greater Port-au-Prince.
HOME = ((18.40, -72.45), (18.62, -72.18))


@dataclass(frozen=True)
class MapPoint:
    """One point on the map, already projected."""

    x: float
    y: float
    label: str
    side: str = ""
    stale: bool = False
    urgent: bool = False


@dataclass(frozen=True)
class AreaMap:
    """The map of one board: units with a position, and gazetteer places in view."""

    width: int
    height: int
    units: tuple[MapPoint, ...]
    places: tuple[MapPoint, ...]
    unplaced: tuple[str, ...]


def build_map(
    rows: Sequence[BoardRow],
    gazetteer: Mapping[str, tuple[float, float]],
    urgent: frozenset[str] = frozenset(),
) -> AreaMap:
    """Project the units' last known positions and the nearby places onto one SVG canvas."""
    placed: list[tuple[BoardRow, float, float]] = []
    unplaced: list[str] = []
    for row in rows:
        loc = row.report.location if row.report else None
        if loc is not None and loc.latitude is not None and loc.longitude is not None:
            placed.append((row, loc.latitude, loc.longitude))
        elif loc is not None and loc.place in gazetteer:
            lat, lon = gazetteer[loc.place or ""]
            placed.append((row, lat, lon))
        else:
            unplaced.append(row.code)
    if placed:
        lats = [p[1] for p in placed]
        lons = [p[2] for p in placed]
        south, north, west, east = min(lats), max(lats), min(lons), max(lons)
    else:
        (south, west), (north, east) = HOME
    south, north = _widen(south, north)
    west, east = _widen(west, east)
    project = _projector(south, north, west, east)
    units = tuple(
        MapPoint(
            *project(lat, lon),
            label=row.code,
            side=row.side,
            stale=row.stale,
            urgent=bool(row.report and row.report.status in urgent),
        )
        for row, lat, lon in placed
    )
    places = tuple(
        MapPoint(*project(lat, lon), label=name)
        for name, (lat, lon) in sorted(gazetteer.items())
        if south <= lat <= north and west <= lon <= east
    )
    return AreaMap(WIDTH, HEIGHT, units, places, tuple(unplaced))


def _widen(low: float, high: float) -> tuple[float, float]:
    span = max(high - low, MIN_SPAN)
    middle = (low + high) / 2
    pad = span * 0.15
    return middle - span / 2 - pad, middle + span / 2 + pad


def _projector(south: float, north: float, west: float, east: float) -> _Projection:
    # One degree of longitude is cos(latitude) of a degree of latitude on the ground.
    squeeze = math.cos(math.radians((south + north) / 2))
    ground_w = (east - west) * squeeze
    ground_h = north - south
    scale = min((WIDTH - 2 * MARGIN) / ground_w, (HEIGHT - 2 * MARGIN) / ground_h)
    off_x = (WIDTH - ground_w * scale) / 2
    off_y = (HEIGHT - ground_h * scale) / 2
    return _Projection(west, north, squeeze, scale, off_x, off_y)


@dataclass(frozen=True)
class _Projection:
    west: float
    north: float
    squeeze: float
    scale: float
    off_x: float
    off_y: float

    def __call__(self, lat: float, lon: float) -> tuple[float, float]:
        x = self.off_x + (lon - self.west) * self.squeeze * self.scale
        y = self.off_y + (self.north - lat) * self.scale
        return round(x, 1), round(y, 1)
