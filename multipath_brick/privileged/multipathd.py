"""Talking to multipathd over its socket, as its own client does, without a process.

``multipathd <words>`` is a client: it connects to the daemon's abstract unix
socket, sends the words as one line and prints the answer. Each run of it is a
process start, a configuration parse and a socket exchange; on a busy host that
is most of a second (in the lab, under TCG, 0.8-2 s each, 30 and more of them
during 8 concurrent attaches), while the exchange itself takes milliseconds.
So the privsep daemon speaks the protocol itself (libmpathcmd's framing): a
native ``size_t`` length, then the NUL-terminated command; the answer comes
back framed the same way.

The outcome mimics the client's: the answer on stdout, exit status 1 when the
daemon answered ``fail``. Unlike the client, an answer of ``timeout`` (the
daemon could not take its lock within its ``uxsock_timeout``) also exits 1:
the command did not run. multipathd only obeys modifying commands from root,
which the privsep daemon is.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Sequence

#: The daemon's abstract socket name (libmpathcmd's DEFAULT_SOCKET).
SOCKET_NAME = "\0/org/kernel/linux/storage/multipathd"

# libmpathcmd's MAX_REPLY_LEN: a longer announced answer is a broken peer.
_MAX_REPLY = 32 * 1024 * 1024
_LENGTH = struct.Struct("@N")  # size_t, native
_FAILED = ("fail\n", "timeout\n")


def ask(
    words: Sequence[str], timeout: float, *, address: str | None = None
) -> tuple[int, str, str]:
    """Send one command to multipathd; ``(exit_status, answer, error)``.

    :param words: the command, as the client's arguments (``add path /dev/sdb``).
    :param timeout: seconds for the whole exchange; -9 (``TIMED_OUT``) after it.
    :param address: the socket; :data:`SOCKET_NAME` by default.
    """
    deadline = time.monotonic() + timeout
    # As the client joins its arguments: one with a space (a show format) is
    # quoted, or multipathd would read its words as more keywords and fail.
    line = " ".join(f'"{word}"' if " " in word else word for word in words)
    command = (line + "\n").encode() + b"\0"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(address or SOCKET_NAME)
            sock.sendall(_LENGTH.pack(len(command)) + command)
            (length,) = _LENGTH.unpack(_receive(sock, _LENGTH.size, deadline))
            if not 0 < length < _MAX_REPLY:
                return 1, "", f"multipathd announced an answer of {length} bytes"
            answer = _receive(sock, length, deadline).rstrip(b"\0").decode(errors="replace")
    except TimeoutError:
        return -9, "", f"multipathd did not answer within {timeout:g} s"
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        if error.errno in (errno.ECONNREFUSED, errno.ENOENT):
            reason = f"multipathd is not running ({reason})"
        return 1, "", reason
    return (1 if answer in _FAILED else 0), answer, ""


def _receive(sock: socket.socket, size: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    while size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, "multipathd closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
