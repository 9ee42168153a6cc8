"""Hostlist ranges: padding, lists, several groups, repeats, and what is refused."""

from __future__ import annotations

from hypothesis import given, strategies as st
import pytest

from custom_components.labpower.core.hostlist import (
    MAX_VALUES,
    HostlistError,
    count,
    expand,
    is_pattern,
)


def test_range_keeps_zero_padding() -> None:
    names = expand("pi[01-48]")
    assert len(names) == 48
    assert names[:3] == ["pi01", "pi02", "pi03"]
    assert names[-1] == "pi48"
    assert expand("[001-100]")[-2:] == ["099", "100"]


def test_range_without_leading_zero_is_not_padded() -> None:
    assert expand("node[8-10]") == ["node8", "node9", "node10"]
    assert expand("n[0-2]") == ["n0", "n1", "n2"]


def test_lists_of_numbers_and_ranges() -> None:
    assert expand("node[1-3,7]") == ["node1", "node2", "node3", "node7"]
    assert expand("x[ 007 , 1 - 2 ]") == ["x007", "x1", "x2"]


def test_several_groups_multiply_out_leftmost_slowest() -> None:
    assert expand("r[1-2]n[1-2]") == ["r1n1", "r1n2", "r2n1", "r2n2"]
    assert expand("pdu[1-2]:[2-3]") == ["pdu1:2", "pdu1:3", "pdu2:2", "pdu2:3"]


def test_repeat_repeats_each_value_in_place() -> None:
    assert expand("stack[1-3]*2") == [
        "stack1",
        "stack1",
        "stack2",
        "stack2",
        "stack3",
        "stack3",
    ]
    stacks = expand("stack[1-12]*4")
    assert len(stacks) == 48
    # Pi i (1-based) depends on stack ceil(i / 4).
    assert stacks[7 - 1] == "stack2"
    assert stacks[48 - 1] == "stack12"
    assert expand("a[1-2]*2b") == ["a1b", "a1b", "a2b", "a2b"]


def test_plain_text_and_stars_without_digits() -> None:
    assert expand("switch1") == ["switch1"]
    assert expand("a*b[1-2]*x") == ["a*b1*x", "a*b2*x"]
    assert expand("end[1-2]*") == ["end1*", "end2*"]
    assert expand("") == [""]


def test_is_pattern() -> None:
    assert is_pattern("pi[01-48]")
    assert is_pattern("oops]")
    assert not is_pattern("pi01")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("pi[01-48", r"'\[' at column 3 is not closed"),
        ("pi01]", r"'\]' at column 5 has no '\['"),
        ("pi[]", r"empty range '\[\]'"),
        ("pi[ ]", r"empty range"),
        ("pi[a-c]", "'a-c' is not a number or a range a-b"),
        ("pi[1-]", "'1-' is not a number or a range"),
        ("pi[1,,2]", "'' is not a number"),
        ("pi[5-1]", "range 5-1 goes backwards"),
        ("pi[1[2]]", r"'\[' at column 5 inside a range"),
        ("pi[1-2]*0", r"'\*0' repeats nothing"),
        ("pi[\uff11-\uff12]", "is not a number"),
        ("pi[1-99999]", "more than 10,000 values"),
        ("pi[1-6000,1-6000]", "more than 10,000 values"),
        ("pi[1-100]*1000", "more than 10,000 values"),
        ("r[1-1000]n[1-1000]", "more than 10,000 values"),
        ("r[1-999999999999]n[1-999999999999]", "more than 10,000 values"),
    ],
)
def test_malformed_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(HostlistError, match=message) as caught:
        expand(pattern)
    assert pattern in str(caught.value)


def test_the_largest_pattern_allowed() -> None:
    assert len(expand(f"n[1-{MAX_VALUES}]")) == MAX_VALUES


def test_count_makes_no_values() -> None:
    """A huge pattern is counted, not built: the limit is checked before memory is spent."""
    assert count("r[1-999999999]n[1-999999999]*2") == 999999999**2 * 2
    assert count("node[1-3,7]x[007]") == 4
    assert count("plain") == 1
    with pytest.raises(HostlistError, match="goes backwards"):
        count("n[5-1]")


def test_results_are_fresh_lists() -> None:
    first = expand("n[1-2]")
    first.append("changed")
    assert expand("n[1-2]") == ["n1", "n2"]


@given(
    start=st.integers(min_value=0, max_value=5000),
    length=st.integers(min_value=1, max_value=300),
    extra_width=st.integers(min_value=0, max_value=3),
)
def test_range_count_and_padding(start: int, length: int, extra_width: int) -> None:
    end = start + length - 1
    width = len(str(start)) + extra_width
    names = expand(f"n[{start:0{width}d}-{end}]x")
    assert len(names) == length
    assert names == [f"n{number:0{width}d}x" for number in range(start, end + 1)]


@given(
    groups=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=50),
            st.integers(min_value=1, max_value=6),
            st.integers(min_value=1, max_value=3),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_groups_multiply_and_repeats_multiply(
    groups: list[tuple[int, int, int]],
) -> None:
    pattern = "".join(
        f"g[{start}-{start + length - 1}]*{repeat}-" for start, length, repeat in groups
    )
    expected = 1
    for _, length, repeat in groups:
        expected *= length * repeat
    names = expand(pattern)
    assert len(names) == expected
    first_start, first_length, _ = groups[0]
    # The leftmost group varies slowest: its first value (repeated) leads the first block.
    block = expected // first_length
    assert all(name.startswith(f"g{first_start}-") for name in names[:block])
