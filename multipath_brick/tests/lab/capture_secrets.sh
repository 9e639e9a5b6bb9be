#!/usr/bin/env bash
# Capture what the secrets writer (multipath_brick/privileged/nodedb.py) relies on,
# from the real open-iscsi and tgt in the lab guest:
#
#   python -m multipath_brick.tests.lab shell-cmd \
#       --rw multipath_brick/tests/fixtures \
#       'bash multipath_brick/tests/lab/capture_secrets.sh multipath_brick/tests/fixtures'
#
# Writes iscsiadm_node_record.txt (a node record file and the discovery record
# file as iscsiadm writes them, with modes) and chap_modes_sequence.txt (mutual
# CHAP and discovery CHAP against tgt: right and wrong secrets). The secrets
# are the lab's test values. Same block format as capture_fixtures.sh.
# shellcheck source=capture_lib.sh
. "$(dirname "$0")/capture_lib.sh" "$@"
NODE=(iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default)
DISC=(iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -I default)
ADDR=${P[0]%:*}; PORT=${P[0]##*:}

F=$OUT/iscsiadm_node_record.txt; : >"$F"
block iscsiadm --version >>"$F"
block "${NODE[@]}" -o new >>"$F"
block "${NODE[@]}" -o update -n node.session.auth.authmethod -v CHAP \
    -n node.session.auth.username -v "$MPB_LAB_CHAP_USER" \
    -n node.session.auth.password -v "$MPB_LAB_CHAP_PASSWORD" \
    -n node.session.auth.username_in -v mpbtarget \
    -n node.session.auth.password_in -v mpb-target-456 >>"$F"
block cat "/etc/iscsi/nodes/$IQN/$ADDR,$PORT" >>"$F"
block "${DISC[@]}" -o new >>"$F"
block "${DISC[@]}" -o update -n discovery.sendtargets.auth.authmethod -v CHAP >>"$F"
block "${DISC[@]}" -o update -n discovery.sendtargets.auth.username -v mpbdisc >>"$F"
block "${DISC[@]}" -o update -n discovery.sendtargets.auth.password -v mpb-disc-789 >>"$F"
block cat "/etc/iscsi/send_targets/$ADDR,$PORT/st_config" >>"$F"
block find /etc/iscsi/nodes /etc/iscsi/send_targets /run/lock/iscsi -printf '%M %u:%g %p\n' >>"$F"
block "${NODE[@]}" -o delete >>"$F"
block "${DISC[@]}" -o delete >>"$F"

F=$OUT/chap_modes_sequence.txt; : >"$F"
T=(tgtadm --lld iscsi)
# mutual CHAP: an outgoing account on the target
block "${T[@]}" --op new --mode account --user mpbtarget --password mpb-target-456 >>"$F"
block "${T[@]}" --op bind --mode account --tid 1 --user mpbtarget --outgoing >>"$F"
block "${NODE[@]}" -o new >>"$F"
block "${NODE[@]}" -o update -n node.session.auth.authmethod -v CHAP \
    -n node.session.auth.username -v "$MPB_LAB_CHAP_USER" \
    -n node.session.auth.password -v "$MPB_LAB_CHAP_PASSWORD" \
    -n node.session.auth.username_in -v mpbtarget \
    -n node.session.auth.password_in -v wrong-target-1 >>"$F"
block "${NODE[@]}" --login >>"$F"
block "${NODE[@]}" -o update -n node.session.auth.password_in -v mpb-target-456 >>"$F"
block "${NODE[@]}" --login >>"$F"
block "${NODE[@]}" --logout >>"$F"
block "${NODE[@]}" -o delete >>"$F"
block "${T[@]}" --op unbind --mode account --tid 1 --user mpbtarget --outgoing >>"$F"
# discovery CHAP: an account bound with no --tid goes to tgt's global target,
# which discovery sessions use (tgt usr/iscsi/iscsid.c: conn->tid = GLOBAL_TID)
block "${T[@]}" --op new --mode account --user mpbdisc --password mpb-disc-789 >>"$F"
block "${T[@]}" --op bind --mode account --user mpbdisc >>"$F"
block "${DISC[@]}" -o new >>"$F"
block "${DISC[@]}" --discover -o nonpersistent >>"$F"
block "${DISC[@]}" -o update -n discovery.sendtargets.auth.authmethod -v CHAP >>"$F"
block "${DISC[@]}" -o update -n discovery.sendtargets.auth.username -v mpbdisc >>"$F"
block "${DISC[@]}" -o update -n discovery.sendtargets.auth.password -v wrong-disc-1 >>"$F"
block "${DISC[@]}" --discover -o nonpersistent >>"$F"
block "${DISC[@]}" -o update -n discovery.sendtargets.auth.password -v mpb-disc-789 >>"$F"
block "${DISC[@]}" --discover -o nonpersistent >>"$F"
block "${DISC[@]}" -o delete >>"$F"
block "${T[@]}" --op unbind --mode account --user mpbdisc >>"$F"
block "${T[@]}" --op show --mode account >>"$F"
rm -rf "$TMP"
