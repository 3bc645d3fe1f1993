"""SmartumPay counter kiosk: verifies receipts and charges payment codes exactly once."""

__version__ = "0.1.0"
