"""Device drivers for the kiosk, each beside a simulated twin with the same interface.

Pi-only libraries (picamera2, lgpio, evdev, systemd) are imported lazily inside
the class that needs them, so this package imports on any Linux machine.
"""
