"""Camera capture, preprocessing exactly as the model expects, and stream health.

* :class:`ImagePreprocessor` -- crop (fractions of the raw frame), resize, colour order and
  normalization, all read from the model's metadata, so training and deployment agree.
* :class:`CameraHealth` -- frame age, frame rate, how frozen the stream looks, errors.
* :class:`OpenCVCamera` -- frames from a device index, a file, a URL or a GStreamer pipeline.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

NS = 1_000_000_000


class CameraError(RuntimeError):
    """A camera that cannot be opened or read."""


class ImagePreprocessor:
    """RGB uint8 frame -> the model's input tensor (1 x 3 x H x W float32)."""

    def __init__(self, size, crop=(0.0, 0.0, 1.0, 1.0), color_order='rgb',
                 mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)):
        self.width, self.height = (int(v) for v in size)
        x0, y0, x1, y1 = (float(v) for v in crop)
        if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
            raise ValueError(f'crop must be fractions x0 < x1, y0 < y1 in [0, 1], got {crop}')
        self.crop = (x0, y0, x1, y1)
        self.color_order = color_order
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)

    @classmethod
    def from_metadata(cls, meta) -> 'ImagePreprocessor':
        """As a model's metadata declares it."""
        return cls(meta.image_size, meta.image_crop, meta.color_order, meta.image_mean,
                   meta.image_std)

    def image(self, frame: np.ndarray) -> np.ndarray:
        """The cropped, resized, colour-ordered uint8 image (what ``image_processed`` shows)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise CameraError(f'expected an RGB uint8 frame (H x W x 3), got {frame.dtype} '
                              f'{frame.shape}')
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = self.crop
        cropped = frame[int(round(y0 * height)):int(round(y1 * height)),
                        int(round(x0 * width)):int(round(x1 * width))]
        if cropped.shape[:2] != (self.height, self.width):
            cropped = cv2.resize(cropped, (self.width, self.height), interpolation=cv2.INTER_AREA)
        if self.color_order == 'bgr':
            cropped = cv2.cvtColor(cropped, cv2.COLOR_RGB2BGR)
        return np.ascontiguousarray(cropped)

    def normalize(self, image: np.ndarray) -> np.ndarray:
        """NCHW float32 ``(pixel / 255 - mean) / std`` of an already processed image."""
        chw = image.transpose(2, 0, 1).astype(np.float32) / 255.0
        return ((chw - self.mean) / self.std)[None]

    def tensor(self, frame: np.ndarray) -> np.ndarray:
        """The model input of a raw frame: :meth:`image`, then :meth:`normalize`."""
        return self.normalize(self.image(frame))


class CameraHealth:
    """Liveness and quality of a frame stream.

    The frozen score compares each frame with the previous one on a 32 x 32 grey thumbnail:
    1.0 means identical, 0.0 means a difference of ``live_difference`` grey levels or more (a
    live camera's sensor noise alone exceeds ~0.5). A stream counts as frozen while the score
    stays above ``frozen_threshold``.
    """

    def __init__(self, frozen_threshold: float = 0.98, live_difference: float = 2.0,
                 rate_window: int = 30):
        self.frozen_threshold = frozen_threshold
        self.live_difference = live_difference
        self._times: list[int] = []
        self._window = rate_window
        self._thumb: np.ndarray | None = None
        self.last_frame_ns: int | None = None
        self.frozen_since_ns: int | None = None
        self.frozen_score = 0.0
        self.error_count = 0
        self.last_error = ''

    def on_frame(self, frame: np.ndarray, now_ns: int) -> None:
        """Account for a new frame received at ``now_ns``."""
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
        thumb = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        if self._thumb is not None:
            difference = float(np.mean(np.abs(thumb - self._thumb)))
            self.frozen_score = max(0.0, 1.0 - difference / self.live_difference)
            if self.frozen_score >= self.frozen_threshold:
                if self.frozen_since_ns is None:
                    self.frozen_since_ns = now_ns
            else:
                self.frozen_since_ns = None
        self._thumb = thumb
        self.last_frame_ns = now_ns
        self._times.append(now_ns)
        del self._times[:-self._window]

    def on_error(self, message: str) -> None:
        """A capture or conversion error."""
        self.error_count += 1
        self.last_error = message

    def frame_age(self, now_ns: int) -> float:
        """Seconds since the last frame (inf before the first)."""
        return math.inf if self.last_frame_ns is None else (now_ns - self.last_frame_ns) / NS

    def frame_rate(self) -> float:
        """Frames per second over the recent window."""
        if len(self._times) < 2:
            return 0.0
        return (len(self._times) - 1) * NS / max(1, self._times[-1] - self._times[0])

    def frozen_duration(self, now_ns: int) -> float:
        """Seconds the content has looked frozen (0 when live)."""
        return 0.0 if self.frozen_since_ns is None else (now_ns - self.frozen_since_ns) / NS

    def healthy(self, now_ns: int, camera_timeout: float, frozen_timeout: float) -> bool:
        """Frames arrive, are live, and the last attempt did not fail."""
        return (self.frame_age(now_ns) <= camera_timeout
                and self.frozen_duration(now_ns) <= frozen_timeout)


class OpenCVCamera:
    """A capture source: device index, file path, URL or GStreamer pipeline string."""

    def __init__(self, source: str | int, width: int = 0, height: int = 0):
        if isinstance(source, str) and source.isdigit():
            source = int(source)
        backend = cv2.CAP_GSTREAMER if isinstance(source, str) and '!' in source \
            else cv2.CAP_ANY
        self.capture = cv2.VideoCapture(source, backend)
        if not self.capture.isOpened():
            raise CameraError(f'cannot open camera source {source!r}')
        if width and height:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.source = source

    def read(self) -> np.ndarray:
        """The next frame as RGB uint8; raises :class:`CameraError` on failure."""
        ok, frame = self.capture.read()
        if not ok or frame is None:
            raise CameraError(f'camera {self.source!r}: no frame')
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        """Release the device."""
        self.capture.release()
