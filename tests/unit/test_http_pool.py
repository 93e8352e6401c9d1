"""The lean HTTP/1.1 client (``executors.pool``): framing, keep-alive, and the faults it must map.

Most cases run against the standard library's HTTP server on loopback (a real HTTP/1.1 server);
the answers no well-behaved server gives (cut short, closed with no answer) come from a raw socket.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
import trustme

from comfykit_batch.errors import BackendError
from comfykit_batch.executors import pool as pool_module
from comfykit_batch.executors.comfyui_client import ComfyUIClient
from comfykit_batch.executors.comfyui_ws import _EventHub, _Seen, _Waiter
from comfykit_batch.executors.pool import HttpPool, ProtocolError
from comfykit_batch.executors.transport import mapped

TIMEOUT = (5.0, 5.0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: set[int] = set()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        type(self).connections.add(id(self.connection))
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Twice", "a")
            self.send_header("x-twice", "b")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        type(self).connections.add(id(self.connection))
        data = self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"got": json.loads(data), "type": self.headers["Content-Type"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def http_server() -> Iterator[str]:
    _Handler.connections = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@contextmanager
def raw_server(answer: Callable[[socket.socket, int], None], requests: list[bytes] | None = None) -> Iterator[str]:
    """A loopback server that reads one request per connection (kept in ``requests``) and answers with ``answer(conn, n)``."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        n = 0
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(65536)
                if requests is not None:
                    requests.append(data)
                answer(conn, n)
                n += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def test_keep_alive_reuses_one_connection(http_server: str) -> None:
    pool = HttpPool({}, maxsize=2)
    for i in range(5):
        r = pool.request("GET", f"{http_server}/n/{i}", timeout=TIMEOUT)
        assert r.status_code == 200 and json.loads(r.content) == {"path": f"/n/{i}"}
    r = pool.request("POST", f"{http_server}/prompt", timeout=TIMEOUT, json_body={"a": [1, "é"]})
    assert json.loads(r.content) == {"got": {"a": [1, "é"]}, "type": "application/json"}
    assert len(_Handler.connections) == 1
    pool.close()


def test_chunked_answer_and_repeated_headers(http_server: str) -> None:
    pool = HttpPool({}, maxsize=2)
    r = pool.request("GET", f"{http_server}/chunked", timeout=TIMEOUT, stream=True)
    assert b"".join(r.iter_content(4)) == b"hello chunked world"
    assert r.headers.get("X-TWICE") == "a, b" and "Transfer-Encoding" in r.headers
    r.close()
    assert json.loads(pool.request("GET", f"{http_server}/after", timeout=TIMEOUT).content) == {"path": "/after"}
    assert len(_Handler.connections) == 1  # the chunked body was read whole: its connection was kept


def test_a_connection_the_server_closed_while_idle_is_replaced(http_server: str) -> None:
    pool = HttpPool({}, maxsize=2)
    pool.request("GET", f"{http_server}/one", timeout=TIMEOUT)
    origin = next(iter(pool._origins.values()))
    origin.idle[0].sock.shutdown(socket.SHUT_RDWR)  # as a server's keep-alive timeout leaves it
    r = pool.request("POST", f"{http_server}/two", timeout=TIMEOUT, json_body={"x": 1})
    assert json.loads(r.content)["got"] == {"x": 1}


def test_answer_without_length_is_read_to_the_end_and_not_kept() -> None:
    def answer(conn: socket.socket, n: int) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end " + str(n).encode())

    with raw_server(answer) as url:
        pool = HttpPool({}, maxsize=2)
        assert pool.request("GET", f"{url}/a", timeout=TIMEOUT).content == b"until the end 0"
        assert pool.request("GET", f"{url}/b", timeout=TIMEOUT).content == b"until the end 1"


def test_a_body_cut_short_is_a_dropped_connection() -> None:
    def answer(conn: socket.socket, n: int) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")

    with raw_server(answer) as url:
        pool = HttpPool({}, maxsize=2)
        with pytest.raises(ProtocolError, match="cut short"):
            pool.request("GET", f"{url}/a", timeout=TIMEOUT)
        with pytest.raises(BackendError, match="connection dropped mid-answer") as err, mapped("GET /a", url):
            pool.request("GET", f"{url}/a", timeout=TIMEOUT)
        assert err.value.transient


def test_no_answer_at_all_and_no_answer_in_time() -> None:
    with raw_server(lambda conn, n: None) as url:
        with pytest.raises(BackendError, match="connection dropped mid-answer"), mapped("GET /a", url):
            HttpPool({}, maxsize=2).request("GET", f"{url}/a", timeout=TIMEOUT)
    hold = threading.Event()
    with raw_server(lambda conn, n: hold.wait(5)) as url:
        with pytest.raises(BackendError, match="read timed out"), mapped("GET /a", url):
            HttpPool({}, maxsize=2).request("GET", f"{url}/a", timeout=(5.0, 0.2))
        hold.set()


def test_interim_100_continue_is_skipped() -> None:
    def answer(conn: socket.socket, n: int) -> None:
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")

    with raw_server(answer) as url:
        r = HttpPool({}, maxsize=2).request("GET", f"{url}/a", timeout=TIMEOUT)
        assert (r.status_code, r.content) == (201, b"ok")


