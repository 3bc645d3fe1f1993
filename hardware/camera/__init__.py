"""Camera input: frame sources (Pi camera, replay twin) and the decoding reader thread."""

from hardware.camera.frames import Frame, FrameSource, ReplaySource
from hardware.camera.picam import PiCameraSource, camera_controls_for
from hardware.camera.reader import CameraReader, IdleGate, thumbnail

__all__ = [
    "CameraReader",
    "Frame",
    "FrameSource",
    "IdleGate",
    "PiCameraSource",
    "ReplaySource",
    "camera_controls_for",
    "thumbnail",
]
