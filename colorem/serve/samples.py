"""The sample photos the page offers: a fixed catalogue built once at startup, so a request can only
ever name a photo that is in it (no user text becomes a filesystem path)."""

from __future__ import annotations

import io
import mimetypes
import re
from dataclasses import dataclass

from PIL import Image

from colorem.imageio import IMAGE_EXTENSIONS

# A row of samples/README.md: | `name.jpg` | what it shows | ...
_README_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|", re.MULTILINE)


@dataclass(frozen=True)
class Sample:
    name: str  # file name, e.g. "chelsea-cat.jpg"
    title: str  # "Chelsea cat"
    description: str  # what the photo shows, used as alt text
    width: int
    height: int
    media_type: str
    resource: object  # Traversable of the grayscale input
    original: object | None  # Traversable of the colour original, if shipped

    def public(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "width": self.width,
            "height": self.height,
            "url": f"/api/samples/{self.name}",
            "original_url": f"/api/samples/{self.name}/original" if self.original is not None else None,
        }


def load_samples(folder) -> dict[str, Sample]:
    """name -> Sample for every image directly inside `folder` (a Path or importlib Traversable)."""
    if folder is None or not folder.is_dir():
        return {}
    descriptions = {}
    readme = folder / "README.md"
    if readme.is_file():
        descriptions = dict(_README_ROW.findall(readme.read_text(encoding="utf-8")))
    originals = folder / "originals"
    samples = {}
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.is_file() or not entry.name.lower().endswith(IMAGE_EXTENSIONS):
            continue
        try:
            with Image.open(io.BytesIO(entry.read_bytes())) as image:
                width, height = image.size
        except OSError:
            continue  # a broken file is left out of the gallery rather than failing the server
        stem = entry.name.rsplit(".", 1)[0]
        title = stem.replace("-", " ").replace("_", " ").capitalize()
        original = originals / entry.name if originals.is_dir() and (originals / entry.name).is_file() else None
        samples[entry.name] = Sample(
            name=entry.name,
            title=title,
            description=descriptions.get(entry.name, title),
            width=width,
            height=height,
            media_type=mimetypes.guess_type(entry.name)[0] or "application/octet-stream",
            resource=entry,
            original=original,
        )
    return samples
