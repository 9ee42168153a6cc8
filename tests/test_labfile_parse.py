"""The lab file's checks: the subentry data it gives, every kind of mistake, with its line."""

from __future__ import annotations

import re

from custom_components.labpower.core.feeds import (
    FeedKind,
    FeedTarget,
    outlet_target,
)
from custom_components.labpower.labfile import (
    LabFileError,
    LabFileProblem,
    parse_lab_file,
)

from .peers.labfile import (
    DOCS,
    SECRETS,
    by_name,
    docs_example,
    one_problem,
    parse,
    problems,
    with_units,
)

# The documented example


def test_documented_example_expands() -> None:
    lab = parse_lab_file(docs_example(), secrets=SECRETS)
    resources = by_name(lab)
    assert len(lab.resources) == 1 + 12 + 48 + 1
    assert list(resources)[:3] == ["switch1", "stack1", "stack2"]
    assert resources["pi07"] == {
        "name": "pi07",
        "switcher_type": "entity",
        "checker_type": "tcp",
        "power_entity": "switch.pi07_usb",
        "host": "10.0.1.17",
        "port": 22,
        "off_delay": 600.0,
        "min_off_time": 10.0,
        "start_timeout": 120.0,
        "stop_timeout": 120.0,
        "default_ttl": 3600.0,
        "max_ttl": 28800.0,
        "graceful_off": True,
        "off_now": True,
        "max_transitions": 6,
        "labels": ["pi", "rack1"],
        "depends_on": ["stack2"],
    }
    for number in range(1, 49):
        pi = resources[f"pi{number:02d}"]
        assert pi["depends_on"] == [f"stack{(number + 3) // 4}"]
        assert pi["host"] == f"10.0.1.{10 + number}"
        assert pi["labels"] == ["pi", "rack1" if number <= 24 else "rack2"]
    assert resources["switch1"]["outlets"] == [
        "pdu1:1",
        "pdu2:1",
    ]
    assert resources["switch1"]["checker_type"] == "icmp"
    assert resources["switch1"]["off_delay"] == 1800.0
    assert resources["stack6"]["outlets"] == ["pdu1:7"]
    assert resources["stack7"]["outlets"] == ["pdu2:2"]
    assert resources["stack7"]["switcher_type"] == "pdu"
    assert resources["stack7"]["checker_type"] == "none"
    assert resources["stack7"]["power_w"] == 40.0
    assert resources["build1"]["switcher_type"] == "bmc"
    assert resources["build1"]["bmc"] == "build1-bmc"


def test_documented_example_units_bmcs_and_policies() -> None:
    lab = parse_lab_file(docs_example(), secrets=SECRETS)
    assert lab.units == [
        {
            "name": "pdu1",
            "vendor": "netio",
            "host": "10.0.0.5",
            "username": "admin",
            "password": "pdu-secret",
            "outlet_count": 8,
            "ups_entity": "sensor.ups1_status",
        },
        {
            "name": "pdu2",
            "vendor": "snmp",
            "host": "10.0.0.6",
            "snmp_version": "2c",
            "community": "private",
            "outlet_count": 8,
            "ups_entity": "sensor.ups1_status",
            "snmp_profile": "automatic",
        },
    ]
    assert lab.bmcs == [
        {
            "name": "build1-bmc",
            "protocol": "ipmi",
            "host": "10.0.2.1",
            "username": "ADMIN",
            "password": "bmc-secret",
            "cipher_suite": 3,
            "verify_ssl": True,
            "bmc_auth": "basic",
        }
    ]
    assert lab.policies == {
        "max_parallel_on": 4,
        "per_unit_parallel_on": 2,
        "on_spacing": 1.5,
        "refuse_acquire_on_battery": True,
        "shed_idle_on_battery": True,
        "shutdown_held_on_low_battery": False,
    }


