"""The kubernetes provider's settings (``c.KubernetesProvider.*``): the traitlets, their
defaults, and the checks that name a bad one at start. Pure configuration; the provider
itself (``provider.py``) starts pods with them."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode, default

from ..._version import __version__
from ...core.errors import SpecError
from ...core.ids import new_id
from ...core.resources import parse_labels, parse_memory
from ..base import Provider, ProviderContext
from . import podspec, profiles

_RESOURCE_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
RESERVED_LABELS = {
    podspec.MANAGED_BY,
    podspec.COMPONENT,
    podspec.SERVER_LABEL,
    podspec.OWNER_LABEL,
    podspec.GROUP_LABEL,
}


class KubernetesSettings(Provider):
    # where the cluster is
    namespace = Unicode(
        "",
        config=True,
        help="Namespace of the worker pods (default: the server's own, the kubeconfig context's, else 'default').",
    )
    kubeconfig = Unicode(
        "", config=True, help="Path of a kubeconfig file (default: ~/.kube/config) when not in a pod."
    )
    kube_context = Unicode("", config=True, help="The kubeconfig context to use (default: its current one).")
    in_cluster = Enum(
        ["auto", "yes", "no"],
        "auto",
        config=True,
        help="Use the pod's service account (auto: when running in a pod).",
    )
    api_url = Unicode(
        "", config=True, help="The API server's URL, instead of kubeconfig or in-cluster config."
    )
    api_token = Unicode("", config=True, help="A bearer token for api_url.")
    # what the pods are
    image = Unicode(
        config=True,
        help="Image for tasks that name none (default: $JUPYTER_IMAGE_SPEC, $JUPYTER_IMAGE, else python:X.Y-slim of this server's Python).",
    )
    default_memory = Unicode(
        "4Gi", config=True, help="Memory request and limit of a pod whose task asks for none."
    )
    gpu_resource = Unicode(
        "nvidia.com/gpu",
        config=True,
        help="The extended resource a GPU is (e.g. amd.com/gpu, nvidia.com/mig-1g.10gb).",
    )
    gpu_type_label = Unicode(
        "nvidia.com/gpu.product", config=True, help="The node label a task's gpu_type is matched against."
    )
    gpu_tolerations = List(
        Dict(),
        config=True,
        help="Tolerations of GPU pods (default: tolerate the nvidia.com/gpu NoSchedule taint).",
    )
    pod_template = AnyTrait(
        {},
        config=True,
        help="A pod (YAML text or a dict: metadata and spec) merged over each worker pod; lists of named items (containers, env, volumes) merge by name; the worker's container is 'worker'; null removes a key.",
    )
    labels = Dict(Unicode(), config=True, help="Extra labels of every worker pod.")
    group_profiles = Dict(
        config=True,
        help="Settings of the worker pods made for the members of a JupyterHub group, by group "
        '(in order): {"ml-team": {"image": "pytorch/pytorch:2.4", "node_selector": {"pool": "ml"}, '
        '"tolerations": [{"key": "team", "value": "ml", "effect": "NoSchedule"}], "labels": {...}, '
        '"pods": "user"}}. A user in several of these groups gets the profile of the FIRST group '
        "listed here that they belong to; a user in none gets the settings above. image: for tasks "
        "that name none (instead of image); node_selector: added to the pod's (a key here wins over "
        "a task's label of the same key); tolerations: added to the pod's (GPU pods keep "
        "gpu_tolerations); labels: extra pod labels; pods: 'user' (default: a pod runs only the "
        "tasks of the user it was made for) or 'group' (any member's tasks; with worker_owner "
        "'user'). The pods are labelled jupyter-orch/group with the profile's group. Checked at "
        "start: a bad entry stops the server, naming it (group_profiles.GROUP.KEY).",
    )
    worker_owner = Enum(
        ["auto", "user", "shared"],
        "auto",
        config=True,
        help="Whose worker pods are. user: a pod is made for one user's tasks (label "
        "jupyter-orch/owner) and its worker runs only that user's tasks (or its group's: "
        "group_profiles' pods); shared: any task may run on any pod (a personal server); auto: "
        "user when OrchApp.owner_from is 'identity' (one orchestrator for a hub's users), else shared.",
    )
    runtime = Enum(
        ["init-container", "image"],
        "init-container",
        config=True,
        help="How the worker runtime reaches the pod: an init container copies it from runtime_image into a shared volume, or the image has jupyter-orch installed.",
    )
    runtime_image = Unicode(
        config=True,
        help="The image holding the worker runtime in /opt/jupyter-orch/runtime (default: $JUPYTER_ORCH_RUNTIME_IMAGE, else ghcr.io/jupyter-orch/jupyter-orch-runtime:<version>).",
    )
    runtime_command = List(
        Unicode(), config=True, help="The init container's command that copies the runtime into runtime_path."
    )
    runtime_path = Unicode(
        "/opt/jupyter-orch/mnt",
        config=True,
        help="Where the runtime volume is mounted in the pods (PYTHONPATH).",
    )
    python = Unicode("python3", config=True, help="The Python in the task images that runs the worker.")
    image_pull_policy = Enum(
        ["Always", "IfNotPresent", "Never"],
        "IfNotPresent",
        config=True,
        help="imagePullPolicy of the pods' containers.",
    )
    service_account = Unicode(
        "", config=True, help="serviceAccountName of the worker pods (default: none mounted)."
    )
    scheduler_name = Unicode("", config=True, help="schedulerName of the worker pods (e.g. volcano).")
    kueue_queue = Unicode(
        "",
        config=True,
        help="A Kueue LocalQueue: pods get the kueue.x-k8s.io/queue-name label and wait to be admitted.",
    )
    extra_worker_args = List(
        Unicode(), config=True, help="Extra command-line arguments of every pod's worker."
    )
    # how it behaves
    server_url = Unicode(
        "",
        config=True,
        help="The URL worker pods use to reach this server (default: http://$POD_IP:<port><base_url> when the server runs in a pod, else the server's URL).",
    )
    server_id = Unicode(
        "",
        config=True,
        help="The value of the jupyter-orch/server label of this server's pods (default: an id kept in the data directory).",
    )
    owner_pod = Unicode(
        config=True,
        help="The server's own pod, owner of the worker pods (default: $POD_NAME, $MY_POD_NAME, or the hostname in a pod; empty: none).",
    )
    idle_timeout = Float(
        None,
        allow_none=True,
        config=True,
        help="Seconds an idle worker pod is kept warm (default: OrchApp.worker_idle_timeout, 600).",
    )
    max_pods = Int(10, config=True, help="Most worker pods at once (0: no limit).")
    max_gpus_per_user = Int(
        0, config=True, help="Most GPUs one user's worker pods hold at once (0: no limit)."
    )
    unschedulable_timeout = Float(
        600.0,
        config=True,
        help="Seconds a pod may stay unschedulable before its tasks fail with the scheduler's reason.",
    )
    connect_timeout = Float(
        300.0, config=True, help="Seconds a running pod's worker has to connect before its tasks fail."
    )
    adopt_grace = Float(
        60.0,
        config=True,
        help="Seconds the worker of a pod left by an earlier run has to reconnect before the pod is deleted.",
    )
    image_pull_attempts = Int(
        3,
        config=True,
        help="Failed tries to pull a pod's image (the kubelet retries with back-off: ErrImagePull, then ImagePullBackOff) before its tasks fail; 1: at the first. InvalidImageName and ErrImageNeverPull fail at once.",
    )
    image_pull_timeout = Float(
        300.0,
        config=True,
        help="Seconds from a pod's first failed image pull after which its tasks fail, however few tries the kubelet made.",
    )
    capacity_interval = Float(
        30.0, config=True, help="Seconds between reads of the cluster's nodes (free GPUs)."
    )
    watch_timeout = Int(60, config=True, help="Seconds one pod watch request lasts before it is resumed.")
    log_lines = Int(
        20, config=True, help="Log lines of a pod attached to the error when its worker never connected."
    )
    delete_on_stop = Bool(
        True,
        config=True,
        help="At server stop, delete worker pods not running tasks (the others are adopted at the next start).",
    )

    @default("image")
    def _default_image(self) -> str:
        v = sys.version_info
        return (
            os.environ.get("JUPYTER_IMAGE_SPEC")
            or os.environ.get("JUPYTER_IMAGE")
            or f"python:{v.major}.{v.minor}-slim"
        )

    @default("runtime_image")
    def _default_runtime_image(self) -> str:
        return (
            os.environ.get("JUPYTER_ORCH_RUNTIME_IMAGE")
            or f"ghcr.io/jupyter-orch/jupyter-orch-runtime:{__version__}"
        )

    @default("runtime_command")
    def _default_runtime_command(self) -> list[str]:
        return ["cp", "-R", "/opt/jupyter-orch/runtime/.", self.runtime_path + "/"]

    @default("gpu_tolerations")
    def _default_tolerations(self) -> list[dict[str, Any]]:
        return [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]

    @default("owner_pod")
    def _default_owner_pod(self) -> str:
        env = os.environ
        in_pod = bool(env.get("KUBERNETES_SERVICE_HOST"))
        return env.get("POD_NAME") or env.get("MY_POD_NAME") or (env.get("HOSTNAME", "") if in_pod else "")

    # ------------------------------------------------------------------ settings
    def _idle_timeout(self) -> float:
        if self.idle_timeout is not None:
            return float(self.idle_timeout)
        return float(getattr(self.parent, "worker_idle_timeout", 600.0))

    def pods_per_user(self) -> bool:
        """Whether each pod is its user's (team mode), not shared."""
        if self.worker_owner == "auto":
            return getattr(self.parent, "owner_from", "server") == "identity"
        return self.worker_owner == "user"

    def checked_profiles(self) -> dict[str, profiles.GroupProfile]:
        """``group_profiles``, checked (ValueError naming the bad key)."""
        return profiles.parse_profiles(self.group_profiles, RESERVED_LABELS)

    def check_settings(self) -> None:
        """Raise ValueError naming the first bad setting."""

        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"KubernetesProvider.{name} {why}")

        if not _RESOURCE_NAME.match(self.gpu_resource):
            raise bad(
                "gpu_resource", f"must be a resource name like nvidia.com/gpu, not {self.gpu_resource!r}"
            )
        try:
            parse_labels({self.gpu_type_label: "x"}, "KubernetesProvider.gpu_type_label")
            parse_labels(self.labels, "KubernetesProvider.labels")
            memory = parse_memory(self.default_memory, "KubernetesProvider.default_memory")
        except SpecError as exc:
            raise ValueError(exc.message) from None
        if memory <= 0:
            raise bad("default_memory", "must be a size like 4Gi")
        for key, value in self.labels.items():
            if key in RESERVED_LABELS:
                raise bad("labels", f"may not set {key} (the provider sets it)")
            if not _LABEL_VALUE.match(value):
                raise bad("labels", f"has an invalid value {value!r} for {key}")
        for name in ("max_pods", "max_gpus_per_user", "log_lines"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        if self.image_pull_attempts < 1:
            raise bad("image_pull_attempts", "must be >= 1 (1: fail at the first failed pull)")
        for name in (
            "unschedulable_timeout",
            "connect_timeout",
            "adopt_grace",
            "image_pull_timeout",
            "capacity_interval",
            "watch_timeout",
        ):
            if getattr(self, name) <= 0:
                raise bad(name, "must be a positive number of seconds")
        if self.idle_timeout is not None and self.idle_timeout < 0:
            raise bad("idle_timeout", "must be >= 0 seconds")
        if self.server_url and urlsplit(self.server_url).scheme not in ("http", "https", "ws", "wss"):
            raise bad("server_url", f"must be an http(s) URL, not {self.server_url!r}")
        if self.kueue_queue and not _LABEL_VALUE.match(self.kueue_queue):
            raise bad(
                "kueue_queue", f"must be a valid label value (a LocalQueue name), not {self.kueue_queue!r}"
            )
        for name in ("scheduler_name", "service_account"):
            value = getattr(self, name)
            if value and not _DNS_SUBDOMAIN.match(value):
                raise bad(name, f"must be a DNS name, not {value!r}")
        if self.runtime == "init-container" and (not self.runtime_command or not self.runtime_image):
            raise bad("runtime_command", "and runtime_image must be set when runtime is 'init-container'")
        if not self.image:
            raise bad("image", "must name the default image of worker pods")
        self.checked_profiles()
        for i, tol in enumerate(self.gpu_tolerations):
            if not set(tol) <= {"key", "operator", "value", "effect", "tolerationSeconds"}:
                raise bad(
                    f"gpu_tolerations[{i}]",
                    f"has unknown fields {sorted(set(tol) - {'key', 'operator', 'value', 'effect', 'tolerationSeconds'})}",
                )

    def _server_url(self, context: ProviderContext) -> str:
        if self.server_url:
            return self.server_url.rstrip("/")
        ip = os.environ.get("POD_IP") or os.environ.get("MY_POD_IP")
        parts = urlsplit(context.server_url)
        if ip and parts.hostname in ("127.0.0.1", "localhost", "0.0.0.0", "::1"):
            host = f"[{ip}]" if ":" in ip else ip
            netloc = f"{host}:{parts.port}" if parts.port else host
            return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")
        return context.server_url.rstrip("/")

    def _server_id(self, context: ProviderContext) -> str:
        if self.server_id:
            if not _LABEL_VALUE.match(self.server_id) or not self.server_id:
                raise ValueError(
                    f"KubernetesProvider.server_id must be a valid label value, not {self.server_id!r}"
                )
            return self.server_id
        path = Path(context.data_dir) / "kubernetes-server-id"
        try:
            value = path.read_text().strip()
            if value and _LABEL_VALUE.match(value):
                return value
        except OSError:
            pass
        value = new_id()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
        return value

    def settings_for(
        self, context: ProviderContext, namespace: str, owner_reference: dict[str, Any] | None
    ) -> podspec.PodSettings:
        template = podspec.validate_template(self.pod_template)
        return podspec.PodSettings(
            namespace=namespace,
            server_id=self._server_id(context),
            server_url=self._server_url(context),
            gpu_resource=self.gpu_resource,
            gpu_type_label=self.gpu_type_label,
            gpu_tolerations=[dict(t) for t in self.gpu_tolerations],
            pod_template=template,
            labels=dict(self.labels),
            owner_reference=owner_reference,
            runtime=self.runtime,
            runtime_image=self.runtime_image,
            runtime_command=list(self.runtime_command),
            runtime_path=self.runtime_path,
            python=self.python,
            kueue_queue=self.kueue_queue,
            scheduler_name=self.scheduler_name,
            service_account=self.service_account,
            image_pull_policy=self.image_pull_policy,
            extra_args=list(self.extra_worker_args),
            worker_owner="user" if self.pods_per_user() else "shared",
            profiles=self.checked_profiles(),
        )

    def check_template(self, settings: podspec.PodSettings, unknown_fields: Any) -> None:
        sample = podspec.PodRequest(
            "orch-check-0", "user", podspec.PodShape("image", 1.0, 1 << 30, 1, "A100"), ("t",), "s"
        )
        bad = unknown_fields(podspec.build_pod(sample, settings))
        if bad:
            raise ValueError(
                f"KubernetesProvider.pod_template has fields a Pod does not have: {', '.join(bad)}"
            )
