"""Configuration: TOML read once, validated into frozen objects, every problem reported.

Each section is a frozen dataclass (:mod:`kiosk.config.schema`); its fields,
types and defaults are the schema, checked by :mod:`kiosk.config.fields`.
Checks across keys (pins given twice, budgets against timeouts) are in
:mod:`kiosk.config.checks`. ``load_config`` collects every problem as
``file: section.key: message`` and raises one ConfigError.

The client secret is read from ``backend.client_secret_file`` into a
:class:`Secret`, whose ``str``/``repr`` are masked.
"""

from kiosk.config.load import DEFAULT_PATH, env_path, load_config, parse_config
from kiosk.config.schema import (
    REQUIRED_SECTIONS,
    SECTIONS,
    BackendConfig,
    CameraConfig,
    Config,
    CounterConfig,
    DeviceConfig,
    DisplayConfig,
    JournalConfig,
    LogConfig,
    MetricsConfig,
    OfflineConfig,
    ScannerConfig,
    SignalsConfig,
)
from kiosk.config.secret import MASK, MAX_SECRET_BYTES, Secret, read_secret_file

__all__ = [
    "DEFAULT_PATH",
    "MASK",
    "MAX_SECRET_BYTES",
    "REQUIRED_SECTIONS",
    "SECTIONS",
    "BackendConfig",
    "CameraConfig",
    "Config",
    "CounterConfig",
    "DeviceConfig",
    "DisplayConfig",
    "JournalConfig",
    "LogConfig",
    "MetricsConfig",
    "OfflineConfig",
    "ScannerConfig",
    "Secret",
    "SignalsConfig",
    "env_path",
    "load_config",
    "parse_config",
    "read_secret_file",
]