def test_documented_pi07_matches_the_parser() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    match = re.search(r"```python\n(\{\s*\"name\": \"pi07\".*?)```", docs, re.DOTALL)
    assert match is not None
    documented = eval(match.group(1))  # noqa: S307 (our own documentation)
    assert by_name(parse_lab_file(docs_example(), secrets=SECRETS))["pi07"] == (
        documented
    )


def test_documented_fragments() -> None:
    """docs/labfile.md's other examples do what its text says they do."""
    docs = DOCS.read_text(encoding="utf-8")
    _, macs, block_outlets = re.findall(r"```yaml\n(.*?)```", docs, re.DOTALL)
    # A list of exactly N values, in step: one MAC per ws.
    lab = parse(
        "resources:\n"
        + macs
        + "    host: ws[1-3].lab\n    ssh_host: ws[1-3].lab\n"
        + "    ssh_username: root\n    ssh_password: pw\n"
    )
    assert [data["mac"] for data in lab.resources] == [
        "b8:27:eb:10:22:01",
        "b8:27:eb:3c:00:9a",
        "b8:27:eb:51:7f:11",
    ]
    # Outlets of both PDUs in step, quoted in a flow list or in block style.
    for outlets in ('    outlets: ["pdu1:[1-8]", "pdu2:[1-8]"]\n', block_outlets):
        assert '`outlets: ["pdu1:[1-8]", "pdu2:[1-8]"]` gives server *i*' in docs
        lab = parse(with_units("resources:\n  - name: server[1-8]\n" + outlets))
        assert by_name(lab)["server3"]["outlets"] == ["pdu1:3", "pdu2:3"]
    # Groups multiply out; a single name takes every value; numbers with ranges.
    lab = parse(
        with_units(
            """\
            resources:
              - name: big
                outlet: pdu[1-2]:[2-7]
              - name: stack[1-4]
                power_entity: switch.stack[1-4]
              - name: one
                power_entity: switch.one
                depends_on: ["stack[1-4]"]
              - name: pi[01-48]
                power_entity: switch.pi[01-48]
                host: 10.0.1.[11-58]
                port: "22[01-48]"
            """
        )
    )
    resources = by_name(lab)
    assert resources["big"]["outlets"] == [
        *(f"pdu1:{n}" for n in range(2, 8)),
        *(f"pdu2:{n}" for n in range(2, 8)),
    ]
    assert resources["one"]["depends_on"] == ["stack1", "stack2", "stack3", "stack4"]
    assert '`depends_on: ["stack[1-4]"]` on' in docs
    assert (resources["pi01"]["port"], resources["pi48"]["port"]) == (2201, 2248)
    assert resources["pi48"]["host"] == "10.0.1.58"


# The subentry data


def test_switcher_and_checker_are_told_by_the_fields() -> None:
    lab = parse(
        """\
        resources:
          - name: button
            relay_entity: switch.relay
            led_entity: binary_sensor.led
            check_entity: binary_sensor.up
          - name: explicit
            switcher_type: entity
            checker_type: none
            power_entity: switch.e
        """
    )
    button, explicit = lab.resources
    assert button["switcher_type"] == "button"
    assert button["checker_type"] == "entity"
    assert button["short_press"] == 0.5
    assert button["long_press"] == 6.0
    assert button["check_entity"] == "binary_sensor.up"
    assert explicit["checker_type"] == "none"
    assert "labels" not in explicit
    assert "depends_on" not in explicit


