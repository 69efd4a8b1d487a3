"""A simulated Livepeer network on loopback, for the demo and the integration tests.

>>> from ai_job_tester.sandbox import SimNetwork, demo_orchestrators
>>> with SimNetwork(demo_orchestrators()) as network:
...     config = network.tester_config(webhook_port=7934)
"""

from .leaderboard import SimLeaderboard
from .network import SimNetwork, demo_orchestrators
from .scenario import Fault, ServedJob, SimModel, SimOrchestrator

__all__ = [
    "Fault",
    "ServedJob",
    "SimLeaderboard",
    "SimModel",
    "SimNetwork",
    "SimOrchestrator",
    "demo_orchestrators",
]
