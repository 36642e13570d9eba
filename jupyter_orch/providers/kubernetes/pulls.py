"""Image pulls the kubelet retries: how many tries failed, and when to give up.

A failed pull shows as the container waiting with reason ``ErrImagePull`` (its message: the
registry's or runtime's error); while the kubelet waits to try again (10 s, doubling up to
5 min) it shows ``ImagePullBackOff``; a pull that works moves the container on. Rate limits
and timeouts of a registry often heal within a few tries, so the tasks of a pod wait through
``image_pull_attempts`` failed tries, or ``image_pull_timeout`` seconds from the first
(whichever comes first), with the pull's state as their pending reason.

Tries are counted from the status changes the provider sees (each turn to ``ErrImagePull``,
or a new error message, is one) and from the kubelet's ``Failed to pull image`` events,
which count every try: a kubelet may retry without showing ``ImagePullBackOff`` in between,
and an unchanged status is not written again. Pure: pods and events as the API shows them,
and the time, in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import failures

COMBINED = "(combined from similar events): "  # the prefix of an event the kubelet aggregated


@dataclass
class Trouble:
    """A container whose image the kubelet could not pull yet."""

    container: str
    image: str
    note: str  # for the runtime image: which setting names it
    tries: int
    first: float  # when its first failed try was seen
    message: str  # the kubelet's last error for it


@dataclass
class PullTries:
    """The failed pulls of one pod's containers, across its status changes."""

    seen: dict[str, tuple[str, str]] = field(default_factory=dict)  # container: (reason, message)
    tries: dict[str, int] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    message: dict[str, str] = field(default_factory=dict)
    current: Trouble | None = None
    changed: bool = False  # the last status observed changed a container's pull state

    def observe(self, pod: Mapping[str, Any], now: float) -> Trouble | None:
        """The pod's new status: the first container (init containers first) whose pull
        the kubelet is retrying, with its tries so far; None when none is."""
        self.current, self.changed = None, False
        for init, entry in failures.statuses(pod):
            name = str(entry.get("name") or "")
            state = entry.get("state") or {}
            waiting = state.get("waiting") or {}
            reason, message = str(waiting.get("reason") or ""), str(waiting.get("message") or "")
            if "running" in state or "terminated" in state:  # pulled: a later problem starts afresh
                for known in (self.seen, self.tries, self.first, self.message):
                    known.pop(name, None)
                continue
            if reason not in failures.PULL_RETRIED:
                continue
            if reason == "ErrImagePull" and self.seen.get(name) != (reason, message):
                self.tries[name] = self.tries.get(name, 0) + 1
                self.message[name] = message
            elif not self.tries.get(name):  # in back-off, its failed try unseen (before our start)
                self.tries[name] = 1
            self.message.setdefault(name, message)
            self.first.setdefault(name, now)
            self.changed = self.changed or self.seen.get(name) != (reason, message)
            self.seen[name] = (reason, message)
            if self.current is None:
                spec = failures.container_spec(pod, name)  # the image as the kubelet's events name it
                image = str(spec.get("image") or entry.get("image") or "?")
                self.current = Trouble(
                    name,
                    image,
                    failures.image_note(pod, name, init),
                    self.tries[name],
                    self.first[name],
                    self.message[name],
                )
        return self.current

    def count_events(self, events: Iterable[Mapping[str, Any]]) -> Trouble | None:
        """The current trouble with its tries as the kubelet's events count them, when they
        count more (the events of the pod, as ``involvedObject.name`` lists them)."""
        trouble = self.current
        if trouble is None:
            return None
        prefix = f'Failed to pull image "{trouble.image}": '
        counted, last, last_time = 0, "", ""
        for event in events:
            text = str(event.get("message") or "")
            text = text[len(COMBINED) :] if text.startswith(COMBINED) else text
            where = str((event.get("involvedObject") or {}).get("fieldPath") or "")
            if event.get("reason") != "Failed" or not text.startswith(prefix):
                continue
            if where and not where.endswith("{" + trouble.container + "}"):
                continue  # the same image in another container of the pod
            counted += int(event.get("count") or (event.get("series") or {}).get("count") or 1)
            stamp = str(event.get("lastTimestamp") or event.get("eventTime") or "")
            if stamp >= last_time:
                last, last_time = text[len(prefix) :], stamp
        if counted > trouble.tries:
            self.tries[trouble.container] = trouble.tries = counted
            if last:
                self.message[trouble.container] = trouble.message = last
        return trouble


def tries_text(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


def retrying(trouble: Trouble) -> str:
    """The pending reason while the kubelet retries."""
    return (
        f"pulling image {trouble.image}: try {trouble.tries} failed ({trouble.message}); "
        f"the kubelet retries{trouble.note}"
    )


def given_up(trouble: Trouble, now: float, setting: str) -> str:
    """The tasks' error once ``setting`` (image_pull_attempts or image_pull_timeout) is reached."""
    over = (
        f" over {max(0.0, now - trouble.first):.0f} s"
        if trouble.tries > 1 or setting.endswith("timeout")
        else ""
    )
    return (
        f"image {trouble.image} could not be pulled after {tries_text(trouble.tries)}{over} "
        f"(KubernetesProvider.{setting}): {trouble.message}{trouble.note}"
    )
