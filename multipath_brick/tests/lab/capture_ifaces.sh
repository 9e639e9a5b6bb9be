#!/usr/bin/env bash
# Capture real `iscsiadm -m iface` answers, logins through an iface bound to a
# netdev, and the netdev files the bond reads, into multipath_brick/tests/fixtures
# (the fake host's iface model is checked against them). Runs INSIDE the guest,
# after the lab setup:
#
#   python -m multipath_brick.tests.lab capture --part ifaces
#
# The iface is bound to mpbi0, the initiator side of portal 0's veth pair
# (192.168.100.1/24); portal 1 (192.168.101.2) is on another subnet, reachable
# only through mpbi1.
# shellcheck source=capture_lib.sh
. "$(dirname "$0")/capture_lib.sh" "$@"

I=mpb-mpbi0
DEV=mpbi0
inode() {  # portal args... : a node command through our iface
    iscsiadm -m node -T "$IQN" -p "$1" -I "$I" "${@:2}"
}
rm -f "$OUT/iface_netdev_sequence.txt"

say "iface records"
cap iscsiadm_iface_show_missing.txt iscsiadm -m iface -I "$I" -o show
cap iscsiadm_iface_update_missing.txt iscsiadm -m iface -I "$I" -o update -n iface.net_ifacename -v "$DEV"
cap iscsiadm_iface_delete_missing.txt iscsiadm -m iface -I "$I" -o delete
cap iscsiadm_node_new_iface_missing.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I "$I" -o new
cap iscsiadm_iface_new.txt iscsiadm -m iface -I "$I" -o new
cap iscsiadm_iface_new_exists.txt iscsiadm -m iface -I "$I" -o new
cap iscsiadm_iface_show_new.txt iscsiadm -m iface -I "$I" -o show
cap iscsiadm_iface_update.txt iscsiadm -m iface -I "$I" -o update -n iface.net_ifacename -v "$DEV"
cap iscsiadm_iface_update_two.txt iscsiadm -m iface -I "$I" -o update -n iface.transport_name -v tcp -n iface.initiatorname -v "$MPB_LAB_INITIATOR"
cap iscsiadm_iface_update_bad_name.txt iscsiadm -m iface -I "$I" -o update -n iface.no_such_setting -v 1
cap iscsiadm_iface_show.txt iscsiadm -m iface -I "$I" -o show
cap iscsiadm_iface_list.txt iscsiadm -m iface
cap iscsiadm_iface_new_default.txt iscsiadm -m iface -I default -o new
cap iscsiadm_iface_update_default.txt iscsiadm -m iface -I default -o update -n iface.net_ifacename -v "$DEV"
cap iscsiadm_iface_delete_default.txt iscsiadm -m iface -I default -o delete
cap iscsiadm_iface_show_default.txt iscsiadm -m iface -I default -o show
cap iscsiadm_iface_new_iser.txt iscsiadm -m iface -I iser -o new
cap iscsiadm_iface_file.txt cat "/etc/iscsi/ifaces/$I"

say "node and login through the iface"
cap iscsiadm_node_new_iface.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I "$I" -o new
login_ready "${P[0]}" "$I"
cap iscsiadm_login_iface.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I "$I" --login
cap iscsiadm_session_iface.txt iscsiadm -m session
cap iscsiadm_session_P1_iface.txt iscsiadm -m session -P 1
F=iface_netdev_sequence.txt
SID=$(iscsiadm -m session | sed -n 's/^tcp: \[\([0-9]*\)\].*/\1/p' | head -1)
H=$(basename "$(dirname "$(readlink -f "/sys/class/iscsi_session/session$SID/device")")")
seq_ $F cat "/sys/class/iscsi_session/session$SID/ifacename"
seq_ $F cat "/sys/class/iscsi_host/$H/netdev" "/sys/class/iscsi_host/$H/ipaddress"
seq_ $F cat "/sys/class/net/$DEV/operstate" "/sys/class/net/$DEV/flags" "/sys/class/net/$DEV/carrier"
seq_ $F cat /proc/net/route
seq_ $F ip -o -4 addr show
for k in arp_ignore arp_announce rp_filter; do
    seq_ $F cat "/proc/sys/net/ipv4/conf/$DEV/$k"
done
cap iscsiadm_iface_delete_in_use.txt iscsiadm -m iface -I "$I" -o delete
seq_ $F iscsiadm -m iface
seq_ $F iscsiadm -m node
cap iscsiadm_logout_iface.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I "$I" --logout
# Whatever the answers above, leave no session for the next steps.
iscsiadm -m session -r "$SID" -u >/dev/null 2>&1

say "login through the iface to a portal on another subnet"
iscsiadm -m iface -I "$I" -o new >/dev/null 2>&1
iscsiadm -m iface -I "$I" -o update -n iface.net_ifacename -v "$DEV" >/dev/null 2>&1
inode "${P[1]}" -o new >/dev/null
login_ready "${P[1]}" "$I"
cap iscsiadm_login_iface_wrong_subnet.txt iscsiadm -m node -T "$IQN" -p "${P[1]}" -I "$I" --login
seq_ $F iscsiadm -m session
inode "${P[1]}" -o delete

say "login through the iface while its netdev is down"
inode "${P[0]}" -o new >/dev/null
login_ready "${P[0]}" "$I"
ip link set "$DEV" down
seq_ $F cat "/sys/class/net/$DEV/operstate" "/sys/class/net/$DEV/flags" "/sys/class/net/$DEV/carrier"
cap iscsiadm_login_iface_down.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I "$I" --login
seq_ $F iscsiadm -m session
ip link set "$DEV" up
sleep 1
seq_ $F cat "/sys/class/net/$DEV/operstate"

say "node records of a deleted iface"
cap iscsiadm_iface_delete.txt iscsiadm -m iface -I "$I" -o delete
seq_ $F iscsiadm -m node
seq_ $F iscsiadm -m node -T "$IQN" -p "${P[0]}" -I "$I" -o show
seq_ $F iscsiadm -m node -T "$IQN" -p "${P[0]}" -I "$I" -o delete
seq_ $F iscsiadm -m node
seq_ $F iscsiadm -m iface
seq_ $F ls /etc/iscsi/ifaces

say "done"
rm -rf "$TMP"
exit 0
