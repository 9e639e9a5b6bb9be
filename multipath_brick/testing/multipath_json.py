"""multipathd's JSON answer about one map (``show map <map> json``), as 0.9.4 prints it.

multipathd does not use a JSON library: it prints fixed templates (libmultipath
``print.c``), three spaces per level, ``"key" : value`` in the map's and paths'
fields, and one path group per path with the lab's ``path_grouping_policy
failover``. The fake prints the same text, so that a parser tested against the
fake reads what the lab captured (``multipathd_show_map_sequence.txt``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

#: ``major_version`` / ``minor_version`` of the format (libmultipath's
#: PRINT_JSON_MAJOR_VERSION / PRINT_JSON_MINOR_VERSION in 0.9.4).
VERSION = (0, 1)


@dataclasses.dataclass(frozen=True)
class JsonPath:
    """One path of the map, as multipathd knows it."""

    dev: str
    dev_t: str
    dm_state: str
    checker: str
    target: str
    adapter: str
    lun: int

    @property
    def up(self) -> bool:
        return self.checker == "ready"


def lun_hex(lun: int) -> str:
    """The LUN as SAM writes it (the kernel's ``int_to_scsilun``): LUN 1 is
    ``0x0001000000000000``."""
    value = 0
    for level in range(4):
        value |= ((lun >> (16 * level)) & 0xFFFF) << (48 - 16 * level)
    return f"0x{value:016x}"


def _fields(pairs: Sequence[tuple[str, object]], indent: str) -> str:
    lines = []
    for key, value in pairs:
        shown = f'"{value}"' if isinstance(value, str) else str(value)
        lines.append(f'{indent}"{key}" : {shown}')
    return ",\n".join(lines)


def map_json(
    *, name: str, wwid: str, dm: str, paths: Sequence[JsonPath], vendor: tuple[str, str, str]
) -> str:
    """The whole answer, one path group per path, the first group the active one."""
    vend, prod, rev = vendor
    head = _fields(
        (
            ("name", name),
            ("uuid", wwid),
            ("sysfs", dm),
            ("failback", "-"),
            ("queueing", "-"),
            ("paths", sum(p.up for p in paths)),
            ("write_prot", "rw"),
            ("dm_st", "active"),
            ("features", "0"),
            ("hwhandler", "0"),
            ("action", "create"),
            ("path_faults", sum(not p.up for p in paths)),
            ("vend", vend),
            ("prod", prod),
            ("rev", rev),
            ("switch_grp", 0),
            ("map_loads", 1),
            ("total_q_time", 0),
            ("q_timeouts", 0),
        ),
        " " * 6,
    )
    groups = []
    for number, path in enumerate(paths, 1):
        group = _fields(
            (
                ("selector", "service-time 0"),
                ("pri", int(path.up)),
                ("dm_st", "active" if number == 1 else "enabled"),
                ("marginal_st", "normal"),
                ("group", number),
            ),
            " " * 9,
        )
        fields = _fields(
            (
                ("dev", path.dev),
                ("dev_t", path.dev_t),
                ("dm_st", path.dm_state),
                ("dev_st", "running"),
                ("chk_st", path.checker),
                ("checker", "tur"),
                ("pri", int(path.up)),
                ("host_wwnn", "[undef]"),
                ("target_wwnn", path.target),
                ("host_wwpn", "[undef]"),
                ("target_wwpn", "[undef]"),
                ("host_adapter", path.adapter),
                ("lun_hex", lun_hex(path.lun)),
                ("marginal_st", "normal"),
            ),
            " " * 12,
        )
        groups.append(f'{group},\n         "paths": [{{\n{fields}\n         }}]\n')
    body = "      },{\n".join(groups) if groups else ""
    path_groups = (
        f'      "path_groups": [{{\n{body}      }}]\n' if groups else '      "path_groups": []\n'
    )
    major, minor = VERSION
    return (
        "{\n"
        f'   "major_version": {major},\n'
        f'   "minor_version": {minor},\n'
        '   "map":{\n'
        f"{head},\n"
        f"{path_groups}"
        "   }\n"
        "}\n"
    )
