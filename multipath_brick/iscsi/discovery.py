"""A volume's targets from a sendtargets answer, by os-brick's rule.

Given one portal, the connector asks it for every (portal, target) the array
has (``iscsiadm -m discovery -t sendtargets``). Arrays come in two kinds: those
that show the volume's target on every portal, and those that give each portal
a target name of its own (one LUN behind several names). os-brick tells them
apart the same way: when the given target name is on every portal the answer
lists, the volume's paths are that name on each portal; when it is not, every
(portal, target) pair of the answer is a path, and the LUN's WWID decides which
disks are the volume (a path to another LUN claims no map).

The answer comes from the network: each pair is validated like connection
properties, and a pair that fails is left out with the reason, never the
whole attach.
"""

from __future__ import annotations

from collections.abc import Sequence

from multipath_brick import validate
from multipath_brick.iscsi.iscsiadm import DiscoveredTarget
from multipath_brick.iscsi.properties import Target


def volume_targets(
    given: Target, answer: Sequence[DiscoveredTarget]
) -> tuple[tuple[Target, ...], tuple[str, ...]]:
    """The volume's targets: the given one first, then the others in the array's order.

    :param given: the target of the connection properties (portal, name, LUN).
    :param answer: the discovery's lines.
    :returns: the targets, and one reason per answered pair left out.
    """
    portals = {line.portal for line in answer}
    on_every_portal = portals == {line.portal for line in answer if line.iqn == given.iqn}
    pairs = [
        (line.portal, line.iqn) for line in answer if not on_every_portal or line.iqn == given.iqn
    ]
    targets = [given]
    refused = []
    for portal, iqn in pairs:
        try:
            target = Target(validate.portal(portal), validate.target_name(iqn), given.lun)
        except validate.ValidationError as error:
            refused.append(f"discovered {iqn} at {portal}: {error}")
            continue
        if target not in targets:
            targets.append(target)
    return tuple(targets), tuple(refused)
