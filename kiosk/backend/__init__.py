"""The payment backend as the kiosk sees it.

- :mod:`kiosk.backend.client` — :class:`~kiosk.backend.client.BackendClient`, the only
  module that talks HTTP (through :mod:`kiosk.backend._exchange`);
- :mod:`kiosk.backend.bodies` — request bodies and their one canonical JSON encoding;
- :mod:`kiosk.backend._wire` — the documented answers as values, decoded strictly;
- :mod:`kiosk.backend.strict_json` — JSON parsing for untrusted text.

Nothing is re-exported here, so importing one leaf (``strict_json``) does not
pull in ``requests``.
"""
