"""Synthetic anime portraits drawn from parameters: a labelled data set that needs no download.

``sample_params(seed)`` draws a ``PortraitParams`` (the labelled attributes of ``attributes.ATTRIBUTES``
plus unlabelled nuisance: colours within a category, face shape, pose, background);
``draw_portrait(params, resolution)`` renders it at 4× and box-downsamples (anti-aliasing).
Both are deterministic: the same seed gives the same bytes.
"""
from __future__ import annotations

import colorsys
import contextlib
import functools
import math
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from ..errors import UserError
from . import attributes as vocab
from .writer import DatasetWriter

RGB = tuple[int, int, int]
Point = tuple[float, float]

SUPERSAMPLE = 4

HAIR_RGB: dict[str, RGB] = {
    "black": (48, 44, 60), "brown": (125, 78, 48), "blonde": (246, 212, 112), "red": (206, 52, 48),
    "blue": (66, 112, 214), "pink": (246, 146, 188), "purple": (142, 88, 196), "silver": (206, 212, 228),
}
EYE_RGB: dict[str, RGB] = {
    "blue": (44, 112, 232), "green": (40, 170, 80), "red": (214, 36, 50), "purple": (146, 66, 214),
    "brown": (136, 80, 36), "yellow": (236, 180, 30),
}
SKIN_LIGHT, SKIN_DARK = (255, 234, 220), (222, 168, 128)
LINE = (52, 34, 40)


@dataclass(frozen=True)
class PortraitParams:
    """Everything that decides one portrait. Lengths are in units of the image side (0..1)."""

    # labelled attributes (names and values from attributes.ATTRIBUTES)
    hair_color: str
    eye_color: str
    hair_style: str
    mouth: str
    bangs: bool
    blush: bool
    ribbon: bool
    glasses: bool
    hat: bool
    # colours
    hair_rgb: RGB
    eye_rgb: RGB
    skin_rgb: RGB
    background_rgb: RGB
    background_style: str      # plain | gradient | halo
    clothes_rgb: RGB
    accessory_rgb: RGB
    # geometry
    face_width: float          # half-width of the face
    chin_length: float         # cheekbone line to chin
    jaw_width: float           # jaw half-width at 80 % of the chin length, relative to face_width
    eye_size: float            # eye half-height
    eye_spacing: float         # eye centre to face centre
    eye_height: float          # eye centre below the head centre
    eye_tilt: float            # -1 (drooping, tareme) .. 1 (upturned, tsurime) outer corners
    hair_length: float         # bottom of long hair / tails (may pass the frame)
    bang_tips: tuple[float, ...]  # drop of each bang lock below the brow line
    bang_sweep: float          # -1..1: bang tips lean left / right
    part_offset: float         # hair parting, sideways from the centre
    side: int                  # -1 | 1: ponytail and ribbon side
    hat_kind: str              # beret | brim
    glasses_round: bool
    # pose
    zoom: float
    shift: Point
    tilt: float                # degrees

    def attributes(self) -> dict[str, vocab.Value]:
        """The labelled attributes, by name: {"hair_color": "blonde", "glasses": False, ...}."""
        return {a.name: getattr(self, a.name) for a in vocab.ATTRIBUTES}

    def label(self) -> list[int]:
        return vocab.encode(self.attributes())


# --------------------------------------------------------------------------- sampling


def _jitter(rgb: RGB, rng: np.random.Generator, hue: float, sat: float, val: float) -> RGB:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    h = (h + rng.uniform(-hue, hue)) % 1.0
    s = min(max(s * rng.uniform(1 - sat, 1 + sat), 0.0), 1.0)
    v = min(max(v * rng.uniform(1 - val, 1 + val), 0.0), 1.0)
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]


def _hsv(h: float, s: float, v: float) -> RGB:
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))  # type: ignore[return-value]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def _pick(rng: np.random.Generator, values: Sequence[str]) -> str:
    return values[int(rng.integers(len(values)))]


