#!/usr/bin/env bash
# Capture real iscsiadm / multipathd / multipath / sysfs outputs from the lab
# guest into multipath_brick/tests/fixtures, so the unit tests' parsers and
# the fake host speak the real formats. Runs INSIDE the guest, after the lab
# setup (it relies on the MPB_LAB_* variables exported by `shell-cmd`):
#
#   python -m multipath_brick.tests.lab capture
#
# File format (see fixtures/README.md): line 1 is
#   # $ <exact command>  (exit N, T s)
# then the command's stdout verbatim; if it wrote to stderr, a line
#   # --- stderr ---
# then stderr verbatim. "Transcript" files (*_sequence.txt, scan_manual.txt,
# multipath_C.txt...) hold several such blocks in order.
# shellcheck source=capture_lib.sh
. "$(dirname "$0")/capture_lib.sh" "$@"
PY=$(command -v python3)
NS=$MPB_LAB_NETNS

# Every node command names target, portal AND iface, as the library must.
node() { iscsiadm -m node -T "$IQN" -p "$1" -I default "${@:2}"; }
chap_node() {  # portal user password
    node "$1" -o update -n node.session.auth.authmethod -v CHAP &&
    node "$1" -o update -n node.session.auth.username -v "$2" &&
    node "$1" -o update -n node.session.auth.password -v "$3"
}
portal_drop() { ip netns exec "$NS" iptables -I INPUT -i "mpbt$1" -j DROP;
                ip netns exec "$NS" iptables -I OUTPUT -o "mpbt$1" -j DROP; }
portal_undrop() { ip netns exec "$NS" iptables -D INPUT -i "mpbt$1" -j DROP;
                  ip netns exec "$NS" iptables -D OUTPUT -o "mpbt$1" -j DROP; }

# Transcripts are appended to: start them afresh. Single captures are
# overwritten. Nothing else in the fixtures dir is touched.
for f in discovery_nonpersistent_sequence.txt discovery_persistent_sequence.txt \
         discoverydb_chap_sequence.txt scan_manual.txt \
         find_multipaths_strict_sequence.txt multipath_C.txt multipath_f_busy.txt; do
    rm -f "${OUT:?}/$f"
done
say "LUNs"
# Two LUNs so scan=manual and per-LUN scans can be shown.
WWID=$($PY -c 'from multipath_brick.tests.lab.api import Lab
lab = Lab.from_state(); print(lab.add_lun(1, 64)); lab.add_lun(2, 32)' | tail -1)
cap tgtadm_show_target.txt tgtadm --lld iscsi --op show --mode target

say "(a) nonpersistent discovery"
cap iscsiadm_session_none.txt iscsiadm -m session
cap iscsiadm_node_none.txt iscsiadm -m node
F=discovery_nonpersistent_sequence.txt
seq_ $F iscsiadm -m discovery -t sendtargets -p "${P[0]}" -I default -o nonpersistent
seq_ $F iscsiadm -m node
seq_ $F iscsiadm -m discoverydb
seq_ $F find /etc/iscsi/nodes /etc/iscsi/send_targets
cap iscsiadm_discovery_st_nonpersistent.txt iscsiadm -m discovery -t sendtargets -p "${P[0]}" -I default -o nonpersistent

say "(c) default (persistent) discovery on every portal"
cap iscsiadm_discovery_st.txt iscsiadm -m discovery -t sendtargets -p "${P[2]}"
F=discovery_persistent_sequence.txt
seq_ $F iscsiadm -m node
seq_ $F iscsiadm -m discoverydb
seq_ $F iscsiadm -m discovery -t sendtargets -p "${P[0]}" -I default -o new
seq_ $F iscsiadm -m node
seq_ $F iscsiadm -m node -o delete
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[2]}" -o delete
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -o delete
seq_ $F iscsiadm -m discoverydb
seq_ $F iscsiadm -m node

