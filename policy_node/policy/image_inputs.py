"""Image inputs of a policy description: which camera feeds which model tensor, and how.

A vision model takes its pixels as one or more tensors of their own, beside
the joint observation vector. Each entry of a description's ``images`` list
names the camera (its bus name: ``camera/<camera>/image`` or
``.../compressed``) and says how the frame becomes the tensor::

    images:
      - camera: front          # the camera's name on the bus
        input: image           # the model's input tensor (default: the model's only other input)
        size: [64, 48]         # width x height after resizing (default: as the camera sends it)
        layout: NCHW           # or NHWC
        dtype: float32         # float32, float16, float64 or uint8
        channels: rgb          # rgb, bgr or gray
        scale: 0.00392156862745098   # pixel value * scale (default 1/255; 1 for uint8)
        mean: [0.485, 0.456, 0.406]  # then (value - mean) / std, per channel (optional)
        std: [0.229, 0.224, 0.225]
        max_age_ms: 100        # a real camera's frame may be this much older than the state

``ImagePreprocessor`` turns an RGB frame into the tensor, into one array
allocated at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from bus.topics import CAMERA_NAME
from bus.yamlsource import child
from bus.fields import MISSING, Fields, shown

LAYOUTS = ("NCHW", "NHWC")
IMAGE_DTYPES = ("float32", "float16", "float64", "uint8")
CHANNEL_ORDERS = ("rgb", "bgr", "gray")
IMAGE_KEYS = ("camera", "input", "size", "layout", "dtype", "channels", "scale", "mean", "std", "max_age_ms")
DEFAULT_MAX_AGE_MS = 100.0


@dataclass(frozen=True)
class ImageInput:
    """One camera feeding one model tensor (module docstring). ``size`` None: the frame's own size."""

    camera: str
    input: str | None = None
    size: tuple[int, int] | None = None  # (width, height)
    layout: str = "NCHW"
    dtype: str = "float32"
    channels: str = "rgb"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    max_age_ms: float = DEFAULT_MAX_AGE_MS

    @property
    def depth(self) -> int:
        return 1 if self.channels == "gray" else 3

    def shape(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The tensor's shape, batch 1, for a frame of ``width`` x ``height`` (resized to ``size`` if given)."""
        w, h = self.size or (width, height)
        return (1, self.depth, h, w) if self.layout == "NCHW" else (1, h, w, self.depth)


def parse_images(f: Fields, value: Any) -> tuple[ImageInput, ...]:
    """The ``images`` list, every problem reported as ``file:line: images[i].field: ...``."""
    out: list[ImageInput] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(f.sequence("images", value)):
        path = child("images", i)
        m = f.mapping(path, item, IMAGE_KEYS, required=("camera",))
        camera = f.string(child(path, "camera"), m.get("camera", MISSING))
        if camera is not None and not CAMERA_NAME.fullmatch(camera):
            f.error(child(path, "camera"), f"{shown(camera)} is not a camera name: 1 to 32 of a-z, 0-9 and _ "
                                           "(as in the topic camera/<name>/image)")
            camera = None
        tensor = f.string(child(path, "input"), m.get("input", MISSING))
        key = tensor or f"(camera {camera})"
        if key in seen:
            f.error(child(path, "input"), f"the tensor {key} is fed twice ({seen[key]} and {path}): one camera per "
                                          "input")
        seen[key] = path
        size = _size(f, child(path, "size"), m.get("size", MISSING))
        layout = f.choice(child(path, "layout"), m.get("layout", MISSING), LAYOUTS, "NCHW")
        dtype = f.choice(child(path, "dtype"), m.get("dtype", MISSING), IMAGE_DTYPES, "float32")
        channels = f.choice(child(path, "channels"), m.get("channels", MISSING), CHANNEL_ORDERS, "rgb")
        depth = 1 if channels == "gray" else 3
        scale = f.number(child(path, "scale"), m.get("scale", MISSING), 1.0 if dtype == "uint8" else 1.0 / 255.0,
                         gt=0.0)
        mean = f.per_item(child(path, "mean"), m.get("mean", MISSING), depth, None, "channels")
        std = f.per_item(child(path, "std"), m.get("std", MISSING), depth, None, "channels")
        if ("mean" in m) != ("std" in m):
            f.error(path, "give both 'mean' and 'std' (std 1 for a shift only, mean 0 for a scale only)")
        if std is not None and any(s <= 0 for s in std):
            f.error(child(path, "std"), "every std must be > 0")
            std = None
        if dtype == "uint8" and (mean is not None or (scale is not None and scale != 1.0)):
            f.error(child(path, "dtype"), "a uint8 input takes the pixels as they are: leave out scale, mean and std")
        max_age = f.number(child(path, "max_age_ms"), m.get("max_age_ms", MISSING), DEFAULT_MAX_AGE_MS, gt=0.0)
        if camera is None:
            continue
        both = mean is not None and std is not None
        out.append(ImageInput(camera, tensor, size, layout, dtype, channels, scale or 1.0 / 255.0,
                              mean if both else None, std if both else None, max_age or DEFAULT_MAX_AGE_MS))
    return tuple(out)


def _size(f: Fields, path: str, value: Any) -> tuple[int, int] | None:
    if value is MISSING or value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                  and 0 < v <= 8192 for v in value)):
        f.error(path, f"expected [width, height] in pixels (two whole numbers, 1 to 8192), got {shown(value)}")
        return None
    return int(value[0]), int(value[1])


