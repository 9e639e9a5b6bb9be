#!/usr/bin/env bash
# Capture what `multipath -a WWID` and `multipath -w WWID` do to
# /etc/multipath/wwids, byte for byte (`cat -A`: a line ends in `$`), and that
# they wait for a POSIX lock on the file, into
# multipath_brick/tests/fixtures/wwids_edit_sequence.txt. The daemon's own
# edit (privileged/wwids_file.py) must leave the same bytes.
# Runs INSIDE the guest, after the lab setup:
#
#   python -m multipath_brick.tests.lab capture --part wwids
# shellcheck source=capture_lib.sh
. "$(dirname "$0")/capture_lib.sh" "$@"
F=wwids_edit_sequence.txt
W=/etc/multipath/wwids
A=3600140500000000000000000000000a1
B=3600140500000000000000000000000b2
rm -f "$OUT/$F"
s() { seq_ "$F" "$@"; }
show() { s cat -A "$W"; s stat -c '%a %U %s' "$W"; }
cp -p "$W" "$TMP/saved"

say "A: a missing file, then two adds of one WWID"
note "$F" "A: no file; multipath -a $A twice"
rm -f "$W"
s multipath -a "$A"
show
s multipath -a "$A"
show

say "B: a second WWID, then removes"
note "$F" "B: multipath -a $B, multipath -w $A twice, multipath -a $A again"
s multipath -a "$B"
s multipath -w "$A"
show
s multipath -w "$A"
show
s multipath -a "$A"
show

say "C: the lock"
note "$F" "C: a process holds a POSIX write lock (lockf) on the file for 2 s; multipath -w waits for it"
python3 -c "import fcntl, os, sys, time
fd = os.open('$W', os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print('locked', flush=True)
time.sleep(2)" > "$TMP/locker" &
while ! grep -q locked "$TMP/locker" 2>/dev/null; do sleep 0.05; done
s multipath -w "$B"
wait
show

cp -p "$TMP/saved" "$W"
rm -rf "$TMP"
say "done: $OUT/$F"
