"""The server extension: ``OrchApp`` (a jupyter-server ExtensionApp), REST and WebSocket
handlers under ``/orch/api/v1``, the OpenAPI document and Prometheus metrics."""