say "(b) discovery CHAP via discoverydb"
F=discoverydb_chap_sequence.txt
# tgt has no discovery-session authentication of its own; binding an account
# to tid 0 is tried so the transcript shows what tgt answers.
seq_ $F tgtadm --lld iscsi --op bind --mode account --tid 0 --user "$MPB_LAB_CHAP_USER"
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -I default -o new
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -I default -o update -n discovery.sendtargets.auth.authmethod -v CHAP
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -I default -o update -n discovery.sendtargets.auth.username -v "$MPB_LAB_CHAP_USER"
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -I default -o update -n discovery.sendtargets.auth.password -v "$MPB_LAB_CHAP_PASSWORD"
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -I default -o show
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -I default --discover -o nonpersistent
seq_ $F iscsiadm -m node
seq_ $F iscsiadm -m discoverydb
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -I default -o update -n discovery.sendtargets.auth.password -v wrong-password-1
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -I default --discover -o nonpersistent
seq_ $F iscsiadm -m discoverydb -t sendtargets -p "${P[0]}" -I default -o delete
seq_ $F iscsiadm -m discoverydb
seq_ $F find /etc/iscsi/send_targets /etc/iscsi/nodes
seq_ $F tgtadm --lld iscsi --op unbind --mode account --tid 0 --user "$MPB_LAB_CHAP_USER"

say "node records"
cap iscsiadm_node_new.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o new
for k in 1 2 3; do node "${P[$k]}" -o new >/dev/null; done
cap iscsiadm_node_update.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o update -n node.session.auth.authmethod -v CHAP
for k in 0 1 2 3; do chap_node "${P[$k]}" "$MPB_LAB_CHAP_USER" "$MPB_LAB_CHAP_PASSWORD"; done

