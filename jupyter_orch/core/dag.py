"""Graphs of named nodes (workflow steps): a cycle, named in order, and each node's
ancestors. ``graph[node]`` lists what ``node`` depends on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]`` (following dependencies), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def ancestors(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    memo: dict[str, set[str]] = {}

    def up(node: str) -> set[str]:
        if node not in memo:
            memo[node] = set()
            for dep in graph.get(node, ()):
                memo[node] |= {dep} | up(dep)
        return memo[node]

    return {node: up(node) for node in graph}
