"""Graphs of named nodes (workflow steps): a cycle, named in order, and a node's ancestors.
``graph[node]`` lists what ``node`` depends on."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]`` (following dependencies), or None. Iterative, so a
    chain of ten thousand steps is no problem."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for root in graph:
        if root in state:
            continue
        path: list[str] = [root]
        state[root] = 1
        todo: list[Iterator[str]] = [iter(graph.get(root, ()))]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                todo.pop()
                state[path.pop()] = 2
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                todo.append(iter(graph.get(nxt, ())))
    return None


def ancestors(graph: Mapping[str, Iterable[str]], node: str) -> set[str]:
    """Every node ``node`` depends on, directly or not (iterative: deep graphs are fine)."""
    seen: set[str] = set()
    todo = list(graph.get(node, ()))
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(graph.get(dep, ()))
    return seen