say "(e) node.session.scan=manual"
F=scan_manual.txt
seq_ $F iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o update -n node.session.scan -v manual
seq_ $F iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default --login
sleep 2; udevadm settle -t 10
SID=$(iscsiadm -m session | sed -n 's/^tcp: \[\([0-9]*\)\].*/\1/p' | head -1)
HOSTDIR=$(dirname "$(readlink -f /sys/class/iscsi_session/session$SID/device)")
H=${HOSTDIR##*/host}
seq_ $F ls /sys/block
seq_ $F ls "/sys/class/iscsi_session/session$SID/device/"
seq_ $F readlink -f "/sys/class/iscsi_session/session$SID/device"
seq_ $F cat "/sys/class/iscsi_session/session$SID/targetname"
seq_ $F ls /sys/class/scsi_device/
seq_ $F sh -c "echo '0 0 1' > /sys/class/scsi_host/host$H/scan"
udevadm settle -t 10
seq_ $F ls /sys/block
seq_ $F ls /sys/class/scsi_device/
seq_ $F sh -c "echo '0 0 2' > /sys/class/scsi_host/host$H/scan"
udevadm settle -t 10
seq_ $F ls /sys/block
seq_ $F sh -c "echo '0 0 9' > /sys/class/scsi_host/host$H/scan"
seq_ $F ls /sys/block
# The LUN 2 disk is not needed further: remove it.
for d in /sys/block/sd*; do
    [ "$(cat "$d/device/wwid")" = "naa.${WWID#3}" ] || echo 1 >"$d/device/delete"
done
udevadm settle -t 10

say "login the other portals (scan=manual too, then targeted scans)"
for k in 1 2 3; do
    node "${P[$k]}" -o update -n node.session.scan -v manual
    if [ $k = 1 ]; then cap iscsiadm_login_ok.txt iscsiadm -m node -T "$IQN" -p "${P[$k]}" -I default --login
    else node "${P[$k]}" --login >/dev/null; fi
done
for s in /sys/class/iscsi_session/session*; do
    h=$(dirname "$(readlink -f "$s/device")"); echo '0 0 1' >"/sys/class/scsi_host/host${h##*/host}/scan"
done
udevadm settle -t 10
cap iscsiadm_login_exists.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default --login
cap iscsiadm_session.txt iscsiadm -m session
cap iscsiadm_session_P1.txt iscsiadm -m session -P 1
cap iscsiadm_session_P3.txt iscsiadm -m session -P 3
cap iscsiadm_session_r_P3.txt iscsiadm -m session -r "$SID" -P 3
cap iscsiadm_node.txt iscsiadm -m node
cap iscsiadm_node_show.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o show
cap iscsiadm_iface.txt iscsiadm -m iface
cap tgtadm_show_target_sessions.txt tgtadm --lld iscsi --op show --mode target

say "(f) find_multipaths strict, before and after multipath -a"
SDS=$(for d in /sys/block/sd*; do echo "${d##*/}"; done)
SD1=$(echo "$SDS" | head -1)
F=find_multipaths_strict_sequence.txt
seq_ $F multipathd show paths
seq_ $F multipathd show maps
seq_ $F multipath -ll
seq_ $F multipath -c "/dev/$SD1"
seq_ $F /lib/udev/scsi_id -g -u "/dev/$SD1"
seq_ $F cat /etc/multipath/wwids
cap multipath_a.txt multipath -a "$WWID"
seq_ $F cat /etc/multipath/wwids
seq_ $F multipath -c "/dev/$SD1"
sleep 5
seq_ $F multipathd show maps
note $F "5 s after 'multipath -a' and no add path: is there a map above?"
cap multipathd_add_path.txt multipathd add path "/dev/$SD1"
sleep 2
seq_ $F multipathd show maps
seq_ $F multipathd show paths
for d in $(echo "$SDS" | tail -n +2); do seq_ $F multipathd add path "/dev/$d"; done
sleep 3
seq_ $F multipathd show paths
seq_ $F multipathd add path "/dev/$SD1"
DM=$(basename "$(readlink -f "/dev/mapper/$WWID")")

say "multipathd / multipath formats"
cap multipathd_show_daemon.txt multipathd show daemon
cap multipathd_show_wildcards.txt multipathd show wildcards
cap multipathd_show_maps.txt multipathd show maps
cap multipathd_show_maps_format.txt multipathd show maps format "%n %w %d %N %t %Q %s %S"
cap multipathd_show_maps_json.txt multipathd show maps json
cap multipathd_show_map_json.txt multipathd show map "$WWID" json
cap multipathd_show_paths.txt multipathd show paths
cap multipathd_show_paths_format.txt multipathd show paths format "%d %w %m %t %T %o %C %i %D %s %a %r %R"
cap multipathd_show_topology.txt multipathd show topology
cap multipath_ll.txt multipath -ll
cap multipath_ll_wwid.txt multipath -ll "$WWID"
cap dmsetup_ls_multipath.txt dmsetup ls --target multipath
cap dmsetup_table.txt dmsetup table "$WWID"
cap dmsetup_status.txt dmsetup status "$WWID"

say "sysfs tree"
{
    S=/sys/class/iscsi_session/session$SID
    C=$(ls -d /sys/class/iscsi_connection/connection$SID:*)
    block find /sys/class/iscsi_session/session*/ /sys/class/iscsi_connection/ /sys/class/scsi_host/ -maxdepth 6
    block ls -l /sys/class/iscsi_session/ /sys/class/iscsi_connection/ /sys/class/scsi_host/
    block sh -c "ls -d $S/device/target*/*:*:*:*/block/*"
    H1=$(basename "$(dirname "$(readlink -f "$S/device")")")
    for f in ipaddress initiatorname netdev hwaddress port_state; do
        block cat "/sys/class/iscsi_host/$H1/$f"
    done
    block cat "/sys/class/scsi_host/$H1/proc_name" "/sys/class/scsi_host/$H1/state"
    for f in targetname ifacename initiatorname tpgt recovery_tmo state username password; do
        block cat "$S/$f"
    done
    for f in persistent_address persistent_port address port state; do
        block cat "$C/$f"
    done
    block readlink -f "$S/device"
    block cat "/sys/block/$SD1/device/wwid"
    block cat "/sys/block/$SD1/device/vendor" "/sys/block/$SD1/device/model" "/sys/block/$SD1/device/state"
    block readlink -f "/sys/block/$SD1/device"
    block readlink -f "/sys/block/$SD1"
    block ls -l "/sys/block/$SD1/holders/"
    block cat "/sys/block/$SD1/size"
    block cat "/sys/block/$DM/dm/name" "/sys/block/$DM/dm/uuid" "/sys/block/$DM/size"
    block ls -l "/sys/block/$DM/slaves/"
    block ls -l /dev/mapper/ /dev/disk/by-id/
} >"$OUT/sysfs_tree.txt" 2>&1

say "multipath -C readiness"
F=multipath_C.txt
seq_ $F multipath -C "$DM"
seq_ $F multipath -C "$WWID"
seq_ $F multipath -C "/dev/$DM"
seq_ $F multipath -C "/dev/mapper/$WWID"
seq_ $F multipath -C dm-99
for k in 0 1 2 3; do portal_drop $k; done
note $F "all 4 portals dropped with iptables; waiting 25 s for the paths to fail"
sleep 25
cap multipathd_show_paths_all_failed.txt multipathd show paths format "%d %w %m %t %T %o %C %i %D %s %a %r %R"
cap iscsiadm_session_P1_failed.txt iscsiadm -m session -P 1
seq_ $F multipathd show maps format "%n %w %d %N %t %Q %s %S"
seq_ $F multipath -C "$DM"
seq_ $F multipath -C "$WWID"
for k in 0 1 2 3; do portal_undrop $k; done
note $F "portals restored; waiting up to 60 s for 4 active paths"
for i in $(seq 60); do
    [ "$(multipathd show paths format '%T' | grep -c ready)" -ge 4 ] && break; sleep 1
done
seq_ $F multipathd show paths format "%d %w %m %t %T %o %C"
seq_ $F multipath -C "$DM"

say "flush while open"
F=multipath_f_busy.txt
sleep 30 <"/dev/$DM" &
HOLDER=$!
sleep 1
seq_ $F multipath -f "$WWID"
seq_ $F multipathd show maps
kill $HOLDER; wait $HOLDER 2>/dev/null
seq_ $F multipath -f "$WWID"
seq_ $F multipathd show maps
seq_ $F dmsetup ls --target multipath

say "logout"
for d in $SDS; do echo 1 >"/sys/block/$d/device/delete"; done
udevadm settle -t 10
cap iscsiadm_logout.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default --logout
cap iscsiadm_logout_nosession.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default --logout
cap iscsiadm_node_delete.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o delete
cap iscsiadm_node_delete_missing.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default -o delete
cap iscsiadm_logoutall.txt iscsiadm -m node --logoutall=all
iscsiadm -m node -o delete >/dev/null 2>&1

say "bad CHAP"
node "${P[0]}" -o new >/dev/null
chap_node "${P[0]}" "$MPB_LAB_CHAP_USER" wrong-password-1
cap iscsiadm_login_badchap.txt iscsiadm -m node -T "$IQN" -p "${P[0]}" -I default --login
cap iscsiadm_session_after_badchap.txt iscsiadm -m session
node "${P[0]}" -o delete

say "unreachable portal"
node "${P[3]}" -o new >/dev/null
chap_node "${P[3]}" "$MPB_LAB_CHAP_USER" "$MPB_LAB_CHAP_PASSWORD"
node "${P[3]}" -o update -n node.conn[0].timeo.login_timeout -v 2
node "${P[3]}" -o update -n node.session.initial_login_retry_max -v 1
portal_drop 3
cap iscsiadm_login_unreachable.txt iscsiadm -m node -T "$IQN" -p "${P[3]}" -I default --login
portal_undrop 3
cap iscsiadm_session_after_unreachable.txt iscsiadm -m session
node "${P[3]}" -o delete
multipath -W >/dev/null 2>&1

say "login while another program deletes node records of its own"
# iscsiadm lists every record to find the login's one, without the DB lock; a
# portal directory deleted in between makes it exit 6 although it logged in.
# Happens to a few logins in a hundred: try until one does.
OTHER=iqn.2024-01.org.example:other-program
node "${P[1]}" -o new >/dev/null
chap_node "${P[1]}" "$MPB_LAB_CHAP_USER" "$MPB_LAB_CHAP_PASSWORD"
node "${P[1]}" -o update -n node.session.scan -v manual
( while [ ! -e "$TMP/stop" ]; do
      for k in 1 2; do iscsiadm -m node -T $OTHER -p 192.0.2.$k:3260 -I default -o new; done
      for k in 1 2; do iscsiadm -m node -T $OTHER -p 192.0.2.$k:3260 -I default -o delete; done
  done >/dev/null 2>&1 ) &
OTHER_PID=$!
tries=0
while [ $tries -lt 300 ]; do
    tries=$((tries + 1))
    block iscsiadm -m node -T "$IQN" -p "${P[1]}" -I default --login >"$TMP/login"; rc=$?
    node "${P[1]}" --logout >/dev/null 2>&1
    if [ $rc = 6 ]; then cp "$TMP/login" "$OUT/iscsiadm_login_idbm_ok.txt"; break; fi
done
touch "$TMP/stop"; wait $OTHER_PID
say "exit 6 after $tries logins (rc $rc)"
node "${P[1]}" -o delete

say "done: $(ls "$OUT" | wc -l) files"
rm -rf "$TMP"
exit 0
