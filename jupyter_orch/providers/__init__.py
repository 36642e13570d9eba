"""Providers: where workers come from (local processes, static hosts, later Kubernetes).

Whatever the provider, workers speak the same protocol to the same server: the scheduler
only ever places tasks on connected workers. A provider is asked for capacity when tasks
wait that nothing can place, and told which workers are idle.
"""

from .base import Provider, ProviderContext
from .local import LocalProvider
from .static import StaticProvider

PROVIDERS = {"local": LocalProvider, "static": StaticProvider}

__all__ = ["PROVIDERS", "LocalProvider", "Provider", "ProviderContext", "StaticProvider"]
