#!/usr/bin/env bash
# Capture how open-iscsi lays out and finds node records of one (target, portal)
# reached through two ifaces, with and without a tpgt on `-p`, and what a wrong
# tpgt does to a login, into multipath_brick/tests/fixtures/node_tpgt_sequence.txt.
# Runs INSIDE the guest, after the lab setup:
#
#   python -m multipath_brick.tests.lab capture --part tpgt
#
# Two ifaces of ours: mpb-mpbi0 (bound to mpbi0) and mpb-mpbi1 (bound to mpbi1);
# both reach portal 0 (Linux assumes on-link: see iface_netdev_sequence.txt).
# shellcheck source=capture_lib.sh
. "$(dirname "$0")/capture_lib.sh" "$@"
F=node_tpgt_sequence.txt
rm -f "$OUT/$F"
s() { seq_ "$F" "$@"; }
layout() { s find /etc/iscsi/nodes -mindepth 1 -printf '%y %P\n'; }
sessions() {
    s iscsiadm -m session
    for d in /sys/class/iscsi_session/session*; do
        [ -e "$d" ] || continue
        s sh -c "echo $(basename "$d") tpgt=\$(cat $d/tpgt) ifacename=\$(cat $d/ifacename) persistent=\$(cat $d/device/connection*/iscsi_connection/connection*/persistent_address 2>/dev/null)"
    done
}
wipe() { iscsiadm -m node -o delete >/dev/null 2>&1; rm -rf /etc/iscsi/nodes/*; }

say "ifaces"
for n in 0 1; do
    iscsiadm -m iface -I "mpb-mpbi$n" -o new >/dev/null
    iscsiadm -m iface -I "mpb-mpbi$n" -o update -n iface.net_ifacename -v "mpbi$n" >/dev/null
done
wipe

say "A: -o new without a tpgt, two ifaces, one portal"
note "$F" "A: -o new without a tpgt for two ifaces of one portal"
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 -o new
layout
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi1 -o new
layout
s iscsiadm -m node
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 -o show
wipe

say "B: -o new with tpgt 1 (tgt's), two ifaces, logins, logouts, deletes"
note "$F" "B: -o new with the target's tpgt (1) for two ifaces of one portal"
s iscsiadm -m node -T "$IQN" -p "${P[0]},1" -I mpb-mpbi0 -o new
layout
s iscsiadm -m node -T "$IQN" -p "${P[0]},1" -I mpb-mpbi1 -o new
layout
s iscsiadm -m node
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi1 -o show
login_ready "${P[0]}" mpb-mpbi0 >/dev/null 2>&1
login_ready "${P[0]}" mpb-mpbi1 >/dev/null 2>&1
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 --login
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi1 --login
sessions
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 -o delete
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 --logout
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 -o delete
layout
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi1 --logout
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi1 -o delete
layout
wipe

say "C: a wrong tpgt (7)"
note "$F" "C: -o new with a wrong tpgt (7; the target's is 1), login"
s iscsiadm -m node -T "$IQN" -p "${P[0]},7" -I mpb-mpbi0 -o new
layout
login_ready "${P[0]}" mpb-mpbi0 >/dev/null 2>&1
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 --login
sessions
s iscsiadm -m node
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 --logout
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 -o delete
layout
wipe

say "D: a flat record, then a tpgt record of another iface"
note "$F" "D: a flat record (default, no tpgt), then -o new with a tpgt for another iface"
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o new
layout
s iscsiadm -m node -T "$IQN" -p "${P[0]},1" -I mpb-mpbi0 -o new
layout
s iscsiadm -m node
wipe

say "E: a tpgt record, then a flat record of another iface, then a delete of the first"
note "$F" "E: a tpgt record (mpb-mpbi0), then a flat one (default), then -o delete of mpb-mpbi0"
s iscsiadm -m node -T "$IQN" -p "${P[0]},1" -I mpb-mpbi0 -o new
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o new
layout
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 -o delete
layout
s iscsiadm -m node
wipe

say "F: sendtargets through an iface, not persistent"
note "$F" "F: sendtargets discovery through mpb-mpbi0, not persistent"
s iscsiadm -m discovery -t sendtargets -p "${P[0]}" -I mpb-mpbi0 -o nonpersistent
layout
wipe
for n in 0 1; do iscsiadm -m iface -I "mpb-mpbi$n" -o delete >/dev/null; done
say "done"
