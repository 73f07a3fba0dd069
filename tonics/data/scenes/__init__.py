"""The scenes dataset: several demo drawings per image, captions composed from their
human-written names, in COCO's own file formats, with a compositional hold-out.

The single-object demo cannot exercise TOnICS's mechanism (a same-object batch there is a set of
near-duplicates); scenes can: pairs that share an object differ in everything else in them. See
`catalogue` (categories and drawings), `layout` (scene plans), `compose` (drawing), `captions`
(the templates), `coco_files` (the files) and `card` (the data card).
"""

from tonics.data.scenes.build import (
    FULL_SIZE,
    SCENES_VERSION,
    build_scenes,
    scenes_dir,
    scenes_meta,
)
from tonics.data.scenes.card import format_scenes_card

__all__ = [
    "FULL_SIZE",
    "SCENES_VERSION",
    "build_scenes",
    "format_scenes_card",
    "scenes_dir",
    "scenes_meta",
]
