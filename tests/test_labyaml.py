"""Reading a lab file (labyaml.py): YAML with lines, secrets, bounds, expansion in step."""

from __future__ import annotations

from pathlib import Path
import time

import pytest

from custom_components.labpower import labyaml
from custom_components.labpower.labfile import (
    LabFile,
    LabFileError,
    load_lab_file,
    parse_lab_file,
)

from .peers.labfile import (
    by_name,
    docs_example,
    one_problem,
    parse,
    problems,
    with_units,
)

# The YAML, read with lines


def test_plain_scalars_keep_their_text_and_their_yaml_value() -> None:
    root, problem = labyaml.read_yaml(
        "a: 0755\nb: true\nc: 10:20:30:40:50:59\nd: [x, {e: 1}]\n",
        {},
        time.monotonic() + 5,
    )
    assert problem is None
    assert (root["a"], root["a"].value, root["a"].__line__) == ("0755", 0o755, 1)
    assert (root["b"], root["b"].value) == ("true", True)
    assert isinstance(root["c"], labyaml.Plain)
    assert root["c"] == "10:20:30:40:50:59"
    assert labyaml.line_of(root["d"][1], 0) == 4
    assert labyaml.line_of(None, 7) == 7


def test_read_file_is_bounded_and_reads_secrets_only_when_used(
    tmp_path: Path,
) -> None:
    path = tmp_path / "labpower.yaml"
    path.write_bytes(b"#" * (labyaml.MAX_FILE_BYTES + 1))
    with pytest.raises(labyaml.UnreadableError, match=r"larger than 4,194,304 bytes"):
        labyaml.read_file(path)
    path.write_text("a: 1\n")
    (tmp_path / "secrets.yaml").write_text("- not a mapping\n")
    assert labyaml.read_file(path) == ("a: 1\n", None)
    path.write_text("a: !secret b\n")
    with pytest.raises(labyaml.UnreadableError, match=r"must be a mapping"):
        labyaml.read_file(path)


# Loading from disk, secrets


def test_load_lab_file_reads_secrets_next_to_it(tmp_path: Path) -> None:
    (tmp_path / "labpower.yaml").write_text(docs_example(), encoding="utf-8")
    (tmp_path / "secrets.yaml").write_text(
        "pdu1_password: 1234\npdu2_community: private\nbuild1_bmc_password: x\n",
        encoding="utf-8",
    )
    lab = load_lab_file(tmp_path / "labpower.yaml")
    assert lab.units[0]["password"] == "1234"


def test_load_lab_file_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("resources:\n  - name: a\n    power_entity: switch.a\n")
    assert [data["name"] for data in load_lab_file(str(path)).resources] == ["a"]


def test_missing_secret_and_missing_secrets_file(tmp_path: Path) -> None:
    path = tmp_path / "labpower.yaml"
    path.write_text(docs_example(), encoding="utf-8")
    with pytest.raises(LabFileError) as caught:
        load_lab_file(path)
    assert str(caught.value).splitlines() == [
        "labpower.yaml line 9: password: no secret named 'pdu1_password' in secrets.yaml",
        "labpower.yaml line 16: community: no secret named 'pdu2_community' in secrets.yaml",
        (
            "labpower.yaml line 25: password: no secret named 'build1_bmc_password' in "
            "secrets.yaml"
        ),
    ]


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ("a: [", "secrets.yaml is not valid YAML"),
        ("- a\n- b\n", "secrets.yaml must be a mapping"),
        ("", None),
    ],
)
def test_bad_secrets_file(tmp_path: Path, secrets: str, message: str | None) -> None:
    path = tmp_path / "labpower.yaml"
    path.write_text(
        "units:\n  - name: p\n    vendor: netio\n    host: h\n    password: !secret p\n"
    )
    (tmp_path / "secrets.yaml").write_text(secrets)
    with pytest.raises(LabFileError) as caught:
        load_lab_file(path)
    if message is None:
        assert caught.value.errors[0].message.endswith(
            "no secret named 'p' in secrets.yaml"
        )
    else:
        assert caught.value.errors[0].line is None
        assert message in str(caught.value)
        assert str(caught.value).startswith("labpower.yaml: ")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(LabFileError, match=r"^labpower.yaml: cannot read the file"):
        load_lab_file(tmp_path / "labpower.yaml")
    path = tmp_path / "labpower.yaml"
    path.write_text("units:\n  - name: p\n    password: !secret p\n")
    (tmp_path / "secrets.yaml").mkdir()
    with pytest.raises(LabFileError, match=r"cannot read secrets.yaml"):
        load_lab_file(path)


