"""The selftest's scanner and camera lines: each configured source by its own check.

The check of each :class:`~kiosk.source_kinds.SourceKind` comes from the source
registry (:func:`kiosk.sources.spec`); none stands in for another.
"""

from __future__ import annotations

from kiosk.config import Config
from kiosk.selftest.base import SKIP, Drivers, PartResult
from kiosk.source_kinds import SourceKind, needs
from kiosk.sources import spec

__all__ = ["camera_source", "check_camera", "check_scanner", "scanner_sources"]


def scanner_sources(cfg: Config) -> tuple[SourceKind, ...]:
    """The configured sources that are scanners (not the camera pipeline), in order."""
    return tuple(s for s in cfg.scanner.sources if not needs(s).camera)


def camera_source(cfg: Config) -> SourceKind | None:
    """The configured source fed through the camera pipeline (``camera`` or ``replay``)."""
    return next((s for s in cfg.scanner.sources if needs(s).camera), None)


def check_scanner(
    cfg: Config, d: Drivers, camera: PartResult, source: SourceKind | None = None
) -> PartResult:
    """Scanner *source* (default: the first configured) by its own check; the camera's
    result when the camera is the only source."""
    source = source or (scanner_sources(cfg) or cfg.scanner.sources)[0]
    return spec(source).scanner_check(cfg, d, camera)


def check_camera(cfg: Config, d: Drivers) -> PartResult:
    """The camera pipeline's source gives a frame; SKIP when no source uses it."""
    which = camera_source(cfg)
    if which is None:
        used = ", ".join(cfg.scanner.sources)
        return PartResult("camera", SKIP, f"not used ([scanner] source = {used})")
    frames = spec(which).frames_check
    if frames is None:  # needs() and spec() disagree: a fault in the registry, said plainly
        raise AssertionError(f"source {which} is fed through the camera but has no frame check")
    return frames(cfg, d)
