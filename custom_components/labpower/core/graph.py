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
