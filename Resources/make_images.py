"""Draw the extension's icons and screenshot from a real MRI: Colin27 (apt-get install mricron-data).

The overlay is Colin27's own skull-stripped copy (ch2bet > 0), the reference brain mask, drawn the way Slicer
shows a segment. Run from the repository root: ``.venv/bin/python Resources/make_images.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image, ImageDraw, ImageFilter, ImageFont

TEMPLATES = Path("/usr/share/mricron/templates")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
ROOT = Path(__file__).resolve().parent.parent
BACKGROUND = (29, 39, 51)
SEGMENT = (64, 200, 160)  # the segment's colour in the pictures
ICON = 128


def load(name: str) -> np.ndarray:
    """A template as an array indexed [S, P, L] (axial slices, rows anterior to posterior, columns right to left)."""
    image = sitk.DICOMOrient(sitk.ReadImage(str(TEMPLATES / name)), "LPS")
    return sitk.GetArrayFromImage(image)


def views(t1: np.ndarray, mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Axial, coronal and sagittal slices through the brain of the image and of the mask, superior up.

    The sagittal slice is 2 cm off the midline, where the skull-strip has no interhemispheric streaks.
    """
    k, j, i = (int(np.mean(axis)) for axis in np.nonzero(mask))
    i += 20
    return [(t1[k], mask[k]),
            (t1[::-1, j, :], mask[::-1, j, :]),
            (t1[::-1, :, i], mask[::-1, :, i])]


def overlay(slice_: np.ndarray, mask: np.ndarray, size: int) -> Image.Image:
    """The slice in grey with the mask filled (40 %) and outlined, as a square RGB picture ``size`` wide."""
    grey = np.clip(slice_.astype(float) / np.percentile(slice_, 99.5), 0, 1)
    rgb = np.repeat((255 * grey)[..., None], 3, axis=2)
    inside = mask > 0
    rgb[inside] = 0.6 * rgb[inside] + 0.4 * np.array(SEGMENT)
    picture = Image.fromarray(rgb.astype(np.uint8))
    edge = Image.fromarray((inside * 255).astype(np.uint8)).filter(ImageFilter.FIND_EDGES)
    picture.paste(SEGMENT, mask=edge)
    side = max(picture.size)
    square = Image.new("RGB", (side, side))
    square.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
    return square.resize((size, size), Image.LANCZOS)


def rounded(picture: Image.Image, radius: int = 22) -> Image.Image:
    """``picture`` on a transparent background with rounded corners."""
    corners = Image.new("L", picture.size, 0)
    ImageDraw.Draw(corners).rounded_rectangle((0, 0, picture.width - 1, picture.height - 1), radius, fill=255)
    out = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    out.paste(picture, mask=corners)
    return out


def classification_icon(axial_grey: Image.Image) -> Image.Image:
    """The slice above three probability bars, the first one highlighted."""
    icon = Image.new("RGB", (ICON, ICON), BACKGROUND)
    icon.paste(axial_grey.resize((80, 80), Image.LANCZOS), (24, 4))
    draw = ImageDraw.Draw(icon)
    for row, (length, colour) in enumerate(((100, SEGMENT), (46, (150, 160, 175)), (22, (150, 160, 175)))):
        top = 90 + 12 * row
        draw.rounded_rectangle((14, top, 14 + length, top + 8), 3, fill=colour)
    return rounded(icon)


def extension_icon(axial: Image.Image) -> Image.Image:
    """The segmentation picture with an "AI" badge."""
    icon = axial.copy()
    draw = ImageDraw.Draw(icon)
    draw.rounded_rectangle((70, 88, 122, 122), 8, fill=BACKGROUND, outline=SEGMENT, width=3)
    draw.text((96, 105), "AI", font=ImageFont.truetype(FONT, 22), fill=(255, 255, 255), anchor="mm")
    return rounded(icon)


def screenshot(pictures: list[Image.Image]) -> Image.Image:
    """The three views side by side under a title, as Slicer's three-over-one layout shows them."""
    size, gap, title = pictures[0].width, 8, 44
    shot = Image.new("RGB", (3 * size + 4 * gap, size + title + gap), BACKGROUND)
    draw = ImageDraw.Draw(shot)
    draw.text((gap, title // 2), "MedAISeg: brain segmentation overlaid on a T1 MRI (Colin27), axial, coronal, sagittal",
              font=ImageFont.truetype(FONT, 18), fill=(235, 235, 235), anchor="lm")
    for n, picture in enumerate(pictures):
        shot.paste(picture, (gap + n * (size + gap), title))
    return shot


def main() -> None:
    t1, mask = load("ch2.nii.gz"), (load("ch2bet.nii.gz") > 0)
    slices = views(t1, mask)
    axial = overlay(*slices[0], ICON)
    axial_grey = overlay(slices[0][0], np.zeros_like(slices[0][1]), ICON)
    outputs = {
        ROOT / "MedAISeg/Resources/Icons/MedAISeg.png": rounded(axial),
        ROOT / "MedAIClassify/Resources/Icons/MedAIClassify.png": classification_icon(axial_grey),
        ROOT / "Resources/Icons/MedAI.png": extension_icon(axial),
        ROOT / "Resources/Screenshots/MedAISeg.png": screenshot([overlay(s, m, 400) for s, m in slices]),
    }
    for path, picture in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path, optimize=True)
        print(f"{path.relative_to(ROOT)}: {picture.size[0]}x{picture.size[1]}")


if __name__ == "__main__":
    main()
