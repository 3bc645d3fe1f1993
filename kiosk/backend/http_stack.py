"""What of the HTTP library the kiosk loads: requests without its encoding guesser.

``requests`` imports a character-set detector (``charset_normalizer``, 3-4 MB of
compiled modules) only to guess the text encoding of an answer that names none
(``Response.text``, ``apparent_encoding``). The kiosk reads every answer as JSON
bytes (:mod:`kiosk.backend.strict_json`), so the long-running ``kiosk run`` does
not load it: :func:`without_charset_guessing`, called before anything imports
``requests``, makes the detector unimportable for the process, which requests
supports (``apparent_encoding`` then says ``utf-8``). Nothing else changes.
"""

from __future__ import annotations

import sys
import warnings

__all__ = ["DETECTORS", "without_charset_guessing"]

DETECTORS = ("charset_normalizer", "chardet")


def without_charset_guessing() -> bool:
    """Keep requests' encoding detectors out of this process; False (and nothing done)
    when requests or a detector is loaded already. Call once, before ``import requests``."""
    if "requests" in sys.modules or any(sys.modules.get(d) is not None for d in DETECTORS):
        return False
    for name in DETECTORS:
        sys.modules[name] = None  # type: ignore[assignment]  # an import now raises ImportError
    # requests says once, at import, that it found no detector: expected here.
    warnings.filterwarnings(
        "ignore", message="Unable to find acceptable character detection", module="requests"
    )
    return True