def test_secrets_are_not_expanded() -> None:
    lab = parse(
        """\
        resources:
          - name: w[1-2]
            mac: [aa:bb:cc:dd:ee:01, aa:bb:cc:dd:ee:02]
            ssh_host: w[1-2].lab
            ssh_username: root
            ssh_password: !secret pw
            host: w[1-2].lab
        """,
        secrets={"pw": "p[1-2]"},
    )
    assert [data["ssh_password"] for data in lab.resources] == ["p[1-2]", "p[1-2]"]
    assert lab.resources[1]["mac"] == "aa:bb:cc:dd:ee:02"
    assert lab.resources[1]["ssh_host"] == "w2.lab"
    assert lab.resources[0]["wol_address"] == "255.255.255.255"
    assert lab.resources[0]["wol_port"] == 9
    assert lab.resources[0]["ssh_port"] == 22


# Expansion in step


def test_fields_expand_in_step_with_the_name() -> None:
    lab = parse(
        with_units(
            """\
        resources:
          - name: srv[1-4]
            outlets:
              - pdu1:[1-4]
              - pdu2:[5-8]
            host: 10.0.0.[11-14]
            port: "22[01-04]"
            labels: [servers, "row[1-2]*2"]
        """
        )
    )
    srv3 = by_name(lab)["srv3"]
    assert srv3["outlets"] == [
        "pdu1:3",
        "pdu2:7",
    ]
    assert srv3["host"] == "10.0.0.13"
    assert srv3["port"] == 2203
    assert srv3["labels"] == ["servers", "row2"]


def test_one_name_takes_every_value_of_a_list_item() -> None:
    lab = parse(
        """\
        resources:
          - name: s[1-4]
            power_entity: switch.s[1-4]
          - name: all
            power_entity: switch.all
            depends_on: ["s[1-3]*2", s4]
            labels: [a, a, b]
        """
    )
    data = by_name(lab)["all"]
    assert data["depends_on"] == ["s1", "s2", "s3", "s4"]
    assert data["labels"] == ["a", "b"]


def test_units_and_bmcs_expand_too() -> None:
    lab = parse(
        """\
        units:
          - name: pdu[1-2]
            vendor: snmp
            host: 10.0.0.[5-6]
            snmp_version: 3
            username: labpower
            auth_protocol: sha
            auth_key: k
            priv_protocol: aes
            priv_key: p
            port: 161
        bmcs:
          - name: bmc[1-2]
            protocol: redfish
            host: 10.0.2.[1-2]
            username: root
            password: calvin
            verify_ssl: false
            bmc_auth: session
        resources:
          - name: server[1-2]
            bmc: bmc[1-2]
        """
    )
    assert [unit["host"] for unit in lab.units] == ["10.0.0.5", "10.0.0.6"]
    assert lab.units[1]["snmp_version"] == "3"
    assert lab.units[1]["port"] == 161
    assert [bmc["host"] for bmc in lab.bmcs] == ["10.0.2.1", "10.0.2.2"]
    assert lab.bmcs[0]["verify_ssl"] is False
    assert by_name(lab)["server2"]["bmc"] == "bmc2"


def test_a_value_list_gives_one_value_to_each_name() -> None:
    lab = parse(
        """\
        resources:
          - name: p[1-3]
            power_entity: [switch.x, switch.y, switch.z]
            off_delay: [1, 2.5, 3]
        """
    )
    assert [data["power_entity"] for data in lab.resources] == [
        "switch.x",
        "switch.y",
        "switch.z",
    ]
    assert [data["off_delay"] for data in lab.resources] == [1.0, 2.5, 3.0]


def test_range_lengths_must_match_the_name() -> None:
    text = """\
    resources:
      - name: pi[01-48]
        power_entity: switch.pi[01-48]
        host: 10.0.1.[11-57]
        depends_on: stack[1-12]*3
      - name: solo
        power_entity: switch.solo[1-2]
        labels: [x]
    """
    assert problems(text) == [
        (4, "host: '10.0.1.[11-57]' gives 47 values but the name 'pi[01-48]' gives 48"),
        (
            5,
            (
                "depends_on: 'stack[1-12]*3' gives 36 values but the name 'pi[01-48]' "
                "gives 48"
            ),
        ),
        (7, "power_entity: 'switch.solo[1-2]' gives 2 values for one name"),
    ]


