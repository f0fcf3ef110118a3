"""PNG images (e.g. exported radiographs) as one-slice volumes.

* Values: 8- and 16-bit grayscale are kept exactly (uint8 / uint16; 1-bit becomes uint8 0/1). Colour images
  whose channels are all equal (gray saved as RGB or palette) are read as that gray channel, exactly. A real
  colour image, or one with transparency that is used, is refused: converting it to gray would change values
  silently, which is not the reader's call.
* Geometry: row 0 is the top of the picture; I runs along a row (left to right), J down the rows, K is a single
  slice; identity direction, origin 0, so Slicer's axial view shows the picture upright.
* Spacing: 1 mm, unless the PNG has a pHYs chunk in metres, whose pixels per metre give the pixel size
  (K spacing stays 1 mm). Beware: many programs write 72 or 96 dpi there, which is no physical size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from medai.errors import MedAIError
from medai.volume import Volume

_GRAY_MODES = {"L": np.uint8, "I;16": np.uint16, "I;16B": np.uint16, "I": None, "1": np.uint8}
_METRES_PER_INCH = 0.0254


def read_image2d(path: Path) -> Volume:
    """Read a PNG file into a (1, rows, columns) volume; errors name the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                raise MedAIError(f"is a {image.format} image, not PNG", path)
            image.load()
            pixels = _gray_pixels(image, path)
            spacing = _pixel_size_mm(image.info)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise MedAIError(f"is not a readable PNG image ({error})", path) from None
    return Volume(pixels[None], [*(spacing or (1.0, 1.0)), 1.0], np.zeros(3), np.eye(3),
                  {"source": str(path), "pixel_size_from_file": spacing is not None})


def _gray_pixels(image, path: Path) -> np.ndarray:
    """The image as a 2D gray array, exactly, or an error for real colour."""
    if image.mode in _GRAY_MODES:
        array = np.asarray(image)
        dtype = _GRAY_MODES[image.mode]
        if dtype is None:  # 32-bit mode "I": Pillow's view of 16-bit gray
            dtype = np.uint16 if array.min() >= 0 and array.max() <= np.iinfo(np.uint16).max else np.int32
        return array.astype(dtype)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode not in ("LA", "RGB", "RGBA"):
        raise MedAIError(f"has pixel mode {image.mode}; MedAI reads grayscale PNG images", path)
    array = np.asarray(image)
    colour, alpha = (array[..., :-1], array[..., -1]) if image.mode in ("LA", "RGBA") else (array, None)
    if alpha is not None and np.any(alpha != np.iinfo(array.dtype).max):
        raise MedAIError("has transparent pixels; MedAI reads opaque grayscale PNG images", path)
    if np.any(colour != colour[..., :1]):
        raise MedAIError("is a colour image; convert it to grayscale first (MedAI does not guess how)", path)
    return np.ascontiguousarray(colour[..., 0])


def _pixel_size_mm(info: dict) -> Optional[tuple[float, float]]:
    """(along I, along J) in mm from a pHYs chunk in metres (Pillow reports it as dpi), else None."""
    if "dpi" not in info:
        return None
    per_metre = [round(float(d) / _METRES_PER_INCH) for d in info["dpi"]]  # pHYs stores whole pixels per metre
    if min(per_metre) <= 0:
        return None
    return 1000.0 / per_metre[0], 1000.0 / per_metre[1]
