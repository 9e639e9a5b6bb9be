"""Fixtures for the real-kernel functional tests.

These tests only run inside the lab guest (``python -m
multipath_brick.tests.functional.lab run``). Anywhere else every test is
skipped with the reason below: the host kernel has no SCSI/iSCSI/dm, and the
tests must never touch a real host's storage stack.
"""

from __future__ import annotations

import os
import pprint

import pytest

from .lab import in_lab_guest
from .lab.api import Lab

IN_GUEST = in_lab_guest()
SKIP_REASON = (
    "functional tests need the lab guest (real kernel with iSCSI, dm-multipath, "
    "tgt; this kernel has none of them): run "
    "`python -m multipath_brick.tests.functional.lab run`"
)
_HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if str(item.path).startswith(_HERE + os.sep):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lab() -> Lab:
    """The prepared lab (one per guest boot); see lab/api.py for the API."""
    if not IN_GUEST:
        pytest.skip(SKIP_REASON)
    lab = Lab.from_state()
    # Start from a clean host even if something ran before pytest.
    lab.reset()
    return lab


def _is_clean(left: dict[str, list[str]]) -> bool:
    return not any(left.values())


@pytest.fixture(autouse=True)
def no_leftovers(request: pytest.FixtureRequest):
    """After every test: nothing may be left (sessions, node records,
    discovery records, sdX, multipath maps). The lab is then reset anyway so
    one failing test cannot break the next ones."""
    if not IN_GUEST:
        yield
        return
    lab: Lab = request.getfixturevalue("lab")
    yield
    left = lab.leftovers()
    errors = lab.reset()
    assert _is_clean(left), "leftovers after test:\n" + pprint.pformat(left)
    assert not errors, "lab reset errors:\n" + "\n".join(errors)
