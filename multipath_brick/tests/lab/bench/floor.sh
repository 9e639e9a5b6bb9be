#!/bin/bash
# The floor: the least a shell script does to attach one iSCSI volume over
# every given path, on the same host and with the same settings as the library.
# The lab benches (lab_floor, and lab_attach / lab_bond through floor.py) time it
# beside multipath-brick and os-brick.
#
#   floor.sh attach IQN LUN PORTAL@IFACE...      prints key=value timings on stdout
#   floor.sh detach IQN LUN WWID PORTAL@IFACE...
#   floor.sh ifaces-up NIC...  /  floor.sh ifaces-down NIC...   (iface floor-NIC)
#   floor.sh login IQN PORTAL@IFACE...    records and sessions only: no scan, no
#                                         map; prints scsi_host=H per session
#   floor.sh logout IQN PORTAL@IFACE...   sessions logged out, records deleted
#   (login/logout: the lab_scaling bench's fill, whose LUNs it scans itself)
#
# The CHAP account comes from the environment (FLOOR_CHAP_USER,
# FLOOR_CHAP_PASSWORD): the secret never reaches a command line, it is written
# into the record file with shell builtins, as the library writes it.
#
# Only what the kernel and the daemons need, in the cheapest order:
#   1. per path, one after the other (iscsiadm's node database is not safe to
#      write in parallel): "-o new", ONE "-o update" with every setting, the
#      secret into the file; records through an iface other than "default"
#      are filed under portal group tag 1, or the second iface's record would
#      replace the first's;
#   2. every path at once, in its own subshell: login, then a scan of exactly
#      0 0 LUN on the session's SCSI host (node.session.scan=manual);
#   3. the first path whose disk udev has processed (multipathd takes the WWID
#      from udev's database) runs "multipath -a WWID" (find_multipaths strict)
#      and "multipathd add path" of that disk, which creates the map;
#      multipathd adds the other disks on their own udev events;
#   4. wait until the map holds every path.
# No process is started to wait or to read sysfs: sleeps are "read -t" on a
# pipe, times are $EPOCHREALTIME, sysfs is read with builtins. Under TCG every
# process start costs tenths of a second, so this is the least CPU the
# workload can take with the standard tools.
set -u

NODES=/etc/iscsi/nodes
FLAGS=/run/floor-first.
POLL=0.1
TIMEOUT=${FLOOR_TIMEOUT:-120} # many attaches at once (the boot storm) need more
exec {NAP_FD}<> <(:)

nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }
say() { printf '%s\n' "$*"; }
past_deadline() { [ "${EPOCHREALTIME%.*}" -ge "$DEADLINE" ]; }
die() {
  printf 'floor.sh: %s\n' "$*" >&2
  exit 1
}

