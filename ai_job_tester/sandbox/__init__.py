"""A simulated Livepeer network on loopback, for the demo and the integration tests.

>>> from ai_job_tester.sandbox import SimNetwork, demo_orchestrators
>>> with SimNetwork(demo_orchestrators()) as network:
...     config = network.tester_config(webhook_port=7934)
"""

from .leaderboard import SimLeaderboard, TranscodingRow
from .network import SimNetwork, demo_orchestrators
from .push import PushedSegment, SimStream
from .scenario import (
    Fault,
    ServedJob,
    SimModel,
    SimOrchestrator,
    TranscodeBehaviour,
    TranscodedSegment,
    TranscodeFault,
)

__all__ = [
    "Fault",
    "PushedSegment",
    "ServedJob",
    "SimLeaderboard",
    "SimModel",
    "SimNetwork",
    "SimOrchestrator",
    "SimStream",
    "TranscodeBehaviour",
    "TranscodeFault",
    "TranscodedSegment",
    "TranscodingRow",
    "demo_orchestrators",
]
