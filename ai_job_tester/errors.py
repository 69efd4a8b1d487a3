"""The one exception hierarchy of ai-job-tester.

::

    TesterError                  exit 1: the tester could not do its job
    ├── ConfigError              exit 2: the config file is missing or invalid
    ├── LeaderboardRegionError   exit 2: the leaderboard has no AI region of the configured name
    ├── OnlineCheckError         exit 2: ``validate --online`` found an endpoint that does not answer
    ├── WebhookPortInUse         exit 1: the webhook cannot bind its address
    ├── StateDirError            exit 1: the state directory cannot be created or written
    ├── GatewayUnreachable       exit 1: the gateway does not accept connections
    ├── GatewayReplyError        exit 1: the gateway answered discovery with something unusable
    └── CycleLocked             exit 5: another cycle holds the state directory's lock

Orchestrator failures are never exceptions: they are data in a ``JobResult``.
Every message is one line that says what is wrong and what to do, and never
contains a secret.
"""

from __future__ import annotations


class TesterError(Exception):
    """Raised when the tester itself cannot complete the cycle."""

    __test__ = False  # pytest: a "Test…" name that is not a test class
    exit_code: int = 1


class ConfigError(TesterError):
    """Raised when the config file cannot be read or does not validate."""

    exit_code = 2


class LeaderboardRegionError(TesterError):
    """Raised when the leaderboard's regions do not include the configured region as an AI region."""

    exit_code = 2


class OnlineCheckError(TesterError):
    """Raised by ``validate --online`` when the gateway's CLI port or the leaderboard does not answer."""

    exit_code = 2


class StateDirError(TesterError):
    """Raised when the state directory cannot be created or written."""


class CycleLocked(TesterError):
    """Raised when another cycle is running with the same state directory."""

    exit_code = 5


class WebhookPortInUse(TesterError):
    """Raised when the webhook's address and port cannot be bound."""


class GatewayUnreachable(TesterError):
    """Raised when the gateway refuses or never accepts a connection."""


class GatewayReplyError(TesterError):
    """Raised when a discovery reply has a status or shape the tester cannot use."""
