"""Chaos tests: real servers and workers killed, cut off and restarted mid-run."""
