#!/usr/bin/env bash
# Capture what `iscsiadm -m node -o delete` removes from open-iscsi's record
# database, and what it refuses, into
# multipath_brick/tests/fixtures/node_delete_sequence.txt. The whole of
# /etc/iscsi is listed after each step (nodes/, static/, send_targets/): the
# daemon's own delete (privileged/nodedb.py) must leave the same tree.
# Runs INSIDE the guest, after the lab setup:
#
#   python -m multipath_brick.tests.lab capture --part delete
# shellcheck source=capture_lib.sh
. "$(dirname "$0")/capture_lib.sh" "$@"
F=node_delete_sequence.txt
rm -f "$OUT/$F"
s() { seq_ "$F" "$@"; }
tree() {
    s find /etc/iscsi -mindepth 1 -path /etc/iscsi/ifaces -prune -o \
        \( -name iscsid.conf -o -name initiatorname.iscsi \) -prune -o -printf '%y %m %P %l\n'
}
wipe() { iscsiadm -m node -o delete >/dev/null 2>&1; rm -rf /etc/iscsi/nodes/* /etc/iscsi/static; }

say "ifaces"
for n in 0 1; do
    iscsiadm -m iface -I "mpb-mpbi$n" -o new >/dev/null
    iscsiadm -m iface -I "mpb-mpbi$n" -o update -n iface.net_ifacename -v "mpbi$n" >/dev/null
done
wipe
tree

say "A: a flat record, a delete through another iface, then its own"
note "$F" "A: a flat record (no tpgt, iface default): -o delete through mpb-mpbi0, then through default"
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o new
tree
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 -o delete
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o delete
tree
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o delete
wipe

say "B: records with the tpgt, two ifaces of one portal, a second portal"
note "$F" "B: tpgt records (tpgt 1) through mpb-mpbi0 and mpb-mpbi1 of portal 0, and default of portal 1"
s iscsiadm -m node -T "$IQN" -p "${P[0]},1" -I mpb-mpbi0 -o new
s iscsiadm -m node -T "$IQN" -p "${P[0]},1" -I mpb-mpbi1 -o new
s iscsiadm -m node -T "$IQN" -p "${P[1]},1" -I default -o new
tree
login_ready "${P[0]}" mpb-mpbi0 >/dev/null 2>&1
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 --login
note "$F" "B: a delete while the record's session is up"
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 -o delete
note "$F" "B: the other iface's record of the same portal, while mpb-mpbi0's session is up"
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi1 -o delete
tree
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 --logout
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 -o delete
tree
s iscsiadm -m node -T "$IQN" -p "${P[1]}" -I default -o delete
tree
wipe

say "C: a flat record and a tpgt record of one portal, the tpgt one deleted"
note "$F" "C: a tpgt record (mpb-mpbi0) and a flat one (default) of portal 0; -o delete of mpb-mpbi0"
s iscsiadm -m node -T "$IQN" -p "${P[0]},1" -I mpb-mpbi0 -o new
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o new
tree
s iscsiadm -m node -T "$IQN" -p "${P[0]}" -I mpb-mpbi0 -o delete
tree
wipe
for n in 0 1; do iscsiadm -m iface -I "mpb-mpbi$n" -o delete >/dev/null; done
say "done"