# portal@iface -> P (portal as given), I (iface), FILE (the record file)
split_path() {
  P=${1%@*}
  I=${1#*@}
  local dir="$NODES/$IQN/${P/:/,}"
  if [ "$I" = default ]; then FILE=$dir; else FILE="$dir,1/$I"; fi
}

# The session of the path (IQN, $P, $I), logged in: its number in SID.
find_session() {
  local s t i a p
  SID=
  for s in /sys/class/iscsi_session/session*; do
    [ -r "$s/targetname" ] || continue
    read -r t <"$s/targetname" && [ "$t" = "$IQN" ] || continue
    read -r i <"$s/ifacename" && [ "$i" = "$I" ] || continue
    local c="/sys/class/iscsi_connection/connection${s##*session}:0"
    read -r a <"$c/persistent_address" && read -r p <"$c/persistent_port" || continue
    [ "$a:$p" = "$P" ] || continue
    SID=${s##*session}
    return 0
  done
  return 1
}

write_secret() {
  local line lines out=()
  mapfile -t lines <"$FILE" || return 1
  for line in "${lines[@]}"; do
    out+=("$line")
    if [[ $line == "node.session.auth.username = "* ]]; then
      out+=("node.session.auth.password = $FLOOR_CHAP_PASSWORD")
    fi
  done
  printf '%s\n' "${out[@]}" >"$FILE"
}

record() {
  local tagged=$P
  [ "$I" = default ] || tagged="$P,1"
  iscsiadm -m node -o new -T "$IQN" -p "$tagged" -I "$I" >/dev/null || return 1
  iscsiadm -m node -o update -T "$IQN" -p "$P" -I "$I" \
    -n node.startup -v manual \
    -n node.session.scan -v manual \
    -n 'node.conn[0].timeo.login_timeout' -v 10 \
    -n node.session.initial_login_retry_max -v 2 \
    -n node.session.auth.authmethod -v CHAP \
    -n node.session.auth.username -v "$FLOOR_CHAP_USER" || return 1
  write_secret
}

# The path's session logged in: its number in SID, its SCSI host (hostH) in HOST.
log_in() {
  iscsiadm -m node -T "$IQN" -p "$P" -I "$I" --login >/dev/null || return 1
  find_session || return 1
  # sessionN/device is hostH/sessionN: its parent names the SCSI host.
  cd -P "/sys/class/iscsi_session/session$SID/device/.." || return 1
  HOST=${PWD##*/}
}

# In a subshell of its own: login, the targeted scan, then, for the first path whose disk udev has
# processed (multipathd takes the WWID from udev's database): the WWID
# whitelisted and the map made from that disk. The others' disks join the map
# through their own udev events.
bring_up() {
  local d raw dev
  log_in || exit 1
  printf '0 0 %s\n' "$LUN" >"/sys/class/scsi_host/$HOST/scan" || exit 1
  # The SCSI device exists now; sd's probe adds the disk (and its dev) a moment later.
  dev=
  while [ -z "$dev" ]; do
    for d in "/sys/class/iscsi_session/session$SID/device/target"*/*:*:*:"$LUN"/block/sd*; do
      [ -r "$d/dev" ] && read -r dev <"$d/dev" 2>/dev/null && DISK=${d##*/}
    done
    [ -n "$dev" ] || { past_deadline && exit 1; } || nap "$POLL"
  done
  until [ -e "/run/udev/data/b$dev" ]; do
    ! past_deadline || exit 1
    nap "$POLL"
  done
  set -C # the first path to get here makes the map: O_EXCL create, no process
  { : >"$FIRST"; } 2>/dev/null || exit 0
  read -r raw <"/sys/block/$DISK/device/wwid" || exit 1
  case $raw in
  naa.*) WWID=3${raw#naa.} ;;
  eui.*) WWID=2${raw#eui.} ;;
  *) WWID=$raw ;;
  esac
  printf 'first_disk=%s disk=%s wwid=%s\n' "$EPOCHREALTIME" "$DISK" "$WWID"
  multipath -a "$WWID" >/dev/null || exit 1
  multipathd add path "$DISK" >/dev/null || exit 1
  printf 'map_asked=%s\n' "$EPOCHREALTIME"
  printf '%s\n' "$WWID" >|"$FIRST"
}

# The map of WWID: DM (dm-N) and SLAVES (how many paths it holds), or 1.
map_state() {
  local u s n=0
  for u in /sys/block/dm-*/dm/uuid; do
    [ -e "$u" ] || continue
    read -r s <"$u" && [ "$s" = "mpath-$WWID" ] || continue
    DM=${u#/sys/block/}
    DM=${DM%%/*}
    for s in "/sys/block/$DM/slaves/"*; do [ -e "$s" ] && n=$((n + 1)); done
    SLAVES=$n
    return 0
  done
  return 1
}

attach() {
  local t0=$EPOCHREALTIME path pids=() usable= full=
  say "start=$t0"
  # Which path makes the map: the first to create this file (removed by detach).
  FIRST=$FLAGS$$
  for path in "${PATHS[@]}"; do
    split_path "$path"
    record || die "node record of $path"
  done
  say "records=$EPOCHREALTIME"
  DEADLINE=$((${EPOCHREALTIME%.*} + TIMEOUT))
  for path in "${PATHS[@]}"; do
    split_path "$path"
    bring_up &
    pids+=($!)
  done
  WWID=
  while :; do
    [ -n "$WWID" ] || { [ -s "$FIRST" ] && read -r WWID <"$FIRST"; }
    if [ -n "$WWID" ] && map_state; then
      [ -n "$usable" ] || [ "$SLAVES" -lt 1 ] || usable=$EPOCHREALTIME
      if [ "$SLAVES" -ge "${#PATHS[@]}" ]; then
        full=$EPOCHREALTIME
        break
      fi
    fi
    ! past_deadline || die "the map never held every path"
    nap "$POLL"
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "a path did not come up"; done
  say "usable=$usable"
  say "full=$full dm=$DM slaves=$SLAVES"
}

# Every path's session logged out (all at once), then its record deleted.
log_out() {
  local path
  for path in "${PATHS[@]}"; do
    split_path "$path"
    iscsiadm -m node -T "$IQN" -p "$P" -I "$I" --logout >/dev/null &
  done
  wait
  for path in "${PATHS[@]}"; do
    split_path "$path"
    iscsiadm -m node -o delete -T "$IQN" -p "$P" -I "$I" >/dev/null
  done
}

# Records (one after the other), then every path's login at once; no LUN scanned.
login() {
  local path pids=()
  for path in "${PATHS[@]}"; do
    split_path "$path"
    record || die "node record of $path"
  done
  for path in "${PATHS[@]}"; do
    split_path "$path"
    { log_in && say "scsi_host=${HOST#host}"; } &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "a login failed"; done
}

detach() {
  local d t tries=0
  say "start=$EPOCHREALTIME"
  # udev's programs (blkid, kpartx) may hold a map just made for a moment: "map in use".
  until multipath -f "$WWID" >/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 20 ] || die "multipath -f"
    nap 0.5
  done
  for d in /sys/class/iscsi_session/session*/device/target*/*:*:*:"$LUN"; do
    [ -e "$d" ] || continue
    read -r t <"${d%%/device/*}/targetname" && [ "$t" = "$IQN" ] || continue
    printf '1\n' >"$d/delete"
  done
  log_out
  multipath -w "$WWID" >/dev/null
  rm -f "$FLAGS"*
  say "end=$EPOCHREALTIME"
}

case ${1:-} in
attach)
  [ $# -ge 4 ] || die "usage: attach IQN LUN PORTAL@IFACE..."
  IQN=$2 LUN=$3
  shift 3
  PATHS=("$@")
  : "${FLOOR_CHAP_USER:?}" "${FLOOR_CHAP_PASSWORD:?}"
  attach
  ;;
detach)
  [ $# -ge 5 ] || die "usage: detach IQN LUN WWID PORTAL@IFACE..."
  IQN=$2 LUN=$3 WWID=$4
  shift 4
  PATHS=("$@")
  detach
  ;;
login | logout)
  [ $# -ge 3 ] || die "usage: $1 IQN PORTAL@IFACE..."
  verb=$1 IQN=$2
  shift 2
  PATHS=("$@")
  if [ "$verb" = login ]; then
    : "${FLOOR_CHAP_USER:?}" "${FLOOR_CHAP_PASSWORD:?}"
    login
  else
    log_out
  fi
  ;;
ifaces-up)
  shift
  for nic in "$@"; do
    iscsiadm -m iface -I "floor-$nic" -o new >/dev/null || die "iface floor-$nic"
    iscsiadm -m iface -I "floor-$nic" -o update -n iface.net_ifacename -v "$nic" >/dev/null ||
      die "iface floor-$nic"
  done
  ;;
ifaces-down)
  shift
  for nic in "$@"; do iscsiadm -m iface -I "floor-$nic" -o delete >/dev/null; done
  rm -f "$FLAGS"*
  ;;
*) die "usage: floor.sh attach|detach|login|logout|ifaces-up|ifaces-down ..." ;;
esac
