"""Draw a scene plan: a background, then each drawing cut out of its white page and pasted at its
box (later objects over earlier ones). Runs in worker processes; deterministic for a plan.

The demo's drawings are JPEGs on white: the cut-out keeps every pixel except the near-white ones
connected to the page's border, so a drawing's own white parts (eyes, highlights) stay.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tonics.data.scenes.layout import CANVAS, PLAIN_BACKGROUNDS, ScenePlan

NEAR_WHITE = 235  # JPEG noise keeps the page from being exactly white


@lru_cache(maxsize=4096)
def cut_out(path: str) -> Image.Image:
    """The drawing as RGBA, cropped to its visible pixels, the page around it transparent."""
    from scipy import ndimage

    with Image.open(path) as source:
        rgb = np.asarray(source.convert("RGB"))
    white = (rgb >= NEAR_WHITE).all(axis=2)
    labels, _ = ndimage.label(white)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    page = np.isin(labels, border[border > 0])
    alpha = np.where(page, 0, 255).astype(np.uint8)
    image = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    box = image.getbbox()
    return image.crop(box) if box else image


def background(name: str) -> Image.Image:
    """The canvas of a named plain or drawn background."""
    if name in PLAIN_BACKGROUNDS:
        return Image.new("RGB", (CANVAS, CANVAS), PLAIN_BACKGROUNDS[name])
    canvas = Image.new("RGB", (CANVAS, CANVAS), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if name == "sky and grass":
        draw.rectangle((0, 0, CANVAS, CANVAS * 3 // 5), fill=(170, 215, 250))
        draw.rectangle((0, CANVAS * 3 // 5, CANVAS, CANVAS), fill=(120, 190, 90))
    elif name == "checkered":
        for x in range(0, CANVAS, 28):
            for y in range(0, CANVAS, 28):
                if (x + y) // 28 % 2:
                    draw.rectangle((x, y, x + 27, y + 27), fill=(215, 215, 230))
    elif name == "striped":
        for x in range(0, CANVAS, 32):
            draw.rectangle((x, 0, x + 15, CANVAS), fill=(250, 225, 200))
    elif name == "dotted":
        for x in range(8, CANVAS, 24):
            for y in range(8, CANVAS, 24):
                draw.ellipse((x, y, x + 7, y + 7), fill=(200, 200, 210))
    else:
        raise ValueError(f"unknown scene background '{name}'")
    return canvas


def draw_scene(plan: ScenePlan, drawings_root: str) -> tuple[Image.Image, list[list[int]]]:
    """The scene image and each object's visible box [x, y, width, height] (COCO's bbox)."""
    canvas = background(plan.background)
    boxes = []
    for placed in plan.objects:
        sprite = cut_out(str(Path(drawings_root) / placed.drawing.path))
        x, y, w, h = placed.box
        scale = min(w / sprite.width, h / sprite.height)
        size = (max(1, round(sprite.width * scale)), max(1, round(sprite.height * scale)))
        sprite = sprite.resize(size, Image.Resampling.BILINEAR)
        left, top = x + (w - size[0]) // 2, y + (h - size[1]) // 2
        canvas.paste(sprite, (left, top), sprite)
        boxes.append([left, top, size[0], size[1]])
    return canvas, boxes


def write_scene(task: tuple[ScenePlan, str, str]) -> list[list[int]]:
    """Draw one scene to its JPEG file; its objects' boxes."""
    plan, drawings_root, target = task
    image, boxes = draw_scene(plan, drawings_root)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    image.save(target, "JPEG", quality=90)
    return boxes