def test_defaults_apply_unless_overridden_or_unset() -> None:
    lab = parse(
        """\
        defaults:
          off_delay: 60
          graceful_off: false
          meter_entity: sensor.lab_power
          labels: [lab]
          port: 22
          short_press: 1
        resources:
          - name: a
            power_entity: switch.a
            host: a.lab
          - name: b
            power_entity: switch.b
            off_delay: 5
            meter_entity: null
            labels: [b]
          - name: c
            relay_entity: switch.c
            led_entity: binary_sensor.c
          - name: d
            power_entity: switch.d
            labels: null
        """
    )
    a, b, c, d = lab.resources
    assert "labels" not in d
    assert a["off_delay"] == 60.0
    assert a["graceful_off"] is False
    assert a["checker_type"] == "tcp"
    assert a["port"] == 22
    assert a["meter_entity"] == "sensor.lab_power"
    assert "short_press" not in a
    assert b["off_delay"] == 5.0
    assert "meter_entity" not in b
    assert b["labels"] == ["b"]
    assert b["checker_type"] == "none"
    assert "port" not in b
    assert c["short_press"] == 1.0
    assert c["labels"] == ["lab"]


def test_an_entry_given_twice_through_an_alias() -> None:
    assert one_problem(
        """\
        resources:
          - &pi
            <<: {labels: [pi]}
            name: pi1
            power_entity: switch.pi1
          - *pi
        """
    ) == (4, "resource 'pi1' is defined twice: at line 4 and at line 4")


def test_known_resources_units_and_bmcs_from_the_ui() -> None:
    lab = parse(
        """\
        resources:
          - name: pi1
            outlet: ui-pdu:16
            depends_on: ui-switch
          - name: server
            bmc: ui-bmc
        """,
        known_resources=["ui-switch"],
        known_units={"ui-pdu": 16},
        known_bmcs=["ui-bmc"],
    )
    assert by_name(lab)["pi1"]["depends_on"] == ["ui-switch"]
    assert by_name(lab)["pi1"]["outlets"] == ["ui-pdu:16"]


SHARE_HINT = (
    ": a feed powers one resource; to share it, make it a resource of its own that "
    "both depend on"
)


def test_a_feed_used_outside_the_file_is_refused() -> None:
    """Each kind of feed target, named as the UI or another lab has it (MACs normalised)."""
    known = {
        outlet_target("ui-pdu:3", "lab1"): "ui-server (made in the UI)",
        FeedTarget(FeedKind.ENTITY, "switch.stack_1"): "stack-1 (made in the UI)",
        FeedTarget(FeedKind.ENTITY, "binary_sensor.led"): "pc (lab Rack B)",
        FeedTarget(FeedKind.BMC, "ui-bmc", "lab1"): "server (made in the UI)",
        FeedTarget(FeedKind.MAC, "aa:bb:cc:dd:ee:ff"): "desk (lab Rack B)",
        # another lab's outlet of the same name is another outlet
        outlet_target("ui-pdu:4", "lab2"): "elsewhere (lab Rack B)",
    }
    assert problems(
        """\
        resources:
          - name: pi1
            outlet: ui-pdu:3
          - name: pi2
            outlet: ui-pdu:4
          - name: pi3
            power_entity: switch.stack_1
          - name: pc2
            relay_entity: switch.pc2_button
            led_entity: binary_sensor.led
          - name: server2
            bmc: ui-bmc
          - name: desk2
            mac: AA-BB-CC-DD-EE-FF
            ssh_host: desk2
            ssh_username: root
            ssh_password: x
            host: desk2
        """,
        known_units={"ui-pdu": 16},
        known_bmcs=["ui-bmc"],
        known_feeds=known,
        lab="lab1",
    ) == [
        (
            3,
            "outlet 'ui-pdu:3' of pi1 already feeds ui-server (made in the UI)"
            + SHARE_HINT,
        ),
        (
            7,
            "power_entity 'switch.stack_1' of pi3 already feeds stack-1 (made in the UI)"
            + SHARE_HINT,
        ),
        (
            10,
            "led_entity 'binary_sensor.led' of pc2 already feeds pc (lab Rack B)"
            + SHARE_HINT,
        ),
        (
            12,
            "bmc 'ui-bmc' of server2 already feeds server (made in the UI)"
            + SHARE_HINT,
        ),
        (
            14,
            "mac 'AA-BB-CC-DD-EE-FF' of desk2 already feeds desk (lab Rack B)"
            + SHARE_HINT,
        ),
    ]


