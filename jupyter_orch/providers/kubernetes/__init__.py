"""The kubernetes provider: worker pods on demand, sized for the tasks that need them.

``podspec`` builds the manifests (over ``templates``, the pod template, and ``profiles``,
the per-group settings of team mode), ``failures`` reads a pod's status as a sentence,
``pulls`` counts failed image pulls, ``capacity`` the cluster's free GPUs (all pure);
``client`` holds every API call (and the RBAC each needs), ``watching`` the pod watch.
``lifecycle.Pods`` follows the pods (what each is for, what its status means, when it goes)
and owns a ``scaling.Scaler`` that makes pods within the limits and releases idle ones;
both share a ``records.PodBook``. ``settings`` is the configuration, ``provider`` starts
and wires it all. See docs/kubernetes.md.
"""

from .provider import KubernetesProvider

__all__ = ["KubernetesProvider"]