def sample_params(seed: int) -> PortraitParams:
    """A random portrait, the same for the same seed (numpy PCG64)."""
    rng = np.random.default_rng(seed)
    hair_color, eye_color = _pick(rng, vocab.HAIR_COLORS), _pick(rng, vocab.EYE_COLORS)
    hair_style, mouth = _pick(rng, vocab.HAIR_STYLES), _pick(rng, vocab.MOUTHS)
    bangs, blush = bool(rng.random() < 0.7), bool(rng.random() < 0.4)
    hat = bool(rng.random() < 0.2)
    ribbon = bool(rng.random() < 0.35) and not hat   # a hat would hide the bow
    glasses = bool(rng.random() < 0.2)
    skin_t = float(rng.beta(1.2, 3.0))
    bg_hue = rng.random()
    return PortraitParams(
        hair_color=hair_color, eye_color=eye_color, hair_style=hair_style, mouth=mouth, bangs=bangs, blush=blush,
        ribbon=ribbon, glasses=glasses, hat=hat,
        hair_rgb=_jitter(HAIR_RGB[hair_color], rng, 0.025, 0.15, 0.1),
        eye_rgb=_jitter(EYE_RGB[eye_color], rng, 0.02, 0.1, 0.1),
        skin_rgb=_mix(SKIN_LIGHT, SKIN_DARK, skin_t),
        background_rgb=_hsv(bg_hue, rng.uniform(0.15, 0.45), rng.uniform(0.8, 1.0)),
        background_style=_pick(rng, ("plain", "gradient", "halo")),
        clothes_rgb=_hsv(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.95)),
        accessory_rgb=_hsv(rng.random(), rng.uniform(0.5, 0.9), rng.uniform(0.6, 1.0)),
        face_width=float(rng.uniform(0.215, 0.25)),
        chin_length=float(rng.uniform(0.25, 0.3)),
        jaw_width=float(rng.uniform(0.45, 0.62)),
        eye_size=float(rng.uniform(0.068, 0.085)),
        eye_spacing=float(rng.uniform(0.1, 0.115)),
        eye_height=float(rng.uniform(0.045, 0.065)),
        eye_tilt=float(rng.uniform(-1.0, 1.0)),
        hair_length=float(rng.uniform(0.85, 1.15)),
        bang_tips=tuple(float(v) for v in rng.uniform(0.0, 1.0, int(rng.integers(4, 7)))),
        bang_sweep=float(rng.uniform(-1.0, 1.0)),
        part_offset=float(rng.uniform(-0.06, 0.06)),
        side=int(rng.choice([-1, 1])),
        hat_kind=_pick(rng, ("beret", "brim")),
        glasses_round=bool(rng.random() < 0.5),
        zoom=float(rng.uniform(1.12, 1.28)),
        shift=(float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-0.025, 0.025))),
        tilt=float(rng.uniform(-7.0, 7.0)),
    )


# --------------------------------------------------------------------------- drawing primitives


def chaikin(points: Sequence[Point], iterations: int = 2, closed: bool = True) -> list[Point]:
    """Corner cutting: a polyline → a smooth curve through (near) the same shape."""
    pts = list(points)
    for _ in range(iterations):
        out: list[Point] = [] if closed else [pts[0]]
        n = len(pts) if closed else len(pts) - 1
        for i in range(n):
            (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % len(pts)]
            out += [(0.75 * x0 + 0.25 * x1, 0.75 * y0 + 0.25 * y1), (0.25 * x0 + 0.75 * x1, 0.25 * y0 + 0.75 * y1)]
        pts = out if closed else out + [pts[-1]]
    return pts


