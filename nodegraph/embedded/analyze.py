"""Read a scene image back: background kind, and each object's color, shape, size and position.

The analyzer uses the renderer's palette and geometry. It classifies the background by
the colors of the top and bottom rows, marks pixels far from the background colors as
object pixels, splits them into connected parts, and names each part's color by the
nearest palette color and its shape by the nearest reference shape rendered at the same
resolution. On rendered scenes it is exact (tests/test_embedded_scene.py checks it);
on generated images it is the judge of the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .scene import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES, Scene, SceneObject, render

OBJECT_DISTANCE = 55.0  # RGB distance from every background color that makes a pixel part of an object
MIN_AREA_FRACTION = 0.25  # a part smaller than this share of a small ball's area is noise


@dataclass(frozen=True)
class FoundObject:
    color: str
    shape: str
    size: str
    position: str
    area: int
    center: tuple[float, float]  # fractions of the image side (x, y)


@dataclass(frozen=True)
class Analysis:
    background: str
    objects: tuple[FoundObject, ...]

    @property
    def main(self) -> FoundObject | None:
        """The largest object, or None."""
        return max(self.objects, key=lambda o: o.area) if self.objects else None


def _to_uint8(image) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = np.clip(np.asarray(array, dtype=np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return array


def _band_colors(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the median colors of the top and bottom rows, where objects cover at most half."""
    h = pixels.shape[0]
    band = max(1, round(h * 0.08))
    top = np.median(pixels[:band].reshape(-1, 3).astype(np.float64), axis=0)
    bottom = np.median(pixels[h - band :].reshape(-1, 3).astype(np.float64), axis=0)
    return top, bottom


def classify_background(pixels: np.ndarray) -> str:
    """Name the background kind whose sky and ground colors are nearest the top and bottom rows."""
    top, bottom = _band_colors(pixels)
    best, best_distance = "", float("inf")
    for name, (sky, ground) in BACKGROUNDS.items():
        distance = np.linalg.norm(top - sky) + np.linalg.norm(bottom - ground)
        if distance < best_distance:
            best, best_distance = name, distance
    return best


def _shape_features(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = mask[y0:y1, x0:x1].astype(np.float64)
    h, w = box.shape
    area = box.sum()
    fill = area / (h * w)
    top_half = box[: h // 2].sum()
    bottom_half = box[h - h // 2 :].sum()
    asym = top_half / max(bottom_half, 1.0)
    qh, qw = max(1, h // 4), max(1, w // 4)
    corners = np.mean([box[:qh, :qw].mean(), box[:qh, -qw:].mean(), box[-qh:, :qw].mean(), box[-qh:, -qw:].mean()])
    top_corners = np.mean([box[:qh, :qw].mean(), box[:qh, -qw:].mean()])
    middle_row = box[h // 2].mean()
    return np.array([fill, min(asym, 2.0), corners, top_corners, middle_row])


@lru_cache(maxsize=8)
def _references(size: int) -> tuple[np.ndarray, tuple[str, ...]]:
    features, labels = [], []
    offsets = (-0.02, 0.0, 0.013, 0.027)
    for shape in SHAPES:
        for obj_size in SIZES:
            for dx in offsets:
                for dy in offsets:
                    scene = Scene("plain", (SceneObject(shape, "black", obj_size, "center", dx, dy),))
                    mask = _object_mask(render(scene, size), *BACKGROUNDS["plain"])
                    features.append(_shape_features(mask))
                    labels.append(shape)
    return np.stack(features), tuple(labels)


def _object_mask(pixels: np.ndarray, sky, ground) -> np.ndarray:
    # Distance to the segment between sky and ground color, so the blended horizon row
    # counts as background.
    sky, ground = np.asarray(sky, dtype=np.float64), np.asarray(ground, dtype=np.float64)
    flat = pixels.astype(np.float64)
    span = ground - sky
    length = float(span @ span)
    t = np.clip(((flat - sky) @ span) / length, 0.0, 1.0) if length else np.zeros(flat.shape[:-1])
    nearest = sky + t[..., None] * span
    return np.linalg.norm(flat - nearest, axis=-1) > OBJECT_DISTANCE


def _label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Number the 4-connected parts of a boolean mask 1..count (0 is background)."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    height, width = mask.shape
    count = 0
    for y, x in zip(*np.nonzero(mask)):
        if labels[y, x]:
            continue
        count += 1
        labels[y, x] = count
        stack = [(y, x)]
        while stack:
            cy, cx = stack.pop()
            for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = count
                    stack.append((ny, nx))
    return labels, count


def _erode(mask: np.ndarray) -> np.ndarray:
    """Keep the pixels whose four neighbors are all in the mask (outside the image counts as out)."""
    padded = np.pad(mask, 1, constant_values=False)
    return (
        mask
        & padded[:-2, 1:-1]
        & padded[2:, 1:-1]
        & padded[1:-1, :-2]
        & padded[1:-1, 2:]
    )


def _nearest_color(rgb: np.ndarray) -> str:
    names = list(COLORS)
    palette = np.array([COLORS[n] for n in names], dtype=np.float64)
    return names[int(np.argmin(np.linalg.norm(palette - rgb, axis=1)))]


def analyze(image) -> Analysis:
    """Analyze an image: uint8 [H, W, 3], or float 0..1 as [H, W, 3] or [3, H, W]."""
    pixels = _to_uint8(image)
    size = pixels.shape[0]
    background = classify_background(pixels)
    # Objects stand out from the background colors this image has: a generated sky can be a
    # shade off the palette, and the palette colors would then mark the whole sky as an object.
    mask = _object_mask(pixels, *_band_colors(pixels))
    labels, count = _label(mask)
    min_area = MIN_AREA_FRACTION * np.pi * (SIZES["small"] * size) ** 2
    ref_features, ref_labels = _references(size)
    scale = ref_features.std(axis=0) + 1e-6
    found = []
    for index in range(1, count + 1):
        part = labels == index
        area = int(part.sum())
        if area < min_area:
            continue
        # Color from the part's inner pixels: edges are mixed with the background.
        inner = _erode(part) if area >= 20 else part
        if not inner.any():
            inner = part
        color = _nearest_color(np.median(pixels[inner].astype(np.float64), axis=0))
        features = _shape_features(part)
        nearest = np.argmin(np.linalg.norm((ref_features - features) / scale, axis=1))
        ys, xs = np.nonzero(part)
        cx, cy = (xs.mean() + 0.5) / size, (ys.mean() + 0.5) / size
        extent = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) / size
        obj_size = "small" if extent < SIZES["small"] + SIZES["large"] else "large"
        # Shapes differ in where their mass sits; compare against the bounding-box center.
        box_cy = (ys.min() + ys.max() + 1) / 2 / size
        position = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - box_cy) ** 2)
        found.append(FoundObject(color, ref_labels[nearest], obj_size, position, area, (cx, cy)))
    found.sort(key=lambda o: o.center[0])
    return Analysis(background, tuple(found))
