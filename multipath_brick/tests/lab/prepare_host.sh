#!/usr/bin/env bash
# Prepare this machine to run the real-kernel functional lab. Idempotent and
# fast when everything is already there (it only checks).
#
#   multipath_brick/tests/lab/prepare_host.sh
#
# Installs (only what is missing):
#  - Debian packages: a stock kernel to boot in QEMU (only adds /boot and
#    /lib/modules files; the running kernel is untouched), QEMU, busybox
#    (virtme-ng's initramfs), and the storage stack the guest runs from the
#    host's shared / : open-iscsi, multipath-tools, tgt, iptables, iproute2,
#    and sudo and cryptsetup for the drop-in tests (a non-root caller through
#    sudo + rootwrap, LUKS on an attached volume).
#    Their services do not start in a container; nothing here needs them to.
#  - virtme-ng in its own venv ($MPB_LAB_VENV, default /var/tmp/mpb-lab-venv):
#    it only runs on the host, so /var/tmp is fine for it.
#  - pytest into the Python that runs the tests ($PYTHON, default python3).
#    The guest shares the host's /, so that same interpreter, called by its
#    absolute path, runs the tests inside the guest; it must therefore not
#    live under /var/tmp (a fresh tmpfs in the guest).
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

VENV=${MPB_LAB_VENV:-/var/tmp/mpb-lab-venv}
VIRTME_NG_VERSION=${MPB_LAB_VIRTME_NG_VERSION:-1.42}
PYTHON=${PYTHON:-python3}
PACKAGES=(linux-image-amd64 qemu-system-x86 busybox-static open-iscsi
          multipath-tools tgt iptables iproute2 sudo cryptsetup-bin)
REPO_ROOT=$(cd "$(dirname "$0")/../../.." && pwd)

log() { printf '[prepare_host] %s\n' "$*"; }

# 1. Debian packages ---------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
        $SUDO apt-get update
        $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
    fi
else
    log "Debian packages present"
fi
ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 || { log "no /boot/vmlinuz-*-amd64"; exit 1; }

# 2. virtme-ng venv ----------------------------------------------------------
if [ "$("$VENV/bin/vng" --version 2>/dev/null)" = "virtme-ng $VIRTME_NG_VERSION" ]; then
    log "virtme-ng $VIRTME_NG_VERSION present in $VENV"
else
    log "creating $VENV with virtme-ng==$VIRTME_NG_VERSION"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "virtme-ng==$VIRTME_NG_VERSION"
fi

# 3. Test dependencies in the Python that runs the tests ---------------------
PYBIN=$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable))')
case "$PYBIN" in
    /var/tmp/*) log "ERROR: $PYBIN is under /var/tmp, invisible in the guest"; exit 1;;
esac
if ! "$PYTHON" -c 'import pytest' 2>/dev/null; then
    log "installing pytest into $PYBIN"
    "$PYTHON" -m pip install -q pytest
fi
# The library's own dependencies, when the project declares them.
for req in "$REPO_ROOT/requirements.txt" "$REPO_ROOT/test-requirements.txt"; do
    if [ -f "$req" ]; then
        "$PYTHON" -m pip install -q -r "$req" 2>&1 | grep -v '^Requirement already' || true
    fi
done
log "ready: python=$PYBIN vng=$VENV/bin/vng kernel=$(ls /boot/vmlinuz-*-amd64 | sort -V | tail -1)"