def ellipse_points(cx: float, cy: float, rx: float, ry: float, a0: float = 0.0, a1: float = 360.0,
                   n: int = 40) -> list[Point]:
    """Points on an ellipse from angle a0 to a1 (degrees; 0 = +x, 90 = +y which is down)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, n)]


class Pen:
    """Draws in unit coordinates (0..1 across the image) through the portrait's pose transform."""

    def __init__(self, image: Image.Image, zoom: float, shift: Point, tilt: float):
        self.draw = ImageDraw.Draw(image)
        self.size = image.size[0]
        self.zoom, self.shift = zoom, shift
        self.cos, self.sin = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))

    def xy(self, points: Sequence[Point]) -> list[Point]:
        cx, cy = 0.5, 0.5   # the pose pivots about the middle of the face
        out = []
        for x, y in points:
            dx, dy = (x - cx) * self.zoom, (y - cy) * self.zoom
            out.append(((cx + self.cos * dx - self.sin * dy + self.shift[0]) * self.size,
                        (cy + self.sin * dx + self.cos * dy + self.shift[1]) * self.size))
        return out

    def width(self, w: float) -> int:
        return max(1, int(round(w * self.size * self.zoom)))

    def poly(self, points: Sequence[Point], fill: RGB | None, outline: RGB | None = None, width: float = 0.0):
        xy = self.xy(points)
        self.draw.polygon(xy, fill=fill)
        if outline is not None:
            self.draw.line(xy + xy[:1], fill=outline, width=self.width(width), joint="curve")

    def line(self, points: Sequence[Point], color: RGB, width: float):
        self.draw.line(self.xy(points), fill=color, width=self.width(width), joint="curve")

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: RGB | None, outline: RGB | None = None,
                width: float = 0.0):
        self.poly(ellipse_points(cx, cy, rx, ry), fill, outline, width)


# --------------------------------------------------------------------------- the portrait


@dataclass(frozen=True)
class _Head:
    """Derived head geometry shared by the drawing steps."""

    x: float
    y: float
    w: float
    chin: float


def draw_portrait(params: PortraitParams, resolution: int) -> Image.Image:
    """Render a portrait as a resolution × resolution RGB image (drawn at 4×, box-downsampled)."""
    size = resolution * SUPERSAMPLE
    image = _background(params, size)
    pen = Pen(image, params.zoom, params.shift, params.tilt)
    head = _Head(0.5, 0.45, params.face_width, params.chin_length)
    _back_hair(pen, params, head)
    _body(pen, params, head)
    _face(pen, params, head)
    for side in (-1, 1):
        _eye(pen, params, head, side)
    _mouth(pen, params, head)
    _front_hair(pen, params, head)
    _accessories(pen, params, head)
    return image.reduce(SUPERSAMPLE)


def _background(p: PortraitParams, size: int) -> Image.Image:
    if p.background_style == "plain":
        return Image.new("RGB", (size, size), p.background_rgb)
    lighter = _mix(p.background_rgb, (255, 255, 255), 0.6)
    if p.background_style == "gradient":
        column = np.linspace(0, 1, size)[:, None] * (np.array(p.background_rgb) - np.array(lighter)) + lighter
        arr = np.broadcast_to(column[:, None, :], (size, size, 3))
        return Image.fromarray(np.ascontiguousarray(arr.round().astype(np.uint8)))
    image = Image.new("RGB", (size, size), p.background_rgb)
    ImageDraw.Draw(image).ellipse([size * 0.08, size * 0.0, size * 0.92, size * 0.84], fill=lighter)
    return image


def _hair_shades(p: PortraitParams) -> tuple[RGB, RGB, RGB]:
    """(base, shadow, shine) of the hair colour."""
    return p.hair_rgb, _mix(p.hair_rgb, (20, 10, 30), 0.4), _mix(p.hair_rgb, (255, 255, 255), 0.45)


def _back_hair(pen: Pen, p: PortraitParams, h: _Head) -> None:
    base, shadow, _ = _hair_shades(p)
    ink, back = _mix(shadow, LINE, 0.5), _mix(base, shadow, 0.45)
    bottom = h.y + 0.35 + (p.hair_length - 0.85) * 0.5
    if p.hair_style == "long":
        pts = ([(h.x - h.w * 1.2, h.y - 0.05), (h.x - h.w * 1.45, h.y + 0.3), (h.x - h.w * 1.6, bottom)]
               + [(h.x + h.w * 1.6 * t, bottom - 0.04 * (i % 2)) for i, t in enumerate(np.linspace(-0.8, 0.8, 7))]
               + [(h.x + h.w * 1.6, bottom), (h.x + h.w * 1.45, h.y + 0.3), (h.x + h.w * 1.2, h.y - 0.05)])
        pen.poly(chaikin(pts, 1), back, ink, 0.008)
    elif p.hair_style == "short":
        pts = [(h.x - h.w * 1.2, h.y - 0.05), (h.x - h.w * 1.25, h.y + h.chin * 0.75),
               (h.x + h.w * 1.25, h.y + h.chin * 0.75), (h.x + h.w * 1.2, h.y - 0.05)]
        pen.poly(chaikin(pts, 2), back, ink, 0.008)
    elif p.hair_style == "twintails":
        for s in (-1, 1):
            _tail(pen, (h.x + s * h.w * 1.05, h.y - h.w * 0.75), s, 0.2, bottom, base, ink)
    else:  # ponytail: sticks out behind the head on one side
        _tail(pen, (h.x + p.side * h.w * 0.72, h.y - h.w * 1.12), p.side, 0.34, h.y + 0.28 + p.hair_length * 0.15,
              base, ink)
    pen.ellipse(h.x, h.y - 0.015, h.w * 1.22, h.w * 1.28, shadow, ink, 0.008)


