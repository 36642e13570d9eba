"""Helpers shared by the tests: a real orch server in a subprocess, event waits."""
