# What every capture script starts with (sourced first, not run, with the
# script's own arguments: $1 is the fixtures directory). Each capture is a
# block: line 1 `# $ <command>  (exit N, T s)`, then stdout verbatim, then, if
# the command wrote to stderr, `# --- stderr ---` and stderr verbatim.
# Sets OUT (the fixtures directory), TMP (a scratch directory the script
# removes), P (the lab's portals) and IQN (its target).
set -u
OUT=${1:?usage: $(basename "$0") FIXTURES_DIR}
[ "${MPB_LAB_GUEST:-}" = 1 ] || { echo "run inside the lab guest only" >&2; exit 2; }
read -r -a P <<<"$MPB_LAB_PORTALS"
IQN=$MPB_LAB_IQN
TMP=$(mktemp -d)

# block CMD... : run CMD, print one capture block on stdout.
block() {
    local t0 t1 rc
    t0=$(date +%s.%N)
    "$@" >"$TMP/o" 2>"$TMP/e"; rc=$?
    t1=$(date +%s.%N)
    printf '# $ %s  (exit %d, %.1f s)\n' "$(qargs "$@")" "$rc" "$(echo "$t1 - $t0" | bc)"
    cat "$TMP/o"
    if [ -s "$TMP/e" ]; then echo "# --- stderr ---"; cat "$TMP/e"; fi
    return $rc
}
# qargs ARGS... : the command line as one would type it (quotes where needed).
qargs() {
    local out="" a
    for a in "$@"; do
        if [[ "$a" =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then out+="$a "
        else out+="'${a//\'/\'\\\'\'}' "; fi
    done
    printf '%s' "${out% }"
}
# cap NAME CMD... : one command, one fixture file.
cap() { local name=$1; shift; block "$@" >"$OUT/$name"; }
# seq NAME CMD... : append a block to a transcript file.
seq_() { local name=$1; shift; block "$@" >>"$OUT/$name"; }
note() { printf '# NOTE: %s\n' "$*" >>"$OUT/$1"; }
say() { echo "[capture] $*"; }
# login_ready PORTAL IFACE : the lab target's node record through IFACE gets
# CHAP, a manual scan and short login timeouts (a login to a cut portal fails
# in 2 s, not 2 minutes).
login_ready() {
    iscsiadm -m node -T "$IQN" -p "$1" -I "$2" -o update \
        -n node.session.auth.authmethod -v CHAP \
        -n node.session.auth.username -v "$MPB_LAB_CHAP_USER" \
        -n node.session.auth.password -v "$MPB_LAB_CHAP_PASSWORD" \
        -n node.session.scan -v manual \
        -n node.conn[0].timeo.login_timeout -v 2 \
        -n node.session.initial_login_retry_max -v 1
}
