"""The kubernetes provider: worker pods on demand, sized for the tasks that need them.

``podspec`` builds the manifests, ``failures`` reads a pod's status as a sentence,
``capacity`` counts the cluster's free GPUs (all three pure); ``client`` holds every API
call (and the RBAC each needs), ``watching`` the pod watch, ``lifecycle`` what pods are for
and when they go, ``provider`` the configuration. See docs/kubernetes.md.
"""

from .provider import KubernetesProvider

__all__ = ["KubernetesProvider"]