def test_one_feed_one_resource_within_the_file() -> None:
    """Entities (whatever their role), BMCs and MACs: the second user is refused."""
    assert problems(
        """\
        bmcs:
          - name: bmc1
            host: 10.0.0.9
            username: admin
            password: x
        resources:
          - name: stack-1
            power_entity: switch.stack_1
          - name: pi1
            power_entity: switch.stack_1
          - name: pc
            relay_entity: switch.button
            led_entity: binary_sensor.pc_led
            reset_entity: switch.stack_1
          - name: server[1-2]
            bmc: bmc1
          - name: desk[1-2]
            mac: aa:bb:cc:dd:ee:ff
            ssh_host: desk
            ssh_username: root
            ssh_password: x
            host: desk
        """
    ) == [
        (
            10,
            "power_entity 'switch.stack_1' of pi1 already feeds stack-1 (line 7)"
            + SHARE_HINT,
        ),
        (
            14,
            "reset_entity 'switch.stack_1' of pc already feeds stack-1 (line 7)"
            + SHARE_HINT,
        ),
        (16, "bmc 'bmc1' of server2 already feeds server1 (line 15)" + SHARE_HINT),
        (
            18,
            "mac 'aa:bb:cc:dd:ee:ff' of desk2 already feeds desk1 (line 17)"
            + SHARE_HINT,
        ),
    ]


# Mistakes, each with its line


def test_wrong_types_and_values() -> None:
    assert problems(
        """\
        resources:
          - name: a
            power_entity: switch.a
            host: a
            port: abc
            graceful_off: maybe
            off_delay: -5
            power_w: many
            start_timeout: .inf
            switcher_type: entity
            checker_type: tcp
          - name: b
            power_entity: switch.b
            host: b
            port: 70000
            stop_timeout: 1.5e3
            min_off_time: "x[1-2"
          - name: c
            power_entity: switch.c
            host: c
            port: 22.5
            labels: !unknown x
        """
    ) == [
        (5, "port: expected a whole number, not 'abc'"),
        (6, "graceful_off: expected true or false, not 'maybe'"),
        (7, "off_delay: must be 0 or more, not -5"),
        (8, "power_w: expected a number, not 'many'"),
        (9, "start_timeout: expected a number, not '.inf'"),
        (15, "port: must be from 1 to 65535, not 70000"),
        (
            17,
            "min_off_time: bad range: 'x[1-2': '[' at column 2 is not closed",
        ),
        (21, "port: expected a whole number, not '22.5'"),
        (22, "labels: unknown tag !unknown"),
    ]


def test_unknown_unit_and_outlet_beyond_the_count() -> None:
    text = with_units(
        """\
        resources:
          - name: a
            outlet: pdu3:1
          - name: b
            outlets: [pdu1:9, pdu2:0, pdu1:x, pdu1]
          - name: c
            outlets: [pdu2:1000, pdu2:1000]
          - name: d
            outlets: []
        """
    )
    assert problems(text) == [
        (11, "outlet 'pdu3:1': no unit named 'pdu3' (did you mean 'pdu2'?)"),
        (13, "outlet 'pdu1:9': pdu1 has outlets 1 to 8"),
        (13, "outlet 'pdu2:0' is not unit:number (pdu1:3)"),
        (13, "outlet 'pdu1:x' is not unit:number (pdu1:3)"),
        (13, "outlet 'pdu1' is not unit:number (pdu1:3)"),
        (15, "outlets: an outlet is given twice"),
        (17, "outlets: at least one outlet is needed"),
    ]


