"""The pure core of jupyter-orch: task spec, resources, states, scheduler, worker protocol.

Nothing in this package performs I/O or imports tornado, SQLAlchemy, kubernetes or
IPython (an import-linter contract in the tests enforces it), so every rule here can be
unit-tested without a server.
"""
