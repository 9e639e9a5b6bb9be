"""The volume's targets from a sendtargets answer (os-brick's rule), pure."""

from __future__ import annotations

from multipath_brick.iscsi.discovery import volume_targets
from multipath_brick.iscsi.iscsiadm import DiscoveredTarget
from multipath_brick.iscsi.properties import Target

IQN = "iqn.2024-01.test.mpb:vol"
GIVEN = Target("10.0.1.2:3260", IQN, 3)


def line(portal: str, iqn: str = IQN) -> DiscoveredTarget:
    return DiscoveredTarget(portal, 1, iqn)


def test_a_name_on_every_portal_gives_that_name_on_each_portal() -> None:
    answer = [line("10.0.1.2:3260"), line("10.0.2.2:3260"), line("10.0.2.2:3260", "iqn.x:other")]
    answer.append(line("10.0.1.2:3260", "iqn.x:other"))
    targets, refused = volume_targets(GIVEN, answer)
    assert targets == (GIVEN, Target("10.0.2.2:3260", IQN, 3))
    assert refused == ()


def test_a_name_per_portal_gives_every_pair_of_the_answer() -> None:
    # Arrays that name the target per portal: os-brick logs in to every pair
    # and the LUN's WWID decides which disks are the volume.
    answer = [line("10.0.1.2:3260"), line("10.0.2.2:3260", "iqn.2024-01.test.mpb:vol-b")]
    targets, refused = volume_targets(GIVEN, answer)
    assert targets == (GIVEN, Target("10.0.2.2:3260", "iqn.2024-01.test.mpb:vol-b", 3))
    assert refused == ()


def test_the_given_target_comes_first_even_when_the_array_lists_it_later() -> None:
    answer = [line("10.0.3.2:3260"), line("10.0.1.2:3260"), line("10.0.2.2:3260")]
    targets, _ = volume_targets(GIVEN, answer)
    assert [t.portal for t in targets] == ["10.0.1.2:3260", "10.0.3.2:3260", "10.0.2.2:3260"]


def test_a_hostile_pair_is_left_out_with_its_reason_not_the_attach() -> None:
    answer = [line("10.0.1.2:3260"), line("10.0.2.2:3260", "../../../tmp/x")]
    targets, refused = volume_targets(GIVEN, answer)
    assert targets == (GIVEN,)
    assert len(refused) == 1 and "../../../tmp/x" in refused[0] and "10.0.2.2:3260" in refused[0]


def test_an_empty_answer_keeps_the_given_target() -> None:
    assert volume_targets(GIVEN, []) == ((GIVEN,), ())