def test_one_outlet_feeds_one_resource() -> None:
    assert problems(
        with_units(
            """\
        resources:
          - name: a[1-2]
            outlet: pdu1:[1-2]
          - name: b
            outlet: pdu1:2
          - name: c
            outlet: pdu1:1
            outlets: [pdu1:3]
        """
        )
    ) == [
        (13, "outlet 'pdu1:2' of b already feeds a2 (line 10)" + SHARE_HINT),
        (15, "give either 'outlet' or 'outlets', not both"),
    ]


def test_duplicate_names_after_expansion_name_both_lines() -> None:
    assert problems(
        """\
        resources:
          - name: pi[01-04]
            power_entity: switch.pi[01-04]
          - name: PI03
            power_entity: switch.x
        units:
          - name: p
            vendor: dli
            host: h
          - name: p
            vendor: dli
            host: h
        """
    ) == [
        (4, "resource 'PI03' is defined twice: at line 2 and at line 4"),
        (10, "unit 'p' is defined twice: at line 7 and at line 10"),
    ]


def test_names_made_in_the_ui_cannot_be_defined_again() -> None:
    assert problems(
        """\
        units:
          - name: ui-pdu
            vendor: dli
            host: h
        bmcs:
          - name: ui-bmc
            host: h
            username: u
            password: p
        resources:
          - name: ui-switch
            power_entity: switch.x
        """,
        known_resources=["UI-switch"],
        known_units={"ui-pdu": 8},  # an outlet count, never a lab's name
        known_bmcs=["ui-bmc"],
    ) == [
        (2, "unit 'ui-pdu' already exists outside the lab file"),
        (6, "BMC 'ui-bmc' already exists outside the lab file"),
        (11, "resource 'ui-switch' already exists outside the lab file"),
    ]


def test_unknown_dependency() -> None:
    assert problems(
        """\
        resources:
          - name: stack1
            power_entity: switch.stack1
          - name: pi1
            power_entity: switch.pi1
            depends_on:
              - stack1
              - stak2
        """
    ) == [(8, "depends_on: no resource named 'stak2' (did you mean 'stack1'?)")]


def test_dependency_cycle_is_refused_with_its_line() -> None:
    assert one_problem(
        """\
        resources:
          - name: switch
            power_entity: switch.switch
          - name: a
            power_entity: switch.a
            depends_on: [switch, c]
          - name: b
            power_entity: switch.b
            depends_on: a
          - name: c
            power_entity: switch.c
            depends_on: b
        """
    ) == (4, "dependency cycle: a -> c -> b -> a")
    assert one_problem(
        """\
        defaults:
          depends_on: [core]
        resources:
          - name: core
            power_entity: switch.core
        """
    ) == (4, "dependency cycle: core -> core")


def test_problems_of_different_sections_are_sorted_by_line() -> None:
    found = problems(
        """\
        resources:
          - name: a
            outlet: nowhere:1
        units:
          - name: p
            vendor: acme
            host: h
        """
    )
    assert [line for line, _ in found] == [3, 6]
    assert found[1][1].startswith("vendor: expected one of intellinet, netio")


def test_shape_of_the_file() -> None:
    assert one_problem("- a\n- b\n") == (
        1,
        "the lab file must be a mapping (key: value)",
    )
    assert problems(
        """\
        version: 2
        resources: {a: b}
        units: x
        defaults: [a]
        policies:
          max_parallel_on: -1
          on_spacing: 1
          shed_idle_on_battery: null
        bmcs:
          - just a name
        """
    ) == [
        (1, "version: only version 1 exists"),
        (2, "resources must be a list (- name: a)"),
        (3, "units must be a list (- name: a)"),
        (4, "defaults must be a mapping (key: value)"),
        (6, "max_parallel_on: must be from 0 to 10000, not -1"),
        (10, "a BMC must be a mapping (key: value)"),
    ]