def _tail(pen: Pen, root: Point, side: int, spread: float, bottom: float, color: RGB, ink: RGB) -> None:
    """A hanging lock of hair from ``root`` swinging out by ``spread`` and ending in a point at ``bottom``."""
    x, y = root
    pts = [(x, y - 0.03), (x + side * spread * 0.8, y + 0.02), (x + side * spread, y + (bottom - y) * 0.45),
           (x + side * spread * 0.6, bottom), (x + side * spread * 0.35, y + (bottom - y) * 0.5), (x, y + 0.04)]
    pen.poly(chaikin(pts, 2), color, ink, 0.008)


def _body(pen: Pen, p: PortraitParams, h: _Head) -> None:
    neck = _mix(p.skin_rgb, (150, 90, 90), 0.18)
    pen.poly([(h.x - 0.065, h.y + 0.15), (h.x + 0.065, h.y + 0.15), (h.x + 0.07, h.y + 0.45),
              (h.x - 0.07, h.y + 0.45)], neck)
    top = h.y + h.chin + 0.07
    pts = [(h.x - 0.6, 1.4), (h.x - 0.45, top + 0.1), (h.x - 0.3, top + 0.02), (h.x - 0.07, top),
           (h.x, top + 0.09), (h.x + 0.07, top), (h.x + 0.3, top + 0.02), (h.x + 0.45, top + 0.1), (h.x + 0.6, 1.4)]
    pen.poly(chaikin(pts, 1, closed=True), p.clothes_rgb, _mix(p.clothes_rgb, LINE, 0.6), 0.008)
    collar = _mix(p.clothes_rgb, (255, 255, 255), 0.75)
    for s in (-1, 1):
        pen.poly([(h.x + s * 0.07, top), (h.x + s * 0.16, top + 0.05), (h.x + s * 0.02, top + 0.13), (h.x, top + 0.09)],
                 collar, _mix(p.clothes_rgb, LINE, 0.6), 0.006)


def face_outline(h: _Head, jaw: float) -> list[Point]:
    """The face: a round cranium over a tapering jaw with a pointed chin."""
    upper = ellipse_points(h.x, h.y, h.w, h.w * 1.1, 180, 360, 24)
    right = [(h.x + h.w * 0.98, h.y + h.chin * 0.35), (h.x + h.w * jaw, h.y + h.chin * 0.8)]
    left = [(h.x - x + h.x, y) for x, y in reversed(right)]
    pts = upper + right + [(h.x + h.w * 0.1, h.y + h.chin * 0.98), (h.x, h.y + h.chin),
                           (h.x - h.w * 0.1, h.y + h.chin * 0.98)] + left
    return chaikin(pts, 2)


def _face(pen: Pen, p: PortraitParams, h: _Head) -> None:
    ink = _mix(p.skin_rgb, LINE, 0.55)
    for s in (-1, 1):   # ears
        pen.ellipse(h.x + s * h.w * 0.98, h.y + 0.05, h.w * 0.13, h.w * 0.22, p.skin_rgb, ink, 0.006)
    pen.poly(face_outline(h, p.jaw_width), p.skin_rgb, ink, 0.008)
    if p.blush:
        blush = _mix(p.skin_rgb, (255, 90, 120), 0.45)
        for s in (-1, 1):
            cx, cy = h.x + s * (p.eye_spacing + 0.025), h.y + p.eye_height + p.eye_size + 0.035
            pen.ellipse(cx, cy, 0.05, 0.022, blush)
            for k in (-1, 0, 1):
                pen.line([(cx + k * 0.018 - 0.006, cy + 0.012), (cx + k * 0.018 + 0.006, cy - 0.012)],
                         _mix(blush, (220, 40, 80), 0.4), 0.005)
    nose = _mix(p.skin_rgb, LINE, 0.35)
    ny = h.y + p.eye_height + p.eye_size + 0.03
    pen.line([(h.x + 0.004, ny - 0.008), (h.x - 0.004, ny + 0.006)], nose, 0.007)


