"""The Raspberry Pi camera through picamera2 (Raspberry Pi OS's ``python3-picamera2``).

Only the low-resolution YUV420 stream is read and only its Y (luma) plane is
used: the decoder needs grayscale, so no colour conversion is ever done.
Settings are tuned for a backlit phone screen held up to the lens:

- Camera Module 3 (it reports ``AfMode``): continuous autofocus; older modules:
  manual focus at ``lens_position`` when the lens can move, else nothing.
- Centre-weighted (or spot) metering, so the bright screen sets the exposure,
  not the room behind it, plus ``exposure_value`` (negative keeps the screen
  from blooming).
- Exposure capped at ``max_exposure_us`` to avoid motion blur: the frame
  duration is fixed by ``fps`` (a faster sensor would cost CPU in picamera2's
  request loop), and when the cap is shorter than a frame the AGC's ``Short``
  mode is selected and the shutter is fixed at the cap while analogue gain
  stays automatic (libcamera's AGC adjusts whichever of the two is not fixed).
  Under very bright light this can over-expose; lower ``max_exposure_us``.

picamera2 and libcamera are imported only when a camera is opened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from hardware.camera.frames import Frame
from kiosk.config import CameraConfig
from kiosk.errors import DeviceNotFound, DevicePermission, HardwareError

__all__ = ["PiCameraSource", "camera_controls_for"]

log = logging.getLogger(__name__)

# libcamera enum values (controls.AfModeEnum, AeMeteringModeEnum, AeExposureModeEnum)
AF_MANUAL, AF_CONTINUOUS = 0, 2
METERING = {"centre": 0, "spot": 1, "matrix": 2}
EXPOSURE_SHORT = 1


def camera_controls_for(cfg: CameraConfig, available: Mapping[str, Any]) -> dict[str, Any]:
    """libcamera controls for *cfg*, given the camera's ``camera_controls`` (name -> limits).

    Controls the camera does not offer are left out, so one function serves
    every module. Pure; used by PiCameraSource and its tests.
    """
    frame_us = int(1_000_000 / cfg.fps)
    controls: dict[str, Any] = {}
    if "AfMode" in available and cfg.autofocus == "continuous":
        controls["AfMode"] = AF_CONTINUOUS
    elif "LensPosition" in available:
        if "AfMode" in available:
            controls["AfMode"] = AF_MANUAL
        controls["LensPosition"] = cfg.lens_position
    if "AeMeteringMode" in available:
        controls["AeMeteringMode"] = METERING[cfg.metering]
    if "ExposureValue" in available:
        controls["ExposureValue"] = cfg.exposure_value
    controls["FrameDurationLimits"] = (frame_us, frame_us)
    if cfg.max_exposure_us < frame_us:
        if "AeExposureMode" in available:
            controls["AeExposureMode"] = EXPOSURE_SHORT
        if "ExposureTime" in available:
            # Fixed shutter at the cap; the AGC keeps adjusting analogue gain.
            controls["ExposureTime"] = cfg.max_exposure_us
    return controls


class PiCameraSource:
    """A FrameSource over picamera2's lores YUV420 stream.

    *picamera2* is the picamera2 module or a stand-in offering ``Picamera2``;
    by default the real module is imported here. Raises DeviceNotFound when no
    camera is connected or picamera2 is not installed, DevicePermission when
    the video devices may not be opened, HardwareError when the camera is busy.
    """

    def __init__(self, cfg: CameraConfig, *, picamera2: object | None = None) -> None:
        self._cfg = cfg
        self._size = (cfg.width - cfg.width % 2, cfg.height - cfg.height % 2)
        self._seq = 0
        self._lock = threading.Lock()
        self._closed = False
        module = picamera2 if picamera2 is not None else _import_picamera2()
        self._cam: Any = _open(module)
        try:
            self.controls = camera_controls_for(cfg, dict(self._cam.camera_controls))
            config = self._cam.create_video_configuration(
                main={"size": self._size, "format": "YUV420"},
                lores={"size": self._size, "format": "YUV420"},
                buffer_count=4,
                controls=self.controls,
            )
            self._cam.configure(config)
            self._cam.start()
        except Exception as exc:
            self._cam.close()
            raise _translate(exc) from exc
        log.info("camera started: %dx%d at %.1f fps, %s", *self._size, cfg.fps, self.controls)

    def read(self, timeout: float) -> Frame | None:
        if self._closed:
            return None
        try:
            array = self._cam.capture_array("lores", wait=timeout)
        except TimeoutError:
            return None
        except Exception as exc:
            if self._closed:
                return None
            raise _translate(exc) from exc
        at = time.monotonic()
        self._seq += 1
        w, h = self._size
        # YUV420 buffer: (h * 3 / 2) rows of `stride` bytes, the first h rows are Y.
        return Frame(pixels=array[:h, :w], seq=self._seq, at=at)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._cam.stop()
        finally:
            self._cam.close()


def _import_picamera2() -> object:
    try:
        import picamera2  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise DeviceNotFound(
            "python3-picamera2 is missing: it comes from the Raspberry Pi archive, so it is "
            "installed once the kiosk has a network (kiosk-packages.timer retries every 10 "
            "minutes; 'sudo kiosk-packages' tries now); a serial or HID scanner works meanwhile"
        ) from exc
    return picamera2


def _open(module: Any) -> Any:
    try:
        return module.Picamera2()
    except IndexError as exc:  # picamera2 indexes an empty camera list
        raise DeviceNotFound(
            "no camera found; check the ribbon cable and run 'rpicam-hello --list-cameras'"
        ) from exc
    except Exception as exc:
        raise _translate(exc) from exc


def _translate(exc: BaseException) -> HardwareError:
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, PermissionError) or "permission" in lowered:
        return DevicePermission(f"camera: {text}; add the kiosk user to the 'video' group")
    if "busy" in lowered or "acquire" in lowered:
        return HardwareError(
            f"camera busy ({text}); stop the other program using it (rpicam-*, another kiosk)"
        )
    if isinstance(exc, (FileNotFoundError, IndexError)) or "no camera" in lowered:
        return DeviceNotFound(f"camera not found ({text}); check the cable and camera_auto_detect")
    return HardwareError(f"camera failed: {text or type(exc).__name__}")