def test_switcher_problems() -> None:
    assert problems(
        """\
        bmcs:
          - name: bmc1
            host: h
            username: u
            password: p
        resources:
          - name: nothing
          - name: two
            power_entity: switch.two
            outlet: pdu1:1
          - name: missing
            switcher_type: button
            relay_entity: switch.r
          - name: foreign
            power_entity: switch.f
            led_entity: binary_sensor.f
            port: 22
          - name: server
            bmc: bmc2
          - name: sensed
            power_entity: switch.s
            check_entity: binary_sensor.s
            host: s
        """
    ) == [
        (
            7,
            (
                "no switcher: give switcher_type or one of power_entity, relay_entity, "
                "bmc, mac, outlets (or outlet)"
            ),
        ),
        (
            8,
            (
                "both power_entity and outlets are given: set switcher_type to say "
                "which switcher it has"
            ),
        ),
        (11, "switcher_type button needs led_entity"),
        (16, "led_entity does not apply to switcher_type entity"),
        (17, "port does not apply to checker_type none"),
        (19, "bmc: no BMC named 'bmc2' (did you mean 'bmc1'?)"),
        (
            20,
            (
                "both host and check_entity are given: set checker_type to say "
                "which checker it has"
            ),
        ),
    ]


def test_checker_needs_its_fields() -> None:
    assert problems(
        """\
        resources:
          - name: a
            power_entity: switch.a
            checker_type: tcp
            port: 2222
          - name: b
            power_entity: switch.b
            checker_type: entity
        """
    ) == [
        (2, "checker_type tcp needs host"),
        (6, "checker_type entity needs check_entity"),
    ]


def test_a_tcp_check_without_a_port_checks_ssh() -> None:
    lab = parse(
        """\
        resources:
          - name: a
            power_entity: switch.a
            checker_type: tcp
            host: a
        """
    )
    assert (lab.resources[0]["host"], lab.resources[0]["port"]) == ("a", 22)


def test_wake_on_lan_checks() -> None:
    assert problems(
        """\
        resources:
          - name: w1
            mac: aa:bb:cc:dd:ee:01
            ssh_host: w1
            ssh_username: root
          - name: w2
            switcher_type: wol
            mac: "aabb.ccdd.eeff"
            ssh_host: w2
            ssh_username: root
            ssh_password: pw
            host: w2
          - name: w3
            mac: not-a-mac
            ssh_host: w3
            ssh_username: root
            ssh_password: pw
            host: w3
          - name: w4
            mac: aa:bb:cc:dd:ee:04
            ssh_host: w4
            ssh_username: root
            ssh_key: KEY
            host: w4
        """
    ) == [
        (2, "switcher_type wol needs ssh_password or ssh_key"),
        (
            2,
            "switcher_type wol needs a checker: Wake-on-LAN cannot read the power state",
        ),
        (14, "mac: expected a MAC address (aa:bb:cc:dd:ee:ff), not 'not-a-mac'"),
        (
            23,
            "ssh_key: not a usable SSH private key (OpenSSH or PEM format, unencrypted)",
        ),
    ]


def test_ttl_checks() -> None:
    assert problems(
        """\
        defaults:
          max_ttl: 600
        resources:
          - name: a
            power_entity: switch.a
            default_ttl: 0
          - name: b
            power_entity: switch.b
            default_ttl: 3600
          - name: c
            power_entity: switch.c
            max_ttl: 0
            default_ttl: 60
        """
    ) == [
        (2, "max_ttl 600 s is below default_ttl 3600 s"),
        (6, "default_ttl: must be more than 0"),
        (12, "max_ttl: must be more than 0"),
    ]
    assert one_problem(
        """\
        resources:
          - name: a
            power_entity: switch.a
            max_ttl: 60
        """
    ) == (4, "max_ttl 60 s is below default_ttl 3600 s")
    assert one_problem(
        """\
        resources:
          - name: a
            power_entity: switch.a
            default_ttl: 7200
            max_ttl: 3600.5
        """
    ) == (5, "max_ttl 3600.5 s is below default_ttl 7200 s")


