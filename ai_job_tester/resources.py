"""Where the bundled test assets and seed config live.

A wheel carries them inside the package (``_bundled/``); a source checkout or an
editable install reads them from the repository's ``test-assets/`` and ``configs/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_BUNDLED = _PACKAGE_DIR / "_bundled"
_CHECKOUT = _PACKAGE_DIR.parent


def _first_existing(*candidates: Path) -> Path | None:
    return next((path for path in candidates if path.exists()), None)


def bundled_asset(name: str) -> Path | None:
    """Return the path of a bundled test asset, or None when it is not installed."""
    return _first_existing(_BUNDLED / "test-assets" / name, _CHECKOUT / "test-assets" / name)


TEST_SEGMENT = "test-segment.ts"
"""The 2 s, 640x360 MPEG-TS segment pushed for transcoding tests (make-assets.sh)."""


def transcode_segment() -> Path | None:
    """Return the path of the bundled transcoding test segment, or None when it is not installed."""
    return bundled_asset(TEST_SEGMENT)


def seed_config() -> Path | None:
    """Return the path of the shipped ``configs/config.json``."""
    return _first_existing(_BUNDLED / "configs" / "config.json", _CHECKOUT / "configs" / "config.json")