def test_value_lists_of_the_wrong_length() -> None:
    assert problems(
        """\
        resources:
          - name: p[1-3]
            power_entity: [switch.x, switch.y]
          - name: q
            power_entity: [switch.x]
          - name: r[1-2]
            power_entity: [switch.x, [switch.y]]
          - name: s
            power_entity: switch.s
            port: [2201-2248]
            host: s
          - name: t
            power_entity: {a: b}
          - name: u
            power_entity: switch.u
            depends_on: {a: b}
          - name: v
            power_entity: switch.v
            labels: [[a]]
        """
    ) == [
        (
            3,
            (
                "power_entity: a list here gives one value to each of the 3 names of "
                "'p[1-3]', not 2 values"
            ),
        ),
        (5, "power_entity: expected one value, not a list"),
        (7, "power_entity: expected a value"),
        (
            10,
            (
                "port: expected one value, not a list (a value that starts with '[' "
                'must be quoted: "[1-8]")'
            ),
        ),
        (13, "power_entity: expected a value, not a mapping"),
        (16, "depends_on: expected a list, not a mapping"),
        (19, "labels: expected a list of values"),
    ]


# Sections, keys and bounds


def test_empty_file_and_empty_sections() -> None:
    assert parse("") == LabFile()
    assert parse("# nothing yet\n") == LabFile()
    assert parse("version: 1\nunits:\nbmcs: []\nresources:\n") == LabFile()


def test_merge_keys_and_anchors() -> None:
    lab = parse(
        """\
        resources:
          - &pi
            name: pi1
            power_entity: switch.pi1
            labels: &labels [pi]
          - <<: *pi
            name: pi2
            power_entity: switch.pi2
          - name: pi3
            power_entity: switch.pi3
            labels: *labels
        """
    )
    assert [data["labels"] for data in lab.resources] == [["pi"], ["pi"], ["pi"]]
    assert lab.resources[1]["power_entity"] == "switch.pi2"


def test_a_ranged_entry_reports_a_problem_once() -> None:
    assert problems(
        """\
        resources:
          - name: pi[1-4]
            checker_type: tcp
            port: 22
          - name: pi[5-6]
            power_entity: switch.pi[5-6]
            port: 22
        """
    ) == [
        (
            2,
            (
                "no switcher: give switcher_type or one of power_entity, relay_entity, "
                "bmc, mac, outlets (or outlet)"
            ),
        ),
        (7, "port does not apply to checker_type none"),
    ]


def test_unknown_keys_with_suggestions() -> None:
    assert problems(
        """\
        resources:
          - name: a
            power_entity: switch.a
            of_delay: 5
            colour: blue
        polices: {}
        """
    ) == [
        (4, "unknown key 'of_delay' in a resource (did you mean 'off_delay'?)"),
        (5, "unknown key 'colour' in a resource"),
        (6, "unknown key 'polices' in the lab file (did you mean 'policies'?)"),
    ]


def test_bad_ranges_in_names() -> None:
    assert problems(
        """\
        resources:
          - name: pi[01-4x]
            power_entity: switch.x
          - name: "  "
            power_entity: switch.y
          - name: [a, b]
          - name:
          - power_entity: switch.z
          - name: a[2-1]
        """
    ) == [
        (2, "name: bad range: 'pi[01-4x]': '01-4x' is not a number or a range a-b"),
        (4, "name: cannot be empty"),
        (6, "name: expected a name, not a list or a mapping"),
        (7, "name: expected text, not null"),
        (8, "a resource needs a name"),
        (9, "name: bad range: 'a[2-1]': range 2-1 goes backwards"),
    ]


