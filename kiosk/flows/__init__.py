"""The kiosk's flows: the engine that turns scans into outcomes, and the sync worker."""
