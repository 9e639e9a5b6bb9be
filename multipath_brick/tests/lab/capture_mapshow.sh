#!/usr/bin/env bash
# Capture what multipathd answers about ONE map (`show map <dm-N|name> json`),
# beside the host-wide `show paths raw format "%d %w %m %t %T"` asked at the same
# moment, into multipath_brick/tests/fixtures/multipathd_show_map_sequence.txt.
# Runs INSIDE the guest, after the lab setup:
#
#   python -m multipath_brick.tests.lab capture --part mapshow
#
# The cases, each after a `# NOTE:` line: every path up; one portal dropped
# (its path failed); a disk removed and scanned again (the path being added
# back); every portal dropped; maps that do not exist.
# shellcheck source=capture_lib.sh
. "$(dirname "$0")/capture_lib.sh" "$@"
PY=$(command -v python3)
NS=$MPB_LAB_NETNS
F=multipathd_show_map_sequence.txt
rm -f "${OUT:?}/$F"
FMT="%d %w %m %t %T"
portal_drop() { ip netns exec "$NS" iptables -I INPUT -i "mpbt$1" -j DROP;
                ip netns exec "$NS" iptables -I OUTPUT -o "mpbt$1" -j DROP; }
portal_undrop() { ip netns exec "$NS" iptables -D INPUT -i "mpbt$1" -j DROP;
                  ip netns exec "$NS" iptables -D OUTPUT -o "mpbt$1" -j DROP; }
# both questions, one right after the other
ask() {
    seq_ $F multipathd show paths raw format "$FMT"
    seq_ $F multipathd show map "$DM" json
}
# wait_states N STATE: until N paths of the map show "STATE" (dm_st chk_st), 90 s at most
wait_states() {
    for _ in $(seq 90); do
        [ "$(multipathd show paths raw format "%w %t %T" | grep -c "^$WWID $2\$")" -ge "$1" ] && return 0
        sleep 1
    done
    echo "[capture] gave up waiting for $1 paths '$2'" >&2
}

say "LUN, 4 sessions, the map"
WWID=$($PY -c 'from multipath_brick.tests.lab.api import Lab
print(Lab.from_state().add_lun(1, 64))' | tail -1)
for k in 0 1 2 3; do
    iscsiadm -m node -T "$IQN" -p "${P[$k]}" -I default -o new >/dev/null
    login_ready "${P[$k]}" default >/dev/null
    iscsiadm -m node -T "$IQN" -p "${P[$k]}" -I default --login >/dev/null
done
for s in /sys/class/iscsi_session/session*; do
    h=$(dirname "$(readlink -f "$s/device")"); echo '0 0 1' >"/sys/class/scsi_host/host${h##*/host}/scan"
done
udevadm settle -t 10
SDS=$(for d in /sys/block/sd*; do
    [ "$(cat "$d/device/wwid")" = "naa.${WWID#3}" ] && basename "$d"; done)
SD1=$(echo "$SDS" | head -1)
SDL=$(echo "$SDS" | tail -1)
multipath -a "$WWID" >/dev/null
multipathd add path "/dev/$SD1" >/dev/null
wait_states 4 "active ready"
for d in /sys/block/dm-*; do [ "$(cat "$d/dm/uuid")" = "mpath-$WWID" ] && DM=${d##*/}; done

note $F "up: every path active and ready; asked by dm-N, then by name"
ask
seq_ $F multipathd show map "$WWID" json

note $F "one failed: portal 1 dropped with iptables, until its path is failed"
portal_drop 1
wait_states 1 "failed faulty"
ask
portal_undrop 1
wait_states 4 "active ready"

note $F "adding: the last disk deleted, then scanned again, asked at once and again until it is back"
H=$(basename "$(readlink -f "/sys/block/$SDL/device")"); H=${H%%:*}
echo 1 >"/sys/block/$SDL/device/delete"
udevadm settle -t 10
ask
echo '0 0 1' >"/sys/class/scsi_host/host$H/scan"
for _ in $(seq 8); do
    ask
    [ "$(multipathd show paths raw format "%w %t %T" | grep -c "^$WWID active ready\$")" -ge 4 ] && break
    sleep 0.5
done

note $F "all failed: every portal dropped, until every path is failed"
for k in 0 1 2 3; do portal_drop $k; done
wait_states 4 "failed faulty"
ask
for k in 0 1 2 3; do portal_undrop $k; done
wait_states 4 "active ready"

note $F "missing: a dm number and a name no map has"
seq_ $F multipathd show map dm-99 json
seq_ $F multipathd show map 36000000000000000ffffffffffffffff json

say "teardown"
multipath -f "$WWID" >/dev/null 2>&1
multipath -w "$WWID" >/dev/null 2>&1
for d in $(ls /sys/block | grep '^sd'); do echo 1 >"/sys/block/$d/device/delete" 2>/dev/null; done
iscsiadm -m node -u >/dev/null 2>&1
iscsiadm -m node -o delete >/dev/null 2>&1
rm -rf "$TMP"
say "done"