def test_many_problems_are_collected_up_to_the_limit() -> None:
    text = "resources:\n" + "".join(
        f"  - name: r{i}\n    power_entity: switch.r{i}\n    of_delay: 1\n"
        for i in range(30)
    )
    with pytest.raises(LabFileError) as caught:
        parse_lab_file(text, "mylab.yaml")
    error = caught.value
    assert error.truncated
    assert len(error.errors) == labyaml.MAX_ERRORS
    assert [problem.line for problem in error.errors] == [
        4 + 3 * i for i in range(labyaml.MAX_ERRORS)
    ]
    lines = str(error).splitlines()
    assert lines[0] == (
        "mylab.yaml line 4: unknown key 'of_delay' in a resource "
        "(did you mean 'off_delay'?)"
    )
    assert lines[-1] == f"mylab.yaml: stopped after {labyaml.MAX_ERRORS} problems"


def test_invalid_yaml_names_its_line() -> None:
    line, message = one_problem("resources:\n  - name: a\n    host: [unclosed\n")
    assert line == 4
    assert message.startswith("not valid YAML: ")
    line, message = one_problem("a: *nowhere\n")
    assert line == 1
    assert message.startswith("not valid YAML: found undefined alias")
    line, message = one_problem("a: \x07\n")
    assert message.startswith("not valid YAML")


def test_keys_given_twice_and_odd_keys() -> None:
    assert problems(
        """\
        resources:
          - name: a
            power_entity: switch.a
            power_entity: switch.b
            [x]: 1
        """
    ) == [
        (4, "'power_entity' is given twice in a resource (first at line 3)"),
        (5, "unknown key that is not a word in a resource"),
    ]


def test_bad_merge() -> None:
    [(line, message)] = problems(
        """\
        resources:
          - name: a
            power_entity: switch.a
            <<: [1]
        """
    )
    assert line == 2
    assert message.startswith("a resource: expected a mapping for merging")


def test_bounds_before_memory_is_spent() -> None:
    """Nesting, aliases, names, range values and time: each refused with its line."""
    deep = "a: " + "[" * 33 + "]" * 33 + "\n"
    assert one_problem(deep) == (1, "nested more than 32 deep")
    chain = "a: &a0 [x]\n" + "".join(f"b{n}: &a{n} [*a{n - 1}]\n" for n in range(1, 40))
    assert one_problem(chain) == (32, "alias *a30 nests more than 32 deep")
    labels = ", ".join(f'"l{n}[1-9999]"' for n in range(10))
    many = "resources:\n" + "".join(
        f"  - name: r{i}\n    labels: [{labels}]\n" for i in range(3)
    )
    assert problems(many)[-1] == (7, "ranges give more than 200,000 values")
    assert one_problem(
        "resources:\n  - name: a\n    power_entity: switch.a\n", deadline=0.0
    ) == (None, "not read within 30 s")


def test_merges_do_not_count_as_nesting() -> None:
    """A chain of merge keys nests nothing: 40 of them load."""
    lines = ["resources:", "  - &m0 {name: m0, power_entity: switch.m0}"]
    lines += [
        f"  - &m{n} {{<<: *m{n - 1}, name: m{n}, power_entity: switch.m{n}}}"
        for n in range(1, 40)
    ]
    assert len(parse("\n".join(lines) + "\n").resources) == 40


def test_yaml_numbers_stay_text_where_text_is_wanted() -> None:
    """`10:20:30:40:50:59` (to YAML 1.1 a number) and `0755` are taken as written."""
    lab = parse(
        """\
        resources:
          - name: 0755
            mac: 10:20:30:40:50:59
            ssh_host: w.lab
            ssh_username: root
            ssh_password: 0755
            host: w.lab
        """
    )
    [data] = lab.resources
    assert data["name"] == "0755"
    assert data["mac"] == "10:20:30:40:50:59"
    assert data["ssh_password"] == "0755"


def test_the_reader_stops_at_its_deadline_while_measuring() -> None:
    """A long text is measured in steps; past the deadline it is refused, unread."""
    text = "a: [" + ", ".join(["x"] * 5000) + "]\n"
    assert labyaml.read_yaml(text, {}, 0.0) == (
        None,
        labyaml.LabFileProblem(None, "not read within 30 s"),
    )


def test_a_type_that_cannot_be_read_is_reported_once() -> None:
    """switcher_type as a mapping: that is the problem, not a missing switcher."""
    assert one_problem(
        """\
        resources:
          - name: a
            switcher_type: {entity: 1}
            power_entity: switch.a
        """
    ) == (3, "switcher_type: expected a value, not a mapping")
