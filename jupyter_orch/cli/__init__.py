"""The ``jupyter orch`` command line: serve, worker, submit, status, logs, cancel, retry,
workers and token."""
