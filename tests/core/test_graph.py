"""The dependency graph: cycles and order."""

from __future__ import annotations

import itertools

from hypothesis import given, strategies as st
import pytest

from custom_components.labpower.core.graph import children_first, find_cycle


def test_no_cycle() -> None:
    assert find_cycle({}) is None
    assert find_cycle({"pi": ["stack"], "stack": ["switch"]}) is None
    # A diamond is not a cycle.
    assert find_cycle({"c": ["a", "b"], "a": ["s"], "b": ["s"], "s": []}) is None


def test_cycles() -> None:
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    assert find_cycle({"x": ["a"], "a": ["b"], "b": ["c"], "c": ["a"]}) == [
        "a",
        "b",
        "c",
        "a",
    ]
    # Reached through a part of the graph already explored.
    assert find_cycle({"a": ["s"], "s": [], "b": ["c"], "c": ["b", "s"]}) == [
        "b",
        "c",
        "b",
    ]


def test_children_first() -> None:
    graph = {"c": ["a", "b"], "a": ["s"], "b": ["s"], "s": [], "lone": []}
    order = children_first(graph)
    assert sorted(order) == sorted(graph)
    for child, parents in graph.items():
        assert all(order.index(child) < order.index(parent) for parent in parents)
    # Names that are not keys are left out.
    assert children_first({"pi": ["elsewhere"]}) == ["pi"]
    with pytest.raises(ValueError, match="cycle"):
        children_first({"a": ["b"], "b": ["a"]})


@given(
    st.dictionaries(
        st.sampled_from("abcdefgh"), st.lists(st.sampled_from("abcdefgh"), max_size=3)
    )
)
def test_cycle_found_exactly_when_there_is_one(graph: dict[str, list[str]]) -> None:
    cycle = find_cycle(graph)
    try:
        order = children_first(graph)
    except ValueError:
        assert cycle is not None
        assert cycle[0] == cycle[-1]
        for child, parent in itertools.pairwise(cycle):
            assert parent in graph[child]
        assert len(set(cycle)) == len(cycle) - 1
    else:
        assert cycle is None
        assert sorted(order) == sorted(graph)
