"""The multipathd socket client, against a small server speaking libmpathcmd's framing.

The server stands in for multipathd the way the scripts on ``PATH`` stand in
for programs in test_privileged.py: a real socket, a real exchange, and a record
of what arrived.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from multipath_brick.privileged import context, entrypoints, multipathd
from multipath_brick.verbs import MultipathdShowPaths

FORMAT = MultipathdShowPaths.FORMAT

SIZE_T = struct.Struct("@N")


class Server:
    """Answers each connection with ``reply(command)``; None: never answers."""

    def __init__(self, reply: Callable[[str], str | None]) -> None:
        self.address = f"\0multipath-brick-test-{os.getpid()}-{id(self)}"
        self.received: list[bytes] = []
        self._reply = reply
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.address)
        self._sock.listen(8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                (length,) = SIZE_T.unpack(_read(conn, SIZE_T.size))
                raw = _read(conn, length)
                self.received.append(raw)
                answer = self._reply(raw.rstrip(b"\0").decode())
                if answer is None:
                    self._stop.wait(5)
                    continue
                data = answer.encode() + b"\0"
                conn.sendall(SIZE_T.pack(len(data)) + data)

    def close(self) -> None:
        self._stop.set()
        self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        self._sock.close()
        self._thread.join(5)


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[str], str | None]], Server]]:
    servers: list[Server] = []

    def start(reply: Callable[[str], str | None]) -> Server:
        servers.append(Server(reply))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_sends_the_words_as_the_client_frames_them(serve) -> None:
    server = serve(lambda command: "ok\n")
    code, out, err = multipathd.ask(("add", "path", "/dev/sdb"), 5.0, address=server.address)
    assert (code, out, err) == (0, "ok\n", "")
    # A native size_t length that counts the NUL, then the line and the NUL.
    assert server.received == [b"add path /dev/sdb\n\0"]


def test_an_argument_with_spaces_is_quoted_as_the_client_does(serve) -> None:
    server = serve(lambda command: "sda 3600 3600 active ready\n")
    words = ("show", "paths", "raw", "format", "%d %w %m %t %T")
    code, _out, _err = multipathd.ask(words, 5.0, address=server.address)
    assert code == 0
    assert server.received == [b'show paths raw format "%d %w %m %t %T"\n\0']


@pytest.mark.parametrize("answer", ["fail\n", "timeout\n"])
def test_fail_and_the_daemons_own_timeout_are_failures(serve, answer: str) -> None:
    server = serve(lambda command: answer)
    code, out, _err = multipathd.ask(("resize", "map", "mpatha"), 5.0, address=server.address)
    assert (code, out) == (1, answer)


def test_a_daemon_that_is_not_there_is_a_clear_failure() -> None:
    code, out, err = multipathd.ask(("show", "daemon"), 5.0, address="\0multipath-brick-nobody")
    assert (code, out) == (1, "")
    assert "multipathd is not running" in err


def test_a_daemon_that_never_answers_times_out(serve) -> None:
    server = serve(lambda command: None)
    start = time.monotonic()
    code, _out, err = multipathd.ask(("show", "daemon"), 0.3, address=server.address)
    assert code == entrypoints.TIMED_OUT
    assert "did not answer within 0.3 s" in err
    assert time.monotonic() - start < 2.0


def test_a_long_answer_arrives_whole(serve) -> None:
    table = "".join(f"sd{i} active ready mpath{i}\n" for i in range(20000))
    server = serve(lambda command: table)
    code, out, _err = multipathd.ask(("show", "paths"), 5.0, address=server.address)
    assert (code, out) == (0, table)


@pytest.fixture
def in_process() -> Iterator[None]:
    context.set_client_mode(False)
    yield
    context.set_client_mode(True)


@pytest.mark.usefixtures("in_process")
def test_multipathd_verbs_go_over_the_socket_and_report_their_duration(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(lambda command: "pid 42 idle\n" if command == "show daemon\n" else "ok\n")
    monkeypatch.setattr(multipathd, "SOCKET_NAME", server.address)
    monkeypatch.setenv("PATH", "/nonexistent")  # no client program is run
    code, out, err, duration = entrypoints.multipathd_show_daemon(5.0)
    assert (code, out, err) == (0, "pid 42 idle\n", "")
    assert 0 <= duration < 5
    assert entrypoints.multipathd_show_paths(5.0)[:2] == (0, "ok\n")
    assert server.received[1:] == [f'show paths raw format "{FORMAT}"\n\0'.encode()]
    # A question about one map: no ownership check (it changes nothing).
    assert entrypoints.multipathd_show_map("dm-0", 5.0)[:2] == (0, "ok\n")
    assert server.received[2:] == [b"show map dm-0 json\n\0"]
    # This host has no sdc and no map mpathb: the ownership check answers for
    # multipathd, and the socket hears nothing.
    for code, out, err, _ in (
        entrypoints.multipathd_add_path("sdc", 5.0),
        entrypoints.multipathd_resize_map("mpathb", 5.0),
    ):
        assert (code, out) == (1, "") and err.endswith(": not run\n")
    assert len(server.received) == 3
