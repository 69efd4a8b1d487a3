"""The config file: its schema (pure) and loading it from disk and the environment."""

from .loading import SECRET_VARIABLES, check_asset, load_config, parse_config
from .schema import DEFAULT_JOB_TIMEOUT_SECONDS, Config, GatewayConfig, LiveVideoConfig, PipelineConfig, PromptVariant

__all__ = [
    "DEFAULT_JOB_TIMEOUT_SECONDS",
    "SECRET_VARIABLES",
    "Config",
    "GatewayConfig",
    "LiveVideoConfig",
    "PipelineConfig",
    "PromptVariant",
    "check_asset",
    "load_config",
    "parse_config",
]