def _eye(pen: Pen, p: PortraitParams, h: _Head, side: int) -> None:
    ex, ey = h.x + side * p.eye_spacing, h.y + p.eye_height
    eh = p.eye_size
    ew = eh * 0.82
    lash = _mix(LINE, p.hair_rgb, 0.15) if p.hair_color != "silver" else LINE
    pen.ellipse(ex, ey, ew, eh, (255, 255, 255))
    iris_dark = _mix(p.eye_rgb, (10, 0, 30), 0.55)
    iris_light = _mix(p.eye_rgb, (255, 255, 255), 0.35)
    pen.ellipse(ex, ey + eh * 0.08, ew * 0.78, eh * 0.9, iris_dark)
    pen.ellipse(ex, ey + eh * 0.15, ew * 0.62, eh * 0.75, p.eye_rgb)
    pen.ellipse(ex, ey + eh * 0.5, ew * 0.5, eh * 0.35, iris_light)
    pen.ellipse(ex, ey + eh * 0.05, ew * 0.3, eh * 0.42, iris_dark)
    # Upper lid: a thick dark band over the top of the eye, flicking out at the outer corner.
    top = ellipse_points(ex, ey, ew * 1.08, eh * 1.02, 200, 340, 12)
    if side < 0:
        top = [(2 * ex - x, y) for x, y in top]
    outer = (ex + side * ew * 1.35, ey - eh * (0.55 + 0.3 * p.eye_tilt))
    band = top + [outer] + [(x, y + eh * 0.28 * math.sin(math.pi * i / (len(top) - 1)) + eh * 0.08)
                            for i, (x, y) in reversed(list(enumerate(top)))]
    pen.poly(band, lash)
    pen.line([(ex + side * ew * 0.2, ey + eh * 1.0), (ex + side * ew * 0.85, ey + eh * 0.7)], lash, 0.006)
    # Highlights make the eye read as glossy even at 64 px.
    pen.ellipse(ex - side * ew * 0.32, ey - eh * 0.2, ew * 0.3, eh * 0.24, (255, 255, 255))
    pen.ellipse(ex + side * ew * 0.3, ey + eh * 0.5, ew * 0.14, eh * 0.1, (255, 255, 255))
    brow = _mix(_hair_shades(p)[1], LINE, 0.3)
    by = ey - eh * 1.6
    pen.line([(ex - side * ew * 0.8, by + 0.004), (ex, by - 0.01), (ex + side * ew * 1.0, by)], brow, 0.008)


def _mouth(pen: Pen, p: PortraitParams, h: _Head) -> None:
    my = h.y + p.eye_height + p.eye_size + 0.085
    ink = _mix(p.skin_rgb, (120, 30, 40), 0.7)
    if p.mouth == "smile":
        pen.line(ellipse_points(h.x, my - 0.012, 0.03, 0.018, 20, 160, 9), ink, 0.008)
    elif p.mouth == "open":
        pen.poly(ellipse_points(h.x, my - 0.008, 0.03, 0.03, 0, 180, 12), (150, 40, 50), ink, 0.006)
        pen.ellipse(h.x, my + 0.012, 0.016, 0.009, (240, 120, 130))
    else:
        pen.line([(h.x - 0.018, my), (h.x + 0.018, my)], ink, 0.008)


