"""Providers: where workers come from (local processes, static hosts, Kubernetes pods).

Whatever the provider, workers speak the same protocol to the same server: the scheduler
only ever places tasks on connected workers. A provider is asked for capacity when tasks
wait that nothing can place, and told which workers are idle.
"""

from .base import Provider, ProviderContext
from .kubernetes import KubernetesProvider
from .local import LocalProvider
from .static import StaticProvider

PROVIDERS: dict[str, type[Provider]] = {
    "local": LocalProvider,
    "static": StaticProvider,
    "kubernetes": KubernetesProvider,
}

__all__ = [
    "PROVIDERS",
    "KubernetesProvider",
    "LocalProvider",
    "Provider",
    "ProviderContext",
    "StaticProvider",
]
