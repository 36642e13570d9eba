"""Workflow files: loading YAML or JSON with positions, checking them against the shipped
JSON Schema (``workflow.schema.json``) and the graph rules of
:mod:`jupyter_orch.core.workflow`, and reporting every problem at its line and column."""
