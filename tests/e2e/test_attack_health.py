"""Attack: starve the health endpoint so that the orchestrator's probes fail and the pod is
restarted (or taken out of service) while people are working through it.

The attacker holds hundreds of TCP connections to the health port (idle, or dripping one byte of a
request every half second), and opens a new one whenever castgate closes one of theirs. The probe
is a real HTTP client with the short timeout a Kubernetes probe has.
"""

from __future__ import annotations

import http.client
import selectors
import socket
import threading
import time

import pytest

from attacker import ATTACK_POLICY, Bystander, attack_identities, still_serving

pytestmark = pytest.mark.timeout(120)

PROBE_TIMEOUT = 2.0  # seconds; a Kubernetes probe's timeoutSeconds is 1 by default
HOLDERS = 300


@pytest.fixture
def health_gateway(gateway_factory, sshd, keys):
    return gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                           [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                           identities=attack_identities(keys),
                           extra_args=["--health-listen", "127.0.0.1:0"])


ATTACKER_ADDRESS = "127.0.0.2"


class Holders:
    """`count` connections to `port`, kept open: one castgate closes is replaced at once.
    With `drip`, each sends one more byte of a request that never ends every half second."""

    DRIP = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: loris\r\n" * 1000

    def __init__(self, port: int, count: int, drip: bool = False):
        self.port = port
        self.count = count
        self.drip = drip
        self.opened = 0
        self.closed_by_castgate = 0
        self._sel = selectors.DefaultSelector()
        self._sent: dict[socket.socket, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Holders":
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()
        self._sel.close()

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((ATTACKER_ADDRESS, 0))  # the probe (the kubelet) comes from another address
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        self._sel.register(s, selectors.EVENT_READ)
        self._sent[s] = 0
        self.opened += 1

    def _replace(self, s: socket.socket):
        self._sel.unregister(s)
        del self._sent[s]
        s.close()
        self.closed_by_castgate += 1
        self._open()

    def _run(self):
        for _ in range(self.count):
            self._open()
        next_drip = time.monotonic() + 0.5
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._replace(s)
            if self.drip and time.monotonic() >= next_drip:
                next_drip += 0.5
                for s, sent in list(self._sent.items()):
                    try:
                        s.send(self.DRIP[sent:sent + 1])
                        self._sent[s] = (sent + 1) % len(self.DRIP)
                    except OSError:
                        pass  # not connected yet, or closed: the select loop replaces it


def probe(port: int, path: str = "/readyz") -> tuple[int, bytes]:
    """What a kubelet does: connect, GET the probe's path, read the answer, within a short
    timeout."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def probes_pass(port: int, times: int = 6):
    for i in range(times):
        start = time.monotonic()
        try:
            status, body = probe(port, "/livez" if i % 2 else "/readyz")
        except OSError as e:  # refused, reset, closed without an answer, timed out
            pytest.fail(f"probe {i + 1} of {times} failed after "
                        f"{time.monotonic() - start:.2f}s: {e!r}")
        assert (status, body) == (200, b"ok\n"), f"probe {i + 1}: {status} {body!r}"
        assert time.monotonic() - start < PROBE_TIMEOUT
        time.sleep(0.2)


@pytest.mark.timing
def test_idle_connections_do_not_starve_the_health_probe(health_gateway, keys):
    gw = health_gateway
    assert gw.health_port
    probes_pass(gw.health_port, times=1)
    bystander = Bystander(gw, keys)
    try:
        with Holders(gw.health_port, HOLDERS) as holders:
            time.sleep(1.5)  # every slot castgate has is taken, the accept queue is full
            probes_pass(gw.health_port)
            bystander.echo("during")
            # The attack was real: the holders held far more connections than castgate keeps.
            assert holders.opened >= HOLDERS
        bystander.finish()
    finally:
        bystander.close()
    still_serving(gw, keys)
    probes_pass(gw.health_port, times=2)


@pytest.mark.timing
def test_slowloris_clients_do_not_starve_the_health_probe(health_gateway, keys):
    gw = health_gateway
    bystander = Bystander(gw, keys)
    try:
        with Holders(gw.health_port, 100, drip=True), Holders(gw.health_port, 100):
            time.sleep(2.5)  # several drips: each holder has sent a few bytes of its request
            probes_pass(gw.health_port)
            bystander.echo("during")
        bystander.finish()
    finally:
        bystander.close()
    still_serving(gw, keys)
    probes_pass(gw.health_port, times=2)


@pytest.mark.timing
def test_a_dripping_client_is_closed_after_the_short_timeout(health_gateway):
    """Without any pressure on the cap, a client that never finishes its request is still closed
    after castgate's client timeout (2 s), however steadily it drips bytes."""
    s = socket.create_connection(("127.0.0.1", health_gateway.health_port), timeout=10)
    s.settimeout(0.5)
    start = time.monotonic()
    closed_after = None
    try:
        for b in Holders.DRIP[:40]:
            try:
                s.send(bytes([b]))
                if s.recv(4096) == b"":
                    closed_after = time.monotonic() - start
                    break
            except socket.timeout:
                continue
            except OSError:
                closed_after = time.monotonic() - start
                break
    finally:
        s.close()
    assert closed_after is not None and closed_after < 4, closed_after


def raw_answer(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
        return out


def test_odd_requests_get_plain_refusals_and_probes_keep_passing(health_gateway, keys):
    """The health port parses what anyone sends it: wrong methods, unknown or crafted paths,
    NUL bytes, a request line as long as the buffer. Each gets a short answer; none passes for
    a probe, none disturbs the next probe."""
    port = health_gateway.health_port
    for request, status in [(b"POST /readyz HTTP/1.1\r\n\r\n", b"405"),
                            (b"get /livez HTTP/1.1\r\n\r\n", b"405"),
                            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"405"),  # TLS
                            (b"GET / HTTP/1.1\r\n\r\n", b"404"),
                            (b"GET /livez/../readyz HTTP/1.1\r\n\r\n", b"404"),
                            (b"GET /readyz\x00 HTTP/1.1\r\n\r\n", b"404"),
                            (b"GET /" + b"a" * 4091, b"404"),  # fills the 4 KiB buffer
                            (b"GET /livez?x HTTP/1.1\r\n\r\n", b"200")]:
        answer = raw_answer(port, request)
        assert answer.startswith(b"HTTP/1.0 " + status), (request[:40], answer)
        probes_pass(port, times=2)
    still_serving(health_gateway, keys)