def image_data(image: ImageInput) -> dict[str, Any]:
    """The ``images`` entry a description file holds for ``image`` (``parse_images`` reads it back)."""
    out: dict[str, Any] = {"camera": image.camera}
    if image.input is not None:
        out["input"] = image.input
    if image.size is not None:
        out["size"] = list(image.size)
    out.update(layout=image.layout, dtype=image.dtype, channels=image.channels)
    if image.dtype != "uint8":
        out["scale"] = image.scale
    if image.mean is not None and image.std is not None:
        out["mean"], out["std"] = list(image.mean), list(image.std)
    out["max_age_ms"] = image.max_age_ms
    return out


class ImagePreprocessor:
    """RGB frame -> the model's image tensor, into one array made at the first frame (or at ``prepare``)."""

    def __init__(self, image: ImageInput) -> None:
        self.image = image
        self.tensor: np.ndarray | None = None
        self._size: tuple[int, int] | None = None
        depth = image.depth
        self._mean = None if image.mean is None else np.asarray(image.mean, np.float32).reshape(1, 1, depth)
        self._inv_std = None if image.std is None else 1.0 / np.asarray(image.std, np.float32).reshape(1, 1, depth)

    def prepare(self, width: int, height: int) -> np.ndarray:
        """The tensor for frames of this size (allocated once; a frame of another size reallocates)."""
        size = self.image.size or (width, height)
        if self.tensor is None or self._size != (width, height):
            self.tensor = np.zeros(self.image.shape(*size), dtype=np.dtype(self.image.dtype))
            self._size = (width, height)
        return self.tensor

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Fill and return the tensor for ``rgb`` ((H, W, 3) uint8)."""
        height, width = rgb.shape[:2]
        tensor = self.prepare(width, height)
        image = self.image
        pixels = rgb
        if image.size is not None and image.size != (width, height):
            pixels = cv2.resize(rgb, image.size, interpolation=cv2.INTER_AREA)
        if image.channels == "bgr":
            pixels = pixels[..., ::-1]
        elif image.channels == "gray":
            pixels = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)[..., None]
        if image.dtype == "uint8":
            values = pixels
        else:
            values = pixels.astype(np.float32) * np.float32(image.scale)
            if self._mean is not None and self._inv_std is not None:
                values = (values - self._mean) * self._inv_std
        if image.layout == "NCHW":
            tensor[0] = np.transpose(values, (2, 0, 1))
        else:
            tensor[0] = values
        return tensor