def test_bounded_numbers_read_as_written() -> None:
    """A bound and the value given print as people write them (not 3.1536e+07)."""
    assert problems(
        """\
        resources:
          - name: a
            power_entity: switch.a
            off_delay: 40000000
            stop_timeout: -0.25
          - name: b
            power_entity: switch.b
            max_ttl: 1209600
            default_ttl: 2419200
          - name: c
            power_entity: switch.c
            host: c
            port: 1%s
        """
        % ("0" * 400)
    ) == [
        (4, "off_delay: must be at most 31536000 s (365 days), not 40000000"),
        (5, "stop_timeout: must be 0 or more, not -0.25"),
        (8, "max_ttl 1209600 s (14 days) is below default_ttl 2419200 s (28 days)"),
        (13, "port: expected a finite number, not '1" + "0" * 37 + "…"),
    ]


def test_ttl_problem_without_a_line_of_its_own() -> None:
    # Only possible through the policy defaults: zero never comes from them, so the
    # line is the one given; this covers the resource's own line for default ttls.
    assert one_problem(
        """\
        resources:
          - name: a
            power_entity: switch.a
            max_ttl: 1
        """
    ) == (4, "max_ttl 1 s is below default_ttl 3600 s")


def test_unit_problems() -> None:
    assert problems(
        """\
        units:
          - name: nothing
          - name: http
            vendor: netio
            host: h
            community: public
            outlet_count: 0
          - name: v2
            vendor: snmp
            host: h
            auth_key: k
          - name: v3
            vendor: snmp
            host: h
            snmp_version: 3
            auth_protocol: sha
            priv_key: p
          - name: v3b
            vendor: snmp
            host: h
            snmp_version: 3
            username: u
            priv_protocol: aes
            priv_key: p
          - name: v4
            vendor: snmp
            host: h
            snmp_version: 4
        """
    ) == [
        (2, "a unit needs vendor"),
        (6, "community does not apply to vendor netio"),
        (7, "outlet_count: must be from 1 to 1000, not 0"),
        (8, "SNMP version 2c needs community"),
        (11, "auth_key applies only to SNMP version 3"),
        (12, "SNMP version 3 needs username"),
        (12, "priv_protocol and priv_key go together"),
        (16, "auth_protocol and auth_key go together"),
        (23, "priv_protocol needs auth_protocol as well"),
        (28, "snmp_version: expected one of 1, 2c, 3, not '4'"),
    ]


def test_snmp_profile_is_one_of_the_drivers() -> None:
    lab = parse(
        """\
        units:
          - name: tl[1-2]
            vendor: snmp
            host: 10.0.0.[7-8]
            community: public
            snmp_profile: tripplite_legacy
        """
    )
    assert [unit["snmp_profile"] for unit in lab.units] == ["tripplite_legacy"] * 2
    [(line, message)] = problems(
        """\
        units:
          - name: tl
            vendor: snmp
            host: h
            community: public
            snmp_profile: tripplite_old
        """
    )
    assert line == 6
    assert message.startswith("snmp_profile: expected one of automatic, ")
    assert "tripplite_legacy" in message


def test_bmc_problems() -> None:
    assert problems(
        """\
        bmcs:
          - name: b
            protocol: ipmi
            cipher_suite: 18
        """
    ) == [
        (2, "a BMC needs host"),
        (2, "a BMC needs username"),
        (2, "a BMC needs password"),
        (4, "cipher_suite: must be from 0 to 17, not 18"),
    ]


def test_error_text_and_problem_values() -> None:
    error = LabFileError(
        [LabFileProblem(None, "whole file"), LabFileProblem(3, "line three")],
        "lab.yaml",
    )
    assert str(error) == "lab.yaml: whole file\nlab.yaml line 3: line three"
    assert error.errors[1] == LabFileProblem(3, "line three")
    assert not error.truncated
    assert LabFileError([]).filename == "labpower.yaml"
