# Helpers shared by the capture scripts (sourced, not run). Each capture is a
# block: line 1 `# $ <command>  (exit N, T s)`, then stdout verbatim, then, if
# the command wrote to stderr, `# --- stderr ---` and stderr verbatim.
# The caller sets OUT (the fixtures directory) and TMP (a scratch directory).

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
