"""Images decoded one way, by record and by the steps that read a dataset: what record checked
(size, orientation) is what the model sees.

Labelme shows an image rotated as its EXIF orientation says, and its annotations are of that
view; the orientation is looked for wherever the file keeps it (a PNG may store its eXIf chunk
after the image data, where a header-only reader misses it). Pixels become 8-bit RGB, faithfully:
16-bit samples are scaled, not clipped (clipping turns a 16-bit PNG into a white image), and an
image whose samples have no faithful 8-bit form (floats, 32-bit integers) is refused.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from steps.image_limits import MAX_PIXELS

_EXIF_ORIENTATION = 0x0112
# What turns an image as stored into the image as shown, per EXIF orientation (as ImageOps does).
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
TRANSPOSING = (5, 6, 7, 8)  # orientations that swap width and height
# Modes PIL converts to RGB as a viewer shows them; 16-bit grey is scaled here; anything else is refused.
_EIGHT_BIT = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}


class TooManyPixels(ValueError):
    """An image whose header declares more than MAX_PIXELS pixels (a decompression bomb)."""


class Unfaithful(ValueError):
    """An image whose pixels have no faithful 8-bit RGB form."""


def open_image(data: bytes) -> Image.Image:
    """Image.open (reads the header only), refusing an image of more than MAX_PIXELS pixels.

    PIL itself only warns between its limit and twice that, and raises above: the limit is checked
    on the header, before anything is decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, as an error
            opened = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise TooManyPixels(f"has more than {2 * MAX_PIXELS:,} pixels (a decompression bomb?); not used") from None
    width, height = opened.size
    if width * height > MAX_PIXELS:
        opened.close()
        raise TooManyPixels(f"is {width}x{height}, more than {MAX_PIXELS:,} pixels (a decompression bomb?); not used")
    return opened


def orientation(opened: Image.Image, data: bytes) -> int:
    """The EXIF orientation (1: as stored), without decoding pixels; in a PNG, its eXIf chunk
    wherever it is (PIL's header sees it only before the image data)."""
    if opened.format == "PNG":
        raw = opened.info.get("exif") or _png_exif(data)
        if not raw:
            return 1
        exif = Image.Exif()
        try:
            exif.load(raw)
        except (struct.error, ValueError, OSError, SyntaxError, EOFError, KeyError, TypeError):
            return 1  # unreadable EXIF says nothing: the image as stored, for every reader alike
    else:
        try:
            exif = opened.getexif()
        except (struct.error, ValueError, OSError, SyntaxError, EOFError, KeyError, TypeError):
            return 1
    value = exif.get(_EXIF_ORIENTATION, 1)
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _png_exif(data: bytes) -> bytes | None:
    """The eXIf chunk of a PNG, found by walking its chunks (lengths and types, no decoding)."""
    position = 8  # the signature
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"eXIf":
            return data[position + 8: position + 8 + length]
        if kind == b"IEND":
            return None
        position += 12 + length
    return None


def faithful_problem(opened: Image.Image) -> str | None:
    """Why the image's pixels cannot become 8-bit RGB faithfully, or None."""
    if opened.mode in _EIGHT_BIT or opened.mode in _SIXTEEN_BIT:
        return None
    return (f"has {opened.mode!r} pixels (e.g. floats or 32-bit integers), which have no faithful 8-bit RGB form; "
            "export it as an 8- or 16-bit PNG or a JPEG")


def needs_rewriting(opened: Image.Image, turn: int) -> bool:
    """Whether an image must be re-encoded for a dataset (turned upright, or 16-bit made 8-bit) so
    that every reader, ours or not, sees what the annotator saw."""
    return turn != 1 or opened.mode in _SIXTEEN_BIT


def decode_rgb(data: bytes) -> Image.Image:
    """The image as the annotator saw it: upright, 8-bit RGB. TooManyPixels, Unfaithful, or PIL's
    own errors (OSError, ...) when it cannot be decoded."""
    with open_image(data) as opened:
        problem = faithful_problem(opened)
        if problem:
            raise Unfaithful(problem)
        turn = orientation(opened, data)
        opened.load()
        if opened.mode in _SIXTEEN_BIT:
            samples = np.asarray(opened, dtype=np.uint16).astype(np.float32) / 257.0
            picture = Image.fromarray(np.round(samples).astype(np.uint8), "L").convert("RGB")
        else:
            picture = opened.convert("RGB")
    return picture.transpose(_TRANSPOSE[turn]) if turn in _TRANSPOSE else picture


def load_rgb(path: Path) -> Image.Image:
    """`decode_rgb` of a file."""
    return decode_rgb(Path(path).read_bytes())
