"""NetIO: UDP between boards and host-side parties through real loopback sockets, in virtual time."""

import socket
import threading
import time

import pytest
from openenergy.sim.world import World
from simkit import BOOT, FIXTURES, WIFI_UP, S

SERVER = ("127.0.0.9", 9999)


def echo_server(world, drop=(), owner="server"):
    """A host-side echo party on SERVER as a scheduler task; drops the replies numbered in drop."""
    sock = world.netio.udp_socket(owner)
    sock.bind(SERVER)
    seen = []

    def serve():
        while True:
            data, addr = sock.recvfrom()
            seen.append((world.now_us(), data, addr))
            if len(seen) - 1 not in drop:
                sock.sendto(b"echo " + data, addr)

    world.scheduler.spawn(serve)
    return sock, seen


def outside_socket():
    """A real UDP socket the simulation does not own (a peer outside it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    return sock


def udp_world(**kwargs):
    world = World(seed=kwargs.pop("seed", 1), **kwargs)
    world.add_access_point("lab", "secret")
    world.dns["echo.sim"] = SERVER[0]
    return world


def test_udp_echo_between_a_board_and_a_host_socket_with_latency_and_timeouts():
    with udp_world(capture_trace=True) as world:
        _, seen = echo_server(world, drop=(1,))
        board = world.add_board("gw", FIXTURES / "udp_echo")
        world.run(until_us=20 * S)
        lines = [line for _, line in board.console]
        assert lines == [
            "ip 127.0.1.1",
            "reply b'echo ping 0' 2",
            "timeout 2000",
            "reply b'echo ping 2' 2",
        ]
        assert [data for _, data, _ in seen] == [b"ping 0", b"ping 1", b"ping 2"]
        assert {addr for _, _, addr in seen} == {("127.0.1.1", 49152)}
        udp = world.trace.of_kind("udp")
        assert [(r["src"], r["dst"], r["data"]) for r in udp[:2]] == [
            ("127.0.1.1:49152", "127.0.0.9:9999", b"ping 0".hex()),
            ("127.0.0.9:9999", "127.0.1.1:49152", b"echo ping 0".hex()),
        ]
        assert udp[1]["t"] - udp[0]["t"] == 1000  # the default 1 ms one-way latency


NONBLOCKING = """
import errno, time, usocket
from network import WLAN
wlan = WLAN(mode=WLAN.STA)
s = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
s.bind(('0.0.0.0', 1700))
try:
    s.sendto(b'early', ('127.0.0.9', 9999))
except OSError as e:
    print('no wifi', e.args[0] == errno.EHOSTUNREACH)
try:
    usocket.getaddrinfo('echo.sim', 9999)
except OSError as e:
    print('no dns', e.args[0])
wlan.connect('lab', auth=(WLAN.WPA2, 'secret'))
while not wlan.isconnected():
    time.sleep_ms(50)
print(usocket.getaddrinfo('echo.sim', 9999), usocket.getaddrinfo('10.0.0.1', 1)[0][-1])
try:
    usocket.getaddrinfo('unknown.example', 1)
except OSError as e:
    print('unknown', e.args[0])
s.setblocking(False)
print('recv', s.recv(10))
try:
    s.recvfrom(10)
except OSError as e:
    print('recvfrom', e.args[0] == errno.EAGAIN)
s.sendto(b'hello', ('127.0.0.9', 9999))
time.sleep_ms(5)
print('got', s.recvfrom(5))
s.close()
try:
    s.recv(1)
except OSError as e:
    print('closed', e.args[0] == errno.EBADF)
try:
    usocket.socket()
except NotImplementedError as e:
    print(e)
"""


def test_socket_semantics_of_pycom_non_blocking_closed_dns_and_tcp():
    with udp_world() as world:
        echo_server(world)
        board = world.add_board("gw", {"main.py": NONBLOCKING})
        world.run(until_us=10 * S)
        assert [line for _, line in board.console] == [
            "no wifi True",
            "no dns 202",
            "[(2, 1, 0, '', ('127.0.0.9', 9999))] ('10.0.0.1', 1)",
            "unknown 202",
            "recv b''",
            "recvfrom True",
            "got (b'echo ', ('127.0.0.9', 9999))",
            "closed True",
            "simulator: usocket TCP sockets (SOCK_STREAM) not supported",
        ]


OUTAGE = (
    WIFI_UP
    + """
s = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)
s.settimeout(0.5)
for n in range(12):
    try:
        s.sendto(b'%d' % n, ('127.0.0.9', 9999))
        print(n, s.recv(20))
    except OSError as e:
        print(n, type(e).__name__, e.args[0])
    time.sleep(1)
