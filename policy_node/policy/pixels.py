"""Camera frames as pixel arrays: what a vision policy reads, whatever the wire carried.

A frame reaches a policy as an uncompressed ``foxglove.RawImage`` (rgb8,
bgr8, rgba8, bgra8, mono8...) or a ``foxglove.CompressedImage`` (JPEG,
PNG). Policies should not care which: ``to_rgb`` turns either into one
``(height, width, 3)`` uint8 array in RGB order (a mono frame is repeated
over the three channels). The same conversion serves the live policy node,
``hil bag check-policy`` (frames from a bag) and the video export, so a
policy sees the same pixels in all three.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import cv2
import numpy as np

from bus.errors import HilError
from bus.images import RAW_ENCODINGS
from roarm.camera import CameraSpec, CameraSpecError

# Raw encodings that can become 8-bit RGB (the others, depth or YUV, are not images a colour policy reads).
COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1", "8UC3")


class PixelError(HilError, ValueError):
    """A frame that cannot be turned into RGB pixels (its encoding, or bytes that do not decode)."""


def raw_array(encoding: str, width: int, height: int, row_stride: int, data: bytes | memoryview) -> np.ndarray:
    """The pixels of a raw frame as ``(height, width, channels)`` (a view when the rows are packed)."""
    layout = RAW_ENCODINGS.get(encoding)
    if layout is None:
        raise PixelError(f"unknown raw encoding {encoding!r}")
    bpp, channels = layout
    dtype = {1: np.uint8, 2: np.uint16, 4: np.float32}[bpp // channels]
    flat = np.frombuffer(data, dtype=np.uint8)
    if flat.size != row_stride * height:
        raise PixelError(f"{flat.size} bytes for {height} rows of {row_stride} bytes")
    rows = flat.reshape(height, row_stride)[:, : width * bpp]
    return np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)


def to_rgb(encoding: str, width: int, height: int, row_stride: int, data: bytes | memoryview,
           compressed: bool = False) -> np.ndarray:
    """``(height, width, 3)`` uint8 RGB pixels of a raw (``encoding`` rgb8...) or compressed (jpeg/png) frame."""
    if compressed:
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise PixelError(f"the {encoding} data does not decode")
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if encoding not in COLOUR_ENCODINGS:
        raise PixelError(f"{encoding} frames are not 8-bit colour or grey images (known: {', '.join(COLOUR_ENCODINGS)})")
    pixels = raw_array(encoding, width, height, row_stride, data)
    if encoding == "rgb8":
        return np.ascontiguousarray(pixels)
    if encoding in ("bgr8", "8UC3"):  # 8UC3 is OpenCV's (BGR) order, as Foxglove shows it
        return np.ascontiguousarray(pixels[..., ::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[..., :3])
    if encoding == "bgra8":
        return np.ascontiguousarray(pixels[..., 2::-1])
    return np.repeat(pixels, 3, axis=2)  # mono8, 8UC1


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB ``(height, width, 3)`` uint8 image."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise PixelError(f"OpenCV could not encode a {rgb.shape} image as JPEG")
    return data.tobytes()


def scaled_intrinsics(k: Sequence[float], calibrated: tuple[int, int], frame: tuple[int, int]) -> np.ndarray | None:
    """The 3x3 camera matrix of a calibration (``k``: its 9 values, row-major, for ``calibrated`` (width,
    height)) for a frame of ``frame`` (width, height) pixels; None when the calibration says too little."""
    if len(k) != 9 or not calibrated[0] or not calibrated[1]:
        return None
    out = np.array(k, dtype=float).reshape(3, 3)
    out[0] *= frame[0] / calibrated[0]
    out[1] *= frame[1] / calibrated[1]
    out.flags.writeable = False
    return out


def camera_specs(extra_cameras: str) -> dict[str, CameraSpec]:
    """The cameras a robot describes in ``info.extra["cameras"]`` (JSON list of CameraSpec.to_dict), by name;
    cameras that do not read are left out (a policy then has no pose for them)."""
    try:
        items = json.loads(extra_cameras) if extra_cameras else []
    except ValueError:
        return {}
    out = {}
    for item in items if isinstance(items, list) else []:
        try:
            spec = CameraSpec.from_dict(item)
        except (CameraSpecError, TypeError, AttributeError):
            continue
        out[spec.name] = spec
    return out
