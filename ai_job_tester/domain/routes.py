"""What the tester knows about each pipeline route, from the Livepeer contract (section 5).

The gateway names a capability ("Text to image") and serves it on a route
("text-to-image"): the route is the name lower-cased with spaces turned into
hyphens. Pipelines are matched by route, never by display name.
"""

from __future__ import annotations

from typing import Final

LIVE_ROUTE_PREFIX: Final = "live-"

IMAGE_ASSET: Final = "test-image.png"
UPSCALE_ASSET: Final = "test-upscale.jpg"
AUDIO_ASSET: Final = "test-audio.mp4"

# Routes whose multipart form carries no file (the pre-0.8.3 /llm form).
_ROUTES_WITHOUT_FILE: Final = frozenset({"llm"})


def route_of(capability: str) -> str:
    """Return the HTTP route the gateway serves a capability on."""
    return "-".join(capability.strip().lower().split())


def normalise_route(uri: str) -> str:
    """Return a configured ``uri`` in the canonical form: no slashes, lower-case."""
    return uri.strip().strip("/").lower()


def is_request_route(route: str) -> bool:
    """Tell whether a route is a request/response job (live video is a stream)."""
    return not route.startswith(LIVE_ROUTE_PREFIX)


def is_live_capability(capability: str) -> bool:
    """Tell whether a capability the gateway names is a live stream rather than a request/response job."""
    return not is_request_route(route_of(capability))


def default_model_field(route: str, content_type: str) -> str:
    """Return the field that names the model: ``model`` only for the JSON ``/llm``."""
    if route == "llm" and content_type == "application/json":
        return "model"
    return "model_id"


def default_file_field(route: str) -> str:
    """Return the multipart field the test file is sent in."""
    return "audio" if route == "audio-to-text" else "image"


def default_asset(route: str) -> str | None:
    """Return the bundled test file a multipart route sends, or None when it sends none."""
    if route in _ROUTES_WITHOUT_FILE:
        return None
    if route == "audio-to-text":
        return AUDIO_ASSET
    if route == "upscale":
        return UPSCALE_ASSET
    return IMAGE_ASSET