"""
)


def test_wifi_outage_fails_sends_then_the_board_reconnects_and_server_outage_drops():
    with udp_world(capture_trace=True) as world:
        sock, seen = echo_server(world)
        board = world.add_board("gw", {"main.py": OUTAGE})
        start = BOOT + world.wifi_connect_us
        world.wifi_outage(board, at_us=start + 2_700_000, duration_us=3 * S)
        world.scheduler.call_at(start + 8_700_000, sock.set_down, True)
        world.scheduler.call_at(start + 10_700_000, sock.set_down, False)
        world.run(until_us=start + 20 * S)
        results = [line.split(" ", 1)[1] for _, line in board.console]
        assert results[:3] == ["b'echo 0'", "b'echo 1'", "b'echo 2'"]
        # outage from 2.7 s to 5.7 s, then 1.5 s to associate again: sends fail until 7.2 s
        assert results[3:8] == ["OSError 113"] * 5
        assert results[8] == "b'echo 8'"
        # server outage from 8.7 s to 10.7 s: requests dropped, the board times out
        assert results[9:11] == ["TimeoutError timed out"] * 2
        assert results[11] == "b'echo 11'"
        reasons = [r["reason"] for r in world.trace.of_kind("udp_drop")]
        assert reasons == ["receiver_down", "receiver_down"]


def test_host_socket_recvfrom_times_out_in_virtual_time():
    with World(seed=1) as world:
        sock = world.netio.udp_socket("server")
        sock.bind(("127.0.0.9", 0))
        got = []
        world.scheduler.spawn(
            lambda: got.append((sock.recvfrom(timeout_us=250_000), world.now_us()))
        )
        wall = time.perf_counter()
        world.run(until_us=10 * S)
        assert got == [(None, 250_000)] and time.perf_counter() - wall < 1.0
        assert sock.addr == ("127.0.0.9", 49152)


def test_datagrams_to_unknown_addresses_are_sent_for_real():
    outside = outside_socket()
    main = WIFI_UP + (
        "s = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)\n"
        "s.sendto(b'to the real world', ('127.0.0.1', %d))\n" % outside.getsockname()[1]
    )
    try:
        with udp_world() as world:
            world.add_board("gw", {"main.py": main})
            world.run(until_us=5 * S)
            assert world.netio.stats["external"] == 1
            data, src = outside.recvfrom(100)
            (endpoint,) = world.netio.by_addr.values()
            assert endpoint.addr == ("127.0.1.1", 49152)
            # the real source: the same port unless another process holds it on this host
            assert data == b"to the real world" and src == endpoint.real_addr
            assert src[0] == "127.0.1.1"
    finally:
        outside.close()


def test_simulated_ports_do_not_depend_on_what_the_host_holds():
    # another process (another simulation, a real bridge) holds the ports the world would use
    held = []
    for addr in (("127.0.1.1", 49152), ("127.0.0.9", 9999)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(addr)
            held.append(sock)
        except OSError:  # already held by another process: held all the same
            sock.close()
    try:
        with udp_world(capture_trace=True) as world:
            _, seen = echo_server(world, drop=(1,))
            board = world.add_board("gw", FIXTURES / "udp_echo")
            world.run(until_us=20 * S)
            assert [line for _, line in board.console][1:] == [
                "reply b'echo ping 0' 2",
                "timeout 2000",
                "reply b'echo ping 2' 2",
            ]
            assert {addr for _, _, addr in seen} == {("127.0.1.1", 49152)}
            udp = world.trace.of_kind("udp")
            assert (udp[0]["src"], udp[0]["dst"]) == ("127.0.1.1:49152", "127.0.0.9:9999")
            assert world.netio.stats["real_port_differs"] == 2
        for sock in held:  # nothing of the world reached the sockets it could not bind
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recvfrom(100)
    finally:
        for sock in held:
            sock.close()


def test_realtime_mode_delivers_what_a_real_peer_sends_back():
    outside = outside_socket()

    def real_echo():
        try:
            data, src = outside.recvfrom(100)
            time.sleep(0.05)
            outside.sendto(b"real " + data, src)
        except OSError:
            pass

    thread = threading.Thread(target=real_echo, daemon=True)
    thread.start()
    main = WIFI_UP + (
        "s = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)\n"
        "s.settimeout(1)\n"
        "t0 = time.ticks_ms()\n"
        "s.sendto(b'hi', ('127.0.0.1', %d))\n"
        "print(s.recv(20), time.ticks_diff(time.ticks_ms(), t0) >= 40)\n" % outside.getsockname()[1]
    )
    try:
        with udp_world(realtime=True, boot_time_us=0, wifi_connect_us=10_000) as world:
            board = world.add_board("gw", {"main.py": main})
            world.run(until_us=600_000)
            assert [line for _, line in board.console] == ["b'real hi' True"]
    finally:
        thread.join(2)
        outside.close()
