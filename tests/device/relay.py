"""QEMU guestfwd helper: joins one guest connection (stdin/stdout) to 127.0.0.1:PORT.

QEMU starts ``relay.py PORT`` for every connection the guest opens to the forwarded
backend address. When nothing listens on PORT the guest's connection is closed at
once, as when the backend is down.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading


def main(argv: list[str]) -> int:
    port = int(argv[1])
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return 1
    sock.settimeout(None)

    def guest_to_host() -> None:
        try:
            while data := os.read(0, 65536):
                sock.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=guest_to_host, daemon=True).start()
    try:
        while data := sock.recv(65536):
            os.write(1, data)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