def test_what_a_request_sends() -> None:
    sent: list[bytes] = []

    def answer(conn: socket.socket, n: int) -> None:
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    with raw_server(answer, sent) as url:
        pool = HttpPool({"Authorization": "Bearer k-123"}, maxsize=2)
        assert pool.request("POST", f"{url}/prompt?x=1", timeout=TIMEOUT, json_body={"a": 1}).status_code == 204
    head, _, body = sent[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /prompt?x=1 HTTP/1.1"
    assert {"Host: " + url.split("//")[1], "User-Agent: comfykit-batch", "Authorization: Bearer k-123",
            "Content-Type: application/json", "Content-Length: 7"} == set(lines[1:])
    assert body == b'{"a":1}'


@pytest.mark.parametrize("name, sub, kind", [("ComfyUI_00001_.png", "", "output"), ("a b&c=d.png", "x/y", "temp"),
                                             ("ü.png", "", "output"), ("plain-name~1.webp", "sub_dir.2", "input")])
def test_view_url_is_urlencoded_whatever_the_name(name: str, sub: str, kind: str) -> None:
    c = ComfyUIClient("http://127.0.0.1:9")
    expected = "http://127.0.0.1:9/view?" + urlencode({"filename": name, "subfolder": sub, "type": kind})
    assert c.view_url(name, sub, kind) == expected


@pytest.mark.parametrize("frame, wanted", [
    (b'{"type": "executing", "data": {"node": "3", "display_node": "3", "prompt_id": "p"}}', False),
    (b'{"type": "executing", "data": {"node": null, "display_node": null, "prompt_id": "p"}}', True),
    (b'{"type":"executing","data":{"node":null,"prompt_id":"p"}}', True),
    (b'{"type": "execution_success", "data": {"prompt_id": "p"}}', True),
    (b'{"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": "p"}}', False),
    (b'{"data": {"node": "3"}, "type": "executing"}', True),  # laid out otherwise: parsed and judged in full
])
def test_only_the_events_that_end_a_prompt_are_parsed(frame: bytes, wanted: bool) -> None:
    assert _EventHub("ws://x/ws", [], None, "http://x")._wanted(frame) is wanted


class _Frames:
    """A socket stand-in that hands out text frames, then drops."""

    def __init__(self, events: list[tuple[str, dict[str, object]]]) -> None:
        self.frames = [json.dumps({"type": kind, "data": data}).encode() for kind, data in events]

    def recv_data(self) -> tuple[int, bytes]:
        if not self.frames:
            raise ConnectionResetError("dropped")
        return 1, self.frames.pop(0)


def test_output_events_are_noted_by_the_reader_and_only_the_end_wakes_the_job() -> None:
    """A job's thread is woken once per prompt, not once per event (each wake-up is a thread switch)."""
    hub = _EventHub("ws://x/ws", [], None, "http://x")
    waiter = _Waiter(_Seen(1, frozenset({"9"})), progress=False)
    hub._queues["p"] = waiter  # registered by hand: add() would start a reader thread
    image = {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}
    hub._read(_Frames([  # type: ignore[arg-type]
        ("execution_start", {"prompt_id": "p"}), ("execution_cached", {"prompt_id": "p", "nodes": ["1"]}),
        ("executing", {"prompt_id": "p", "node": "9"}), ("progress", {"prompt_id": "p", "value": 1, "max": 2}),
        ("executed", {"prompt_id": "p", "node": "9", "output": image}), ("executed", {"prompt_id": "q", "node": "9"}),
        ("execution_success", {"prompt_id": "p"}),
    ]))
    woken = []
    while not waiter.q.empty():
        woken.append(waiter.q.get()[0])
    assert woken == ["execution_success"]
    assert waiter.seen.entry(1) == {"outputs": {"9": image},
                                    "status": {"status_str": "success", "completed": True, "messages": []}}


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The HTTP server behind TLS with a certificate for 127.0.0.1 from a test authority (and that authority's file)."""
    _Handler.connections = set()
    ca = trustme.CA()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    yield f"https://127.0.0.1:{server.server_address[1]}", tmp_path / "ca.pem"
    server.shutdown()
    server.server_close()


def test_https_is_verified(tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, ca_file = tls_server
    with pytest.raises(BackendError, match="TLS handshake failed"), mapped("GET /a", url):
        HttpPool({}, maxsize=2).request("GET", f"{url}/a", timeout=TIMEOUT)  # not signed by a known authority
    monkeypatch.setattr(pool_module.certifi, "where", lambda: str(ca_file))
    pool = HttpPool({}, maxsize=2)
    for path in ("/a", "/b"):
        assert json.loads(pool.request("GET", f"{url}{path}", timeout=TIMEOUT).content) == {"path": path}
    assert len(_Handler.connections) == 1


def test_keep_alive_still_works_past_descriptor_1023(http_server: str) -> None:
    """select() cannot watch a descriptor past 1023: a client with many files open must still reuse its connections."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    held = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        pool = HttpPool({}, maxsize=2)
        for i in range(3):
            assert json.loads(pool.request("GET", f"{http_server}/n/{i}", timeout=TIMEOUT).content) == {"path": f"/n/{i}"}
        assert len(_Handler.connections) == 1
        pool.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
