"""What the customers' app tests share: a photo as a phone's camera takes it."""

from __future__ import annotations

import cv2
import numpy as np


def camera_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A real JPEG like a phone camera's: a gradient with a dark shape, encoded by OpenCV."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, :, 1] = np.linspace(40, 220, width, dtype=np.uint8)
    cv2.rectangle(frame, (width // 4, height // 4), (width // 2, height // 2), (20, 20, 160), -1)
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return encoded.tobytes()
