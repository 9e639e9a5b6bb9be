"""Cinder-style connection properties of the lab's volumes, for tests, demo and benches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .api import Lab

#: ``volume_id``'s default: a key Cinder sends and the libraries ignore.
LUN_VOLUME_ID = "lun-{lun}"


def volume_props(
    lab: Lab,
    lun: int,
    *,
    portals: Sequence[str] | None = None,
    iqn: str | None = None,
    chap: tuple[str, str] | None = None,
    singular: bool = False,
    volume_id: str | None = LUN_VOLUME_ID,
) -> dict[str, Any]:
    """Cinder-style connection properties for LUN `lun` of `iqn` (lab.iqn).

    Plural (``target_portals``/``target_iqns``/``target_luns``, one entry per
    portal) unless `singular`, which names only the first portal and makes the
    connector discover the others. CHAP is the lab's unless `chap` is given.

    :param volume_id: the ``volume_id`` key (``{lun}`` is replaced), or None for none.
    """
    portals = list(portals if portals is not None else lab.portals)
    iqn = iqn or lab.iqn
    user, password = chap or tuple(lab.chap)
    props: dict[str, Any] = {"target_discovered": False}
    if singular:
        props.update(target_portal=portals[0], target_iqn=iqn, target_lun=lun)
    else:
        props.update(
            target_portals=portals,
            target_iqns=[iqn] * len(portals),
            target_luns=[lun] * len(portals),
        )
    props.update(auth_method="CHAP", auth_username=user, auth_password=password)
    if volume_id is not None:
        props["volume_id"] = volume_id.format(lun=lun)
    return props
