"""Procedural scenes with captions: the world the embedded image model learns to draw.

A scene is a background and one or two objects. Everything is drawn from a seed, so the
same seed always gives the same scene, caption and pixels. Captions come from several
templates with synonyms and word orders; the vocabulary is listed in VOCABULARY and in
the README's model section.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

# Backgrounds: (sky or upper color, ground or lower color); the horizon sits at HORIZON
# of the image height. Night and plain are one color from top to bottom.
BACKGROUNDS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "grass": ((140, 195, 240), (60, 120, 40)),
    "sea": ((140, 195, 240), (20, 110, 130)),
    "sand": ((140, 195, 240), (225, 195, 130)),
    "night": ((25, 35, 90), (25, 35, 90)),
    "snow": ((185, 200, 220), (240, 242, 248)),
    "plain": ((150, 150, 150), (150, 150, 150)),
}
HORIZON = 0.62

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (250, 225, 20),
    "green": (50, 215, 80),
    "cyan": (0, 230, 230),
    "blue": (30, 60, 220),
    "purple": (140, 40, 200),
    "pink": (255, 120, 190),
    "brown": (130, 75, 30),
    "black": (10, 10, 10),
}

SHAPES = ("ball", "box", "triangle", "star")
SIZES: dict[str, float] = {"small": 0.12, "large": 0.21}  # half extent, fraction of the image side
POSITIONS: dict[str, tuple[float, float]] = {
    "left": (0.26, 0.58),
    "right": (0.74, 0.58),
    "center": (0.50, 0.55),
    "top": (0.50, 0.28),
    "bottom": (0.50, 0.78),
}
JITTER = 0.03

SHAPE_WORDS = {
    "ball": ("ball", "circle"),
    "box": ("box", "square"),
    "triangle": ("triangle",),
    "star": ("star",),
}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
POSITION_WORDS = {
    "left": ("on the left", "at the left"),
    "right": ("on the right", "at the right"),
    "center": ("in the center", "in the middle"),
    "top": ("at the top", "up high"),
    "bottom": ("at the bottom", "down low"),
}
BACKGROUND_WORDS = {
    "grass": ("on green grass under a blue sky", "on the grass", "in a green field", "on a meadow under a blue sky"),
    "sea": ("over the sea", "by the sea under a blue sky", "above the ocean", "on the water"),
    "sand": ("on the sand", "on a sandy beach under a blue sky", "in the desert"),
    "night": ("in the night sky", "at night", "against a dark night sky"),
    "snow": ("on the snow", "in a snowy field", "on white snow under a pale sky"),
    "plain": ("on a plain gray background", "on gray", "against a plain background"),
}

BACKGROUND_NOUNS = {
    "grass": ("green grass", "a grassy field under a blue sky"),
    "sea": ("the sea", "the ocean under a blue sky"),
    "sand": ("sand", "a sandy beach"),
    "night": ("the night sky", "a dark night"),
    "snow": ("snow", "a snowy field"),
    "plain": ("a plain gray background", "a gray backdrop"),
}

VOCABULARY = {
    "backgrounds": BACKGROUND_WORDS,
    "background_nouns": BACKGROUND_NOUNS,
    "colors": tuple(COLORS),
    "shapes": SHAPE_WORDS,
    "sizes": SIZE_WORDS,
    "positions": POSITION_WORDS,
}


def held_out(color: str, shape: str, background: str) -> bool:
    """Whether a color-shape-background triple is kept out of training (24 of 240 triples).

    Each color-shape pair loses at most one background, so every word is still trained.
    """
    ci = list(COLORS).index(color)
    si = SHAPES.index(shape)
    bi = list(BACKGROUNDS).index(background)
    return (ci + 3 * si + 7 * bi) % 10 == 0


HELD_OUT = tuple(
    (c, s, b) for c in COLORS for s in SHAPES for b in BACKGROUNDS if held_out(c, s, b)
)


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    position: str
    dx: float = 0.0  # jitter, fraction of the image side
    dy: float = 0.0

    @property
    def center(self) -> tuple[float, float]:
        x, y = POSITIONS[self.position]
        return x + self.dx, y + self.dy


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[SceneObject, ...] = field(default_factory=tuple)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _pick_object(rng: random.Random, background: str, position: str, allow_held_out: bool) -> SceneObject:
    while True:
        color = rng.choice(tuple(COLORS))
        shape = rng.choice(SHAPES)
        if allow_held_out or not held_out(color, shape, background):
            break
    return SceneObject(
        shape=shape,
        color=color,
        size=rng.choice(tuple(SIZES)),
        position=position,
        dx=rng.uniform(-JITTER, JITTER),
        dy=rng.uniform(-JITTER, JITTER),
    )


def random_scene(rng: random.Random, *, allow_held_out: bool = False, two_object_rate: float = 0.25) -> Scene:
    """A random scene; training scenes never hold a held-out color-shape-background triple."""
    background = rng.choice(tuple(BACKGROUNDS))
    if rng.random() < two_object_rate:
        objects = (
            _pick_object(rng, background, "left", allow_held_out),
            _pick_object(rng, background, "right", allow_held_out),
        )
    else:
        objects = (_pick_object(rng, background, rng.choice(tuple(POSITIONS)), allow_held_out),)
    return Scene(background, objects)


def _object_phrase(obj: SceneObject, rng: random.Random, with_size: bool) -> str:
    shape = rng.choice(SHAPE_WORDS[obj.shape])
    if with_size:
        size = rng.choice(SIZE_WORDS[obj.size])
        return f"{_article(size)} {size} {obj.color} {shape}"
    return f"{_article(obj.color)} {obj.color} {shape}"


def caption(scene: Scene, rng: random.Random, *, full: bool = False) -> str:
    """A caption for the scene from a randomly chosen template.

    With full=True the caption always names size and position (the evaluation uses this).
    """
    bg = rng.choice(BACKGROUND_WORDS[scene.background])
    with_size = full or rng.random() < 0.8
    with_position = full or rng.random() < 0.85
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        thing = _object_phrase(obj, rng, with_size)
        pos = rng.choice(POSITION_WORDS[obj.position])
        if not with_position:
            return rng.choice((f"{thing} {bg}", f"a picture of {thing} {bg}"))
        template = rng.randrange(5)
        if template == 0:
            return f"{thing} {pos} {bg}"
        if template == 1:
            return f"{thing} {bg} {pos}"
        if template == 2:
            return f"{pos}, {thing} {bg}"
        if template == 3:
            return f"a picture of {thing} {pos} {bg}"
        return f"{rng.choice(BACKGROUND_NOUNS[scene.background])} with {thing} {pos}"
    left, right = scene.objects
    a = _object_phrase(left, rng, with_size)
    b = _object_phrase(right, rng, with_size)
    if not with_position:
        # Without position words the first object named is the one on the left.
        return rng.choice((f"two objects: {a} and {b} {bg}", f"{a} and {b} {bg}"))
    template = rng.randrange(3)
    if template == 0:
        return f"{a} on the left and {b} on the right {bg}"
    if template == 1:
        return f"{b} on the right and {a} on the left {bg}"
    return f"two objects {bg}: {a} on the left, {b} on the right"


def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "star":
        pts = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.45
            angle = -np.pi / 2 + k * np.pi / 5
            pts.append((cx + radius * np.cos(angle), cy + radius * np.sin(angle)))
        return pts
    raise ValueError(shape)


def render(scene: Scene, size: int = 32, supersample: int = 4) -> np.ndarray:
    """Draw the scene as uint8 pixels [size, size, 3]; deterministic, antialiased."""
    from PIL import Image, ImageDraw

    big = size * supersample
    sky, ground = BACKGROUNDS[scene.background]
    image = Image.new("RGB", (big, big), sky)
    draw = ImageDraw.Draw(image)
    horizon = round(HORIZON * big)
    draw.rectangle((0, horizon, big, big), fill=ground)
    for obj in scene.objects:
        cx, cy = obj.center
        cx, cy, r = cx * big, cy * big, SIZES[obj.size] * big
        color = COLORS[obj.color]
        if obj.shape == "ball":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
        elif obj.shape == "box":
            draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=color)
        else:
            draw.polygon(_shape_points(obj.shape, cx, cy, r), fill=color)
    if supersample > 1:
        image = image.resize((size, size), Image.BOX)
    return np.asarray(image, dtype=np.uint8).copy()


def sample(seed: int, size: int = 32, *, allow_held_out: bool = False) -> tuple[Scene, str, np.ndarray]:
    """Scene, caption and pixels for one seed."""
    rng = random.Random(seed)
    scene = random_scene(rng, allow_held_out=allow_held_out)
    return scene, caption(scene, rng), render(scene, size)
