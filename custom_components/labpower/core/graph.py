"""The dependency graph of a lab's resources: cycles, ancestors, order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def find_cycle(depends_on: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A dependency cycle as the path that closes it (`[a, b, a]`), or None.

    `depends_on` maps each resource to the resources it depends on; names that are not
    keys are leaves.
    """
    done: set[str] = set()
    for root in depends_on:
        if root in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, list[str]]] = [(root, list(depends_on.get(root, ())))]
        path.append(root)
        on_path.add(root)
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
                continue
            parent = todo.pop()
            if parent in on_path:
                return [*path[path.index(parent) :], parent]
            if parent in done:
                continue
            stack.append((parent, list(depends_on.get(parent, ()))))
            path.append(parent)
            on_path.add(parent)
    return None


def children_first(depends_on: Mapping[str, Iterable[str]]) -> list[str]:
    """Every key, each one after every key that depends on it (the graph must be acyclic).

    `depends_on` maps each resource to the resources it depends on; names that are not
    keys are left out.
    """
    waiting = dict.fromkeys(depends_on, 0)  # children not yet placed
    for parents in depends_on.values():
        for parent in parents:
            if parent in waiting:
                waiting[parent] += 1
    ready = [name for name, count in waiting.items() if count == 0]
    order: list[str] = []
    while ready:
        name = ready.pop()
        order.append(name)
        for parent in depends_on[name]:
            if parent in waiting:
                waiting[parent] -= 1
                if waiting[parent] == 0:
                    ready.append(parent)
    if len(order) != len(waiting):
        raise ValueError("the dependency graph has a cycle")
    return order