def _front_hair(pen: Pen, p: PortraitParams, h: _Head) -> None:
    base, shadow, shine = _hair_shades(p)
    ink = _mix(shadow, LINE, 0.5)
    for s in (-1, 1):   # side locks frame the face
        x0 = h.x + s * h.w * 1.12
        lock = [(x0, h.y - 0.06), (x0 + s * 0.01, h.y + h.chin * 0.6), (h.x + s * h.w * 0.88, h.y + h.chin * 0.95),
                (h.x + s * h.w * 0.8, h.y + h.chin * 0.3), (h.x + s * h.w * 0.72, h.y - 0.02)]
        pen.poly(chaikin(lock, 1), base, ink, 0.008)
    cap = ellipse_points(h.x, h.y - 0.01, h.w * 1.15, h.w * 1.25, 180, 360, 28)
    if p.bangs:
        pts = cap + _bang_edge(p, h)
    else:
        part = h.x + p.part_offset
        pts = cap + [(h.x + h.w * 1.1, h.y + 0.02), (h.x + h.w * 0.6, h.y - 0.06), (part, h.y - h.w * 0.8),
                     (h.x - h.w * 0.6, h.y - 0.06), (h.x - h.w * 1.1, h.y + 0.02)]
    pen.poly(pts, base, ink, 0.009)
    if p.bangs:
        _strands(pen, p, h, _mix(base, shadow, 0.6))
    # The "angel ring": a shine band across the crown.
    ring_y = h.y - h.w * 0.8
    ring = ellipse_points(h.x, ring_y + 0.03, h.w * 0.75, 0.05, 200, 340, 12)
    ring += [(x, y + 0.02 + 0.012 * (i % 2)) for i, (x, y) in reversed(list(enumerate(ring)))]
    pen.poly(ring, shine)


def _bang_edge(p: PortraitParams, h: _Head) -> list[Point]:
    """The lower edge of the bangs, right to left: pointed locks with curved sides."""
    n = len(p.bang_tips)
    xs = np.linspace(h.x + h.w * 1.12, h.x - h.w * 1.12, n + 1)
    brow = h.y + p.eye_height - p.eye_size * 1.55
    lock = xs[0] - xs[1]
    edge: list[Point] = []
    for i in range(n):
        x0, x1 = xs[i], xs[i + 1]
        root = brow - 0.055 - 0.02 * (i == 0)
        tip_x = (x0 + x1) / 2 + p.bang_sweep * lock * 0.45
        tip_y = brow + (p.bang_tips[i] - 0.35) * 0.05 - 0.025 * (i in (0, n - 1))
        edge += [(x0, root), (x0 * 0.55 + tip_x * 0.45, root + (tip_y - root) * 0.6), (tip_x, tip_y),
                 (x1 * 0.55 + tip_x * 0.45, root + (tip_y - root) * 0.45)]
    edge.append((xs[-1], brow - 0.075))
    return edge


def _strands(pen: Pen, p: PortraitParams, h: _Head, color: RGB) -> None:
    """A few strand lines from the crown towards the fringe."""
    for k in (-0.55, -0.15, 0.3, 0.65):
        x = h.x + k * h.w
        pen.line(chaikin([(h.x + k * h.w * 0.4, h.y - h.w * 1.1), (x + p.bang_sweep * 0.01, h.y - h.w * 0.6),
                          (x + k * 0.02, h.y - h.w * 0.45)], 1, closed=False), color, 0.006)


def _accessories(pen: Pen, p: PortraitParams, h: _Head) -> None:
    ink = _mix(p.accessory_rgb, LINE, 0.6)
    if p.ribbon:
        if p.hair_style == "twintails":
            for s in (-1, 1):
                _bow(pen, h.x + s * h.w * 1.08, h.y - h.w * 0.78, 0.06, p.accessory_rgb, ink)
        else:
            _bow(pen, h.x + p.side * h.w * 0.72, h.y - h.w * 1.1, 0.075, p.accessory_rgb, ink)
    elif p.hair_style in ("twintails", "ponytail"):   # plain hair ties
        roots = [(-1, 1), (1, 1)] if p.hair_style == "twintails" else [(p.side, 0)]
        for s, twin in roots:
            x = h.x + s * h.w * (1.05 if twin else 0.72)
            y = h.y - h.w * (0.75 if twin else 1.12)
            pen.ellipse(x, y, 0.022, 0.022, p.accessory_rgb, ink, 0.005)
    if p.glasses:
        frame = _mix(p.accessory_rgb, LINE, 0.75)
        ey, r = h.y + p.eye_height, p.eye_size * 1.15
        for s in (-1, 1):
            ex = h.x + s * p.eye_spacing
            if p.glasses_round:
                pen.poly(ellipse_points(ex, ey, r * 0.95, r, n=32), None, frame, 0.011)
            else:
                pen.poly(chaikin([(ex - r, ey - r * 0.7), (ex + r, ey - r * 0.7), (ex + r, ey + r * 0.75),
                                  (ex - r, ey + r * 0.75)], 1), None, frame, 0.011)
        pen.line([(h.x - p.eye_spacing + r * 0.9, ey - 0.01), (h.x + p.eye_spacing - r * 0.9, ey - 0.01)],
                 frame, 0.01)
    if p.hat:
        _hat(pen, p, h, ink)


