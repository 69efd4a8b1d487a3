"""ai-job-tester: measures every orchestrator of the Livepeer AI network."""

__version__ = "0.1.0"
