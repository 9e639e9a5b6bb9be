"""The shipped rootwrap filters, checked with oslo.rootwrap's own loader and matcher,
against the command the connector really starts its daemon with."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from oslo_config import cfg

from multipath_brick import privileged

wrapper = pytest.importorskip("oslo_rootwrap.wrapper")

NOVA_HELPER = "sudo nova-rootwrap /etc/nova/rootwrap.conf"
OURS = "privsep-rootwrap-multipath_brick"


@pytest.fixture(scope="module")
def filters_dir() -> Iterator[Path]:
    shipped = resources.files("multipath_brick") / "rootwrap" / "multipath-brick.filters"
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(str(shipped), Path(tmp) / "multipath-brick.filters")
        yield Path(tmp)


def daemon_argv(root_helper: str, config_files: list[str]) -> list[str]:
    """What oslo.privsep runs to start our daemon, after the root helper, as
    start_daemon() configures it (config files as helper_command adds them)."""
    prefix = privileged.helper_command(root_helper, euid=1000)
    at = prefix.index("privsep-helper") + 1
    for path in reversed(config_files):
        prefix[at:at] = ["--config-file", path]
    group = privileged.CFG_SECTION
    context = privileged.context  # registers its configuration group
    cfg.CONF.set_default("helper_command", shlex.join(prefix), group=group)
    try:
        sock = tempfile.mkdtemp()
        argv = context.helper_command(f"{sock}/privsep.sock")
    finally:
        cfg.CONF.set_default("helper_command", None, group=group)
        shutil.rmtree(sock, ignore_errors=True)
    return argv[len(shlex.split(root_helper)) :]


def matched(filters_path: list[str], argv: list[str]) -> str:
    # exec_dirs as rootwrap.conf's: where privsep-helper is (this venv's bin).
    bindir = os.path.dirname(sys.executable)
    found = wrapper.match_filter(wrapper.load_filters(filters_path), argv, [bindir])
    return str(found.name)


@pytest.mark.parametrize(
    "config_files",
    [[], ["/etc/nova/nova.conf"], ["/etc/nova/nova.conf", "/etc/nova/nova-compute.conf"]],
)
def test_the_shipped_filters_allow_the_daemon_as_started(filters_dir, config_files):
    argv = daemon_argv(NOVA_HELPER, config_files)
    assert argv[0] == "privsep-helper"
    assert argv[-4:-2] == ["--privsep_context", privileged.PYPATH]
    assert matched([str(filters_dir)], argv).startswith(OURS)


@pytest.mark.parametrize(
    "change",
    [
        lambda a: [x.replace(privileged.PYPATH, "os_brick.privileged.default") for x in a],
        lambda a: [x.replace("/tmp/tmp", "/var/tmp/tmp") for x in a],
        lambda a: [*a[:1], "--config-file", "/etc/nova/../../tmp/evil.conf", *a[1:]],
        lambda a: [*a[:1], "--config-file", "/home/u/x.conf", *a[1:]],
        lambda a: [*a, "--privsep_user", "root"],
    ],
)
def test_the_shipped_filters_allow_nothing_else(filters_dir, change):
    argv = change(daemon_argv(NOVA_HELPER, []))
    # Only rootwrap's own blanket privsep-helper rule (below) may still match.
    assert not matched([str(filters_dir)], argv).startswith(OURS)


def test_rootwrap_itself_lets_any_privsep_helper_run():
    # oslo.rootwrap's load_filters() always adds "privsep-helper: CommandFilter,
    # privsep-helper, root": with nova's or cinder's own filters and no file of
    # ours, the daemon starts. The shipped file is for a rootwrap without that
    # rule, and says exactly what runs.
    argv = daemon_argv(NOVA_HELPER, ["/etc/nova/nova.conf"])
    assert matched([], argv) == "privsep-helper"


def test_the_standalone_rootwrap_conf_and_sudoers_line_name_the_same_files():
    base = resources.files("multipath_brick") / "rootwrap"
    conf = (base / "rootwrap.conf").read_text()
    sudoers = (base / "sudoers").read_text()
    assert "filters_path=/etc/multipath-brick/rootwrap.d\n" in conf
    assert "oslo-rootwrap /etc/multipath-brick/rootwrap.conf *" in sudoers