def _bow(pen: Pen, x: float, y: float, r: float, color: RGB, ink: RGB) -> None:
    for s in (-1, 1):
        pen.poly(chaikin([(x, y), (x + s * r, y - r * 0.65), (x + s * r * 1.1, y + r * 0.6)], 1), color, ink, 0.006)
        pen.poly([(x, y), (x + s * r * 0.5, y + r * 1.2), (x + s * r * 0.2, y + r * 1.25)], color, ink, 0.005)
    pen.ellipse(x, y, r * 0.28, r * 0.3, color, ink, 0.006)


def _hat(pen: Pen, p: PortraitParams, h: _Head, ink: RGB) -> None:
    color = p.accessory_rgb
    if p.hat_kind == "beret":
        pen.ellipse(h.x + p.side * 0.04, h.y - h.w * 0.92, h.w * 1.38, h.w * 0.58, color, ink, 0.009)
        pen.ellipse(h.x + p.side * 0.04, h.y - h.w * 1.5, 0.018, 0.02, color, ink, 0.006)
    else:
        crown = ellipse_points(h.x, h.y - h.w * 0.85, h.w * 1.0, h.w * 0.9, 180, 360, 20)
        pen.poly(crown, color, ink, 0.009)
        band = _mix(color, (255, 255, 255), 0.5)
        pen.poly([(h.x - h.w * 1.0, h.y - h.w * 0.85), (h.x + h.w * 1.0, h.y - h.w * 0.85),
                  (h.x + h.w * 0.98, h.y - h.w * 1.05), (h.x - h.w * 0.98, h.y - h.w * 1.05)], band)
        pen.ellipse(h.x, h.y - h.w * 0.82, h.w * 1.75, h.w * 0.28, color, ink, 0.009)


# --------------------------------------------------------------------------- data set


def render_seed(seed: int, resolution: int) -> tuple[Image.Image, list[int], dict[str, vocab.Value]]:
    """One portrait with its label vector and attributes (picklable: what a worker returns)."""
    params = sample_params(seed)
    return draw_portrait(params, resolution), params.label(), params.attributes()


def write_synthetic_dataset(out: str | Path, n: int, resolution: int, seed: int = 0, progress: bool = True,
                            workers: int = 1) -> Path:
    """Write n portraits (seeds seed .. seed+n-1) as a data set folder or .zip (atomically).

    Image i is ``draw_portrait(sample_params(seed + i), resolution)``; dataset.json holds the
    vocabulary's label vectors and the human-readable attributes. ``workers`` > 1 draws in
    parallel processes; the results are written in seed order, so the bytes do not change.
    """
    if n < 1:
        raise UserError(f"the number of portraits must be at least 1, got {n}")
    seeds = range(seed, seed + n)
    render = functools.partial(render_seed, resolution=resolution)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(multiprocessing.get_context().Pool(workers))
            results: Iterable = pool.imap(render, seeds, chunksize=32)
        else:
            results = map(render, seeds)
        writer = stack.enter_context(DatasetWriter(out, resolution, label_names=vocab.label_names()))
        for image, label, attributes in tqdm(results, total=n, desc="portraits", unit="img", disable=not progress):
            writer.add(image, label=label, attributes=attributes)
        writer.extra["synthetic"] = {"seed": seed, "count": n}
    return Path(out)
