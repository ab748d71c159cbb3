"""The emulated Pycom modules: NVS, callbacks, Timer.Alarm, UART timing, ticks, RTC/NTP, WLAN,
uos, crypto, the MicroPython standard-module shims, ADC, uselect."""

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB, CFB8
except ImportError:  # cryptography < 43
    from cryptography.hazmat.primitives.ciphers.modes import CFB, CFB8

from openenergy.sim.world import World, set_wifi_link
from simkit import BOOT, FIXTURES, WIFI_UP, S, out, run

# -- pycom: NVS, LED ------------------------------------------------------------------------------
NVS_SCRIPT = """
import pycom
def attempt(f):
    try:
        r = f()
        print('ok', r)
    except Exception as e:
        print(type(e).__name__, e)
attempt(lambda: pycom.nvs_set('count', 41))
attempt(lambda: pycom.nvs_get('count'))
attempt(lambda: pycom.nvs_set('big', 3000000000))
attempt(lambda: pycom.nvs_get('big'))
attempt(lambda: pycom.nvs_set('neg', -1))
attempt(lambda: pycom.nvs_get('neg'))
attempt(lambda: pycom.nvs_set('text', 'hello'))
attempt(lambda: pycom.nvs_set('flag', True))
attempt(lambda: pycom.nvs_set('sixteen_chars_xx', 1))
attempt(lambda: pycom.nvs_get('missing'))
attempt(lambda: pycom.nvs_get('missing', -7))
attempt(lambda: pycom.nvs_erase('missing'))
attempt(lambda: pycom.nvs_erase('count'))
attempt(lambda: pycom.nvs_get('count'))
pycom.heartbeat(False)
pycom.rgbled(0x00ff00)
"""


def test_nvs_stores_32_bit_ints_only_and_fails_like_the_firmware():
    board = run(NVS_SCRIPT, until_us=2 * S)
    assert out(board) == [
        "ok None",
        "ok 41",
        "ok None",
        "ok -1294967296",
        "ok None",
        "ok -1",
        "TypeError can't convert str to int",
        "TypeError can't convert bool to int",
        "ValueError Key is too long",
        "ValueError No matching object for the provided key",
        "ok -7",
        "KeyError 'key not found'",
        "ok None",
        "ValueError No matching object for the provided key",
    ]
    assert board.nvs == {"big": 3000000000, "neg": 0xFFFFFFFF}
    assert board.led == 0x00FF00 and board.heartbeat is False


def test_nvs_in_1_20_mode_also_takes_short_strings():
    board = run(NVS_SCRIPT, until_us=2 * S, board_args={"nvs_strict": False})
    assert out(board)[6:8] == ["ok None", "ValueError Value must be string, bytes or integer"]
    assert board.nvs["text"] == "hello"


# -- callbacks --------------------------------------------------------------------------------------
def test_pin_and_alarm_callbacks_run_queued_on_the_irq_task_until_one_raises():
    def setup(world, board):
        call = world.scheduler.call_at
        for i in range(5):  # five S0 pulses of 40 ms on P10 (pulled up, falling edges count)
            call(BOOT + 2 * S + i * 100_000, board.drive_pin, "P10", 0)
            call(BOOT + 2 * S + i * 100_000 + 40_000, board.drive_pin, "P10", 1)
        call(BOOT + 4 * S + 50_000, board.drive_pin, "P11", 1)
        call(BOOT + 5 * S + 50_000, board.drive_pin, "P10", 0)

    board = run(
        (FIXTURES / "callbacks" / "main.py").read_text(), until_us=BOOT + 7 * S + 1000, setup=setup
    )
    status = [line for line in out(board) if line.startswith("status")]
    # A tick due at the very instant main wakes runs just after main's print (FIFO order).
    assert (
        status == ["status 0 9", "status 0 19", "status 5 29", "status 5 39"] + ["status 5 40"] * 3
    )
    text = board.console_text()
    assert "Unhandled exception in callback handler\nTraceback (most recent call last):\n" in text
    assert "ValueError: bad handler P11" in text
    assert board.session.irq_dead and board.crashes[0][1] == "callback"


def test_the_callback_queue_holds_32_and_drops_the_rest():
    main = (
        "import time\n"
        "from machine import Pin\n"
        "hits = []\n"
        "def slow(pin):\n"
        "    hits.append(1)\n"
        "    time.sleep_ms(100)\n"
        "Pin('P9', mode=Pin.IN).callback(Pin.IRQ_RISING | Pin.IRQ_FALLING, slow)\n"
        "time.sleep(20)\n"
        "print('hits', len(hits))\n"
    )

    def setup(world, board):
        for i in range(50):
            world.scheduler.call_at(BOOT + S + i * 10, board.drive_pin, "P9", (i + 1) % 2)

    board = run(main, until_us=30 * S, setup=setup)
    assert out(board) == ["hits 33"]
    assert board.stats["irq_dropped"] == 17


def test_alarm_needs_a_single_positive_duration_and_cancel_stops_it():
    main = (
        "from machine import Timer\n"
        "import time\n"
        "for kw in ({'ms': 10, 'us': 5}, {}, {'ms': -1}):\n"
        "    try:\n"
        "        Timer.Alarm(print, **kw)\n"
        "    except ValueError as e:\n"
        "        print('ValueError', e)\n"
        "count = [0]\n"
        "def tick(alarm):\n"
        "    count[0] += 1\n"
        "    if count[0] == 3:\n"
        "        alarm.cancel()\n"
        "a = Timer.Alarm(tick, 0.25, periodic=True)\n"
        "one = Timer.Alarm(lambda arg: print('once', arg, time.ticks_ms()), us=1500, arg='x')\n"
        "time.sleep(3)\n"
        "print('count', count[0])\n"
    )
    board = run(main, until_us=5 * S)
    assert out(board) == [
        "ValueError please provide a single duration",
        "ValueError please provide a single duration",
        "ValueError please provide a positive number",
        "once x 1",
        "count 3",
    ]


def test_alarm_periodic_ticks_exactly_on_the_board_clock():
    main = (
        "from machine import Timer\n"
        "import time\n"
        "stamps = []\n"
        "Timer.Alarm(lambda a: stamps.append(time.ticks_cpu()), ms=100, periodic=True)\n"
        "time.sleep_ms(1050)\n"
        "print([b - a for a, b in zip(stamps, stamps[1:])])\n"
    )
    board = run(main, until_us=3 * S)
    assert out(board) == [
        "[100000, 100000, 100000, 100000, 100000, 100000, 100000, 100000, 100000]"
    ]


# -- UART ----------------------------------------------------------------------------------------------
TIC_FRAME = b"\x02\nADCO 021861348722 B\r\nBASE 012345678 7\r\n\x03"


def test_uart_bytes_arrive_at_the_line_baud_rate():
    main = (
        "from machine import UART\n"
        "import time\n"
        "u = UART(1, baudrate=1200, bits=7, parity=UART.EVEN, stop=1, timeout_chars=4)\n"
        "print('empty', u.read(), u.any())\n"
        "time.sleep_ms(100)\n"
        "print('any', u.any())\n"
        "t0 = time.ticks_cpu()\n"
        "data = u.read(len(%r))\n"
        "print('read', data == %r, time.ticks_diff(time.ticks_cpu(), t0))\n"
        % (TIC_FRAME, TIC_FRAME)
    )

    def setup(world, board):
        world.scheduler.call_at(BOOT + 50_000, board.uart_feed, 1, TIC_FRAME, 1200, 7, 2, 1)

    board = run(main, until_us=2 * S, setup=setup)
    per_char = round(10 * 1e6 / 1200)  # 7E1 = 10 bits a character
    timeout = round(4 * 10 * 1e6 / 1200)  # timeout_chars=4
    lines = out(board)
    assert lines[0] == "empty None 0"
    asked = timeout + 20 + 100_000 + 20  # after read() timed out, any(), sleep, any()
    assert lines[1] == "any %d" % ((asked - 50_000) // per_char)
    flag, waited = lines[2].split()[1:]
    last_byte = 50_000 + len(TIC_FRAME) * per_char
    assert flag == "True" and int(waited) == last_byte - asked


def test_uart_readline_and_framing_mismatches():
    main = (
        "from machine import UART\n"
        "import time\n"
        "good = UART(1, baudrate=1200, bits=7, parity=UART.EVEN)\n"
        "time.sleep(1)\n"
        "print('7E1', good.readline())\n"
        "eight = UART(1, baudrate=1200, bits=8, parity=None)\n"
        "time.sleep(1)\n"
        "print('8N1', eight.read())\n"
        "fast = UART(1, baudrate=9600, bits=7, parity=UART.EVEN)\n"
        "time.sleep(1)\n"
        "print('9600', fast.read() != b'ADCO\\r\\n')\n"
    )

    def setup(world, board):
        for k in range(3):
            world.scheduler.call_at(
                BOOT + 200_000 + k * S, board.uart_feed, 1, b"ADCO\r\n", 1200, 7, 2
            )

    board = run(main, until_us=5 * S, setup=setup)
    expected_8n1 = bytes(c | ((bin(c).count("1") & 1) << 7) for c in b"ADCO\r\n")
    assert out(board) == ["7E1 b'ADCO\\r\\n'", "8N1 %r" % expected_8n1, "9600 True"]


def test_uart_bytes_sent_while_the_uart_is_closed_are_lost_and_the_buffer_overflows():
    main = (
        "from machine import UART\n"
        "import time\n"
        "time.sleep(1)\n"
        "u = UART(2, baudrate=115200, rx_buffer_size=64)\n"
        "time.sleep(1)\n"
        "print('got', len(u.read(1000)), u.write(b'ack'))\n"
    )

    def setup(world, board):
        world.scheduler.call_at(BOOT + 100_000, board.uart_feed, 2, b"x" * 100, 115200)
        world.scheduler.call_at(BOOT + 1_100_000, board.uart_feed, 2, b"y" * 200, 115200)

    board = run(main, until_us=4 * S, setup=setup)
    assert out(board) == ["got 64 3"]
    assert board.uart_output(2) == b"ack" and board.stats["uart_overflow_bytes"] == 136


# -- time ------------------------------------------------------------------------------------------------
def test_ticks_wrap_at_2_32_and_ticks_diff_is_signed():
    main = (
        "import time\n"
        "print(time.ticks_add(0xFFFFFFF0, 0x20), time.ticks_diff(0x10, 0xFFFFFFF0), time.ticks_diff(0xFFFFFFF0, 0x10))\n"
        "print(time.ticks_add(5, -10), time.ticks_diff(time.ticks_add(123, 1000), 123))\n"
        "time.sleep(4000)\n"
        "t0 = time.ticks_us()\n"
        "time.sleep(600)\n"
        "t1 = time.ticks_us()\n"
        "print(t1 < t0, time.ticks_diff(t1, t0), time.ticks_diff(t0, t1))\n"
    )
    board = run(main, until_us=4700 * S)
    lines = out(board)
    assert lines[0] == "16 32 -32"
    assert lines[1] == "4294967291 1000"
    assert lines[2] == "True 600000020 -600000020"


def test_ticks_ms_follow_the_rtc_and_jump_while_ticks_cpu_stays_monotonic():
    main = (
        "import time, machine\n"
        "c0, m0 = time.ticks_cpu(), time.ticks_ms()\n"
        "machine.RTC().init((2024, 1, 1, 0, 0, 0))\n"
        "c1, m1 = time.ticks_cpu(), time.ticks_ms()\n"
        "print(time.ticks_diff(c1, c0), abs(time.ticks_diff(m1, m0)) > 1000000, time.time(), time.localtime()[:6])\n"
    )
    board = run(main, until_us=2 * S)
    assert out(board) == ["40 True 1704067200 (2024, 1, 1, 0, 0, 0)"]


def test_rtc_memory_and_ntp_sync_through_wifi():
    main = (
        "import machine, time\n"
        "from network import WLAN\n"
        "rtc = machine.RTC()\n"
        "try:\n"
        "    rtc.memory(bytes(2049))\n"
        "except ValueError as e:\n"
        "    print('ValueError', e)\n"
        "try:\n"
        "    rtc.ntp_sync('pool.ntp.org', 10)\n"
        "except ValueError as e:\n"
        "    print('ValueError', e)\n"
        "rtc.ntp_sync('pool.ntp.org')\n"
        "time.sleep(1)\n"
        "print('before wifi', rtc.synced(), rtc.now()[0])\n"
        "wlan = WLAN(mode=WLAN.STA)\n"
        "wlan.connect('lab', auth=(WLAN.WPA2, 'pw'))\n"
        "while not rtc.synced():\n"
        "    time.sleep_ms(100)\n"
        "print('synced', rtc.now()[:6], time.time())\n"
    )
    board = run(main, until_us=30 * S)
    lines = out(board)
    assert lines[:3] == [
        "ValueError buffer too long",
        "ValueError update period cannot be shorter than 15 s",
        "before wifi False 1970",
    ]
    # first SNTP attempt at boot+30 ms fails (no WiFi); the retry 15 s later succeeds.
    assert lines[3] == "synced (2024, 1, 1, 0, 0, 15) %d" % (1704067200 + 15)


# -- WLAN --------------------------------------------------------------------------------------------------
WLAN_SCRIPT = """
import time
from network import WLAN
wlan = WLAN(mode=WLAN.STA)
print('mac', len(wlan.mac().sta_mac), wlan.mac().ap_mac[5] - wlan.mac().sta_mac[5])
wlan.connect('lab', auth=(WLAN.WPA2, 'wrong'), timeout=3000)
for i in range(40):
    try:
        if wlan.isconnected():
            print('connected?')
    except TimeoutError as e:
        print('TimeoutError', e, i)
    time.sleep_ms(100)
print('after', wlan.isconnected())
wlan.connect('lab', auth=(WLAN.WPA2, 'secret'), timeout=10000)
while not wlan.isconnected():
    time.sleep_ms(100)
print('up', wlan.ifconfig()[0])
state = []
for i in range(100):
    state.append(wlan.isconnected())
    time.sleep_ms(100)
print('seen', state.count(False) > 0, state[-1])
wlan.disconnect()
time.sleep(5)
print('after disconnect', wlan.isconnected())
"""


def test_wlan_connect_timeout_outage_reconnect_and_disconnect():
    def setup(world, board):
        world.add_access_point("lab", "secret")
        world.scheduler.call_at(BOOT + 8 * S, set_wifi_link, board, False)
        world.scheduler.call_at(BOOT + 10 * S, set_wifi_link, board, True)

    board = run(WLAN_SCRIPT, until_us=30 * S, setup=setup)
    lines = out(board)
    assert lines[0] == "mac 6 1"
    assert lines[1].startswith("TimeoutError Connection to AP Timeout! ")
    assert lines[2:] == [
        "after False",
        "up %s" % board.ip,
        "seen True True",
        "after disconnect False",
    ]


# -- uos, crypto, shims ---------------------------------------------------------------------------------------
def test_uos_over_the_virtual_flash():
    main = (
        "import os\n"
        "print(os.listdir(), os.listdir('/'), os.getcwd())\n"
        "print(list(os.ilistdir('/')), [e[:2] for e in os.ilistdir('/flash')])\n"
        "os.mkdir('/flash/data')\n"
        "with open('/flash/data/a.tmp', 'w') as f:\n"
        "    f.write('12345')\n"
        "os.rename('/flash/data/a.tmp', '/flash/data/a')\n"
        "with open('/flash/data/b', 'w') as f:\n"
        "    f.write('old')\n"
        "os.rename('/flash/data/a', '/flash/data/b')\n"
        "print(os.listdir('/flash/data'), os.stat('/flash/data/b')[0], os.stat('/flash/data/b')[6])\n"
        "os.chdir('data')\n"
        "print(os.getcwd(), open('b').read())\n"
        "try:\n"
        "    os.remove('/flash/nothing')\n"
        "except OSError as e:\n"
        "    print('OSError', e)\n"
        "u = os.uname()\n"
        "print(u.sysname, u.release, u.lorawan, os.getfree('/flash') > 4000, len(os.urandom(5)))\n"
    )
    board = run(main, until_us=S + BOOT)
    assert out(board) == [
        "['main.py'] ['flash'] /flash",
        "[('flash', 16384, 0, 0)] [('main.py', 32768)]",
        "['b'] 32768 5",
        "/flash/data 12345",
        "OSError [Errno 2] ENOENT",
        "LoPy4 1.20.2.r4 1.0.2 True 5",
    ]


def test_crypto_aes_matches_fips_197_and_modes_round_trip():
    key = bytes(range(16))
    plain = bytes.fromhex("00112233445566778899aabbccddeeff")
    main = (
        "import crypto, ubinascii\n"
        "key = bytes(range(16))\n"
        "ecb = crypto.AES(key, crypto.AES.MODE_ECB)\n"
        "print(ubinascii.hexlify(ecb.encrypt(ubinascii.unhexlify('00112233445566778899aabbccddeeff'))))\n"
        "for mode, kw in ((crypto.AES.MODE_CBC, {'IV': bytes(16)}), (crypto.AES.MODE_CTR, {'counter': bytes(16)}),\n"
        "                 (crypto.AES.MODE_CFB, {'IV': bytes(16), 'segment_size': 128}), (crypto.AES.MODE_CFB, {'IV': bytes(16)})):\n"
        "    data = bytes(range(48)) if mode == crypto.AES.MODE_CBC else bytes(range(37))\n"
        "    enc = crypto.AES(key, mode, **kw).encrypt(data)\n"
        "    print(mode, ubinascii.hexlify(enc[:16]), crypto.AES(key, mode, **kw).decrypt(enc) == data)\n"
        "try:\n"
        "    ecb.encrypt(b'short')\n"
        "except ValueError as e:\n"
        "    print('ValueError', e)\n"
        "print(len(crypto.getrandbits(1)), len(crypto.getrandbits(33)))\n"
    )
    board = run(main, until_us=S + BOOT)
    lines = out(board)
    assert lines[0] == "b'69c4e0d86a7b0430d8cdb78070b4c55a'"
    reference = {
        2: Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
        .encryptor()
        .update(bytes(range(48)))[:16],
        6: Cipher(algorithms.AES(key), modes.CTR(bytes(16)))
        .encryptor()
        .update(bytes(range(37)))[:16],
    }
    assert lines[1] == "2 b'%s' True" % reference[2].hex()
    assert lines[2] == "6 b'%s' True" % reference[6].hex()
    cfb128 = Cipher(algorithms.AES(key), CFB(bytes(16))).encryptor().update(bytes(range(37)))[:16]
    cfb8 = Cipher(algorithms.AES(key), CFB8(bytes(16))).encryptor().update(bytes(range(37)))[:16]
    assert lines[3] == "3 b'%s' True" % cfb128.hex()
    assert lines[4] == "3 b'%s' True" % cfb8.hex()
    assert lines[5:] == ["ValueError Input strings must be a multiple of 16 in length", "4 8"]
    assert plain  # FIPS-197 appendix C.1 plaintext used above


def test_standard_module_shims_expose_only_the_micropython_api():
    main = (
        "import uhashlib, ucollections, ure, ujson, ustruct, ubinascii, sys, gc, json, struct\n"
        "h = uhashlib.sha256(b'abc')\n"
        "print(hasattr(h, 'hexdigest'), ubinascii.hexlify(h.digest())[:8], ubinascii.hexlify(b'ab', ':'))\n"
        "d = ucollections.deque((), 2)\n"
        "d.append(1); d.append(2); d.append(3)\n"
        "print(d.popleft(), len(d), hasattr(d, 'pop'))\n"
        "try:\n"
        "    ure.compile('a{2}')\n"
        "except ValueError as e:\n"
        "    print('ValueError', e)\n"
        "print(ure.match(r'(\\d+)-(\\d+)', '12-34').group(2), ujson.dumps({'a': [1, 2]}), json is ujson)\n"
        "try:\n"
        "    ujson.dumps({}, separators=(',', ':'))\n"
        "except TypeError:\n"
        "    print('TypeError')\n"
        "print(ustruct.unpack('<HI', b'\\x01\\x00\\x02\\x00\\x00\\x00'), struct is ustruct, sys.implementation.name)\n"
        "print(gc.mem_free() > 0, gc.collect(), sys.maxsize)\n"
    )
    board = run(main, until_us=S + BOOT)
    assert out(board) == [
        "False b'ba7816bf' b'61:62'",
        "2 1 False",
        "ValueError Error in regex",
        '34 {"a": [1, 2]} True',
        "TypeError",
        "(1, 2) True micropython",
        "True None 2147483647",
    ]


def test_a_json_py_on_the_flash_shadows_the_weak_link_but_not_utime():
    main = "import json, utime\nprint(json.MARK, utime.__name__)\n"
    image = {"main.py": main, "lib/json.py": "MARK = 'flash json'\n", "utime.py": "X = 1\n"}
    board = run(image, until_us=S + BOOT)
    assert out(board) == ["flash json utime"]


def test_adc_reads_the_voltage_applied_to_a_pin():
    main = (
        "from machine import ADC\n"
        "adc = ADC(bits=12)\n"
        "ch = adc.channel(pin='P16', attn=ADC.ATTN_11DB)\n"
        "print(ch.voltage(), ch.value(), ch())\n"
        "try:\n"
        "    adc.channel(pin='P2')\n"
        "except ValueError as e:\n"
        "    print('ValueError', e)\n"
    )
    board = run(main, until_us=S + BOOT, setup=lambda world, board: board.set_analog("P16", 1950))
    assert out(board) == ["1950 2048 2048", "ValueError invalid ADC pin: P2"]


def test_pins_modes_pulls_and_input_only_pins():
    main = (
        "from machine import Pin\n"
        "p = Pin('P12', mode=Pin.OUT, value=1)\n"
        "p.toggle()\n"
        "print(p(), Pin('P20', mode=Pin.IN, pull=Pin.PULL_UP)(), Pin('P21', mode=Pin.IN)())\n"
        "try:\n"
        "    Pin('P14', mode=Pin.OUT)\n"
        "except ValueError as e:\n"
        "    print('ValueError', e)\n"
        "print(Pin('P12'))\n"
    )
    board = run(main, until_us=S + BOOT)
    assert out(board) == [
        "0 1 0",
        "ValueError pin P14 is input only",
        "Pin('P12', mode=Pin.IN, pull=None, alt=-1)",
    ]
    assert board.pin_level("P12") == 0


@pytest.mark.parametrize(
    "name", ["network", "machine", "pycom", "usocket", "uos", "utime", "crypto"]
)
def test_each_board_run_gets_fresh_module_objects(name):
    main = "import %s\n%s.injected = 1\nimport machine\nmachine.deepsleep(10)\n" % (name, name)
    with World(seed=1) as world:
        board = world.add_board("dut", {"main.py": main})
        world.run(until_us=BOOT + 1000)
        first = board.session.modules[name]
        world.run(until_us=3 * BOOT)
        assert board.session.modules[name] is not first and hasattr(first, "injected")


# -- light sleep, Chrono, _thread locks, uselect --------------------------------------------------------
def test_light_sleep_returns_after_the_time_or_on_a_wake_pin_and_tells_the_radio():
    main = (
        "import machine, time\n"
        "c = machine.Timer.Chrono()\n"
        "c.start()\n"
        "machine.sleep(2000)\n"
        "print('slept', c.read_ms())\n"
        "machine.pin_sleep_wakeup(['P13'], machine.WAKEUP_ANY_HIGH)\n"
        "c.reset()\n"
        "machine.sleep(60000)\n"
        "c.stop()\n"
        "print('woken', c.read_us(), machine.wake_reason()[0])\n"
    )
    hooks = []

    def setup(world, board):
        board.on_light_sleep.append(lambda b, ms: hooks.append((b.name, ms)))
        world.scheduler.call_at(BOOT + 3 * S, board.drive_pin, "P13", 1)

    board = run(main, until_us=10 * S, setup=setup)
    lines = out(board)
    assert lines[0] == "slept 2000.02"  # read_ms() itself costs a 20 µs poll
    woken, reason = lines[1].split()[1:]
    assert 999_900 < int(woken) < 1_000_000 and reason == "0"
    assert hooks == [("dut", 2000), ("dut", 60000)]


def test_thread_locks_serialise_and_time_out():
    main = (
        "import _thread, time\n"
        "lock = _thread.allocate_lock()\n"
        "log = []\n"
        "def worker(name):\n"
        "    with lock:\n"
        "        log.append(name + '+')\n"
        "        time.sleep_ms(100)\n"
        "        log.append(name + '-')\n"
        "for name in 'ab':\n"
        "    _thread.start_new_thread(worker, (name,))\n"
        "time.sleep_ms(10)\n"
        "print(lock.acquire(1, 0.05), lock.locked())\n"
        "time.sleep(1)\n"
        "print(log, lock.acquire(0), _thread.get_ident() > 0)\n"
    )
    board = run(main, until_us=3 * S)
    assert out(board) == ["False True", "['a+', 'a-', 'b+', 'b-'] True True"]


def test_uselect_poll_waits_for_a_udp_datagram_or_uart_bytes():
    main = WIFI_UP + (
        "import uselect\n"
        "from machine import UART\n"
        "s = usocket.socket(usocket.AF_INET, usocket.SOCK_DGRAM)\n"
        "s.bind(('', 1700))\n"
        "u = UART(1, baudrate=9600)\n"
        "p = uselect.poll()\n"
        "p.register(s, uselect.POLLIN)\n"
        "p.register(u, uselect.POLLIN)\n"
        "for i in range(3):\n"
        "    t0 = time.ticks_ms()\n"
        "    ready = p.poll(1000)\n"
        "    names = sorted('sock' if o is s else 'uart' for o, ev in ready)\n"
        "    print(names, time.ticks_diff(time.ticks_ms(), t0))\n"
        "    if 'sock' in names:\n"
        "        s.recv(100)\n"
        "    if 'uart' in names:\n"
        "        u.read()\n"
    )

    def setup(world, board):
        host = world.netio.udp_socket("peer")
        host.bind(("127.0.0.9", 0))
        start = BOOT + world.wifi_connect_us + 100_000
        world.scheduler.call_at(start + 200_000, host.sendto, b"hello", (board.ip, 1700))
        world.scheduler.call_at(start + 500_000, board.uart_feed, 1, b"abc")

    board = run(main, until_us=6 * S, setup=setup)
    lines = out(board)
    assert [line.split("] ")[0] + "]" for line in lines] == ["['sock']", "['uart']", "[]"]
    assert 0 < int(lines[0].split()[-1]) < 1000 and 0 < int(lines[1].split()[-1]) < 1000
    assert lines[2] == "[] 1000"


# -- the LoRa hook --------------------------------------------------------------------------------------------
def test_network_lora_and_af_lora_sockets_come_from_the_radio_module(monkeypatch):
    import sys
    import types

    calls = []
    fake = types.ModuleType("openenergy.sim.pycom.lora")

    class FakeLoRa:
        LORA = 0

    def lora_class_for(board):
        calls.append(("class", board.name))
        return FakeLoRa

    def lora_socket(board, family, type_):
        calls.append(("socket", board.name, family, type_))
        return "lora-socket"

    fake.lora_class_for = lora_class_for
    fake.lora_socket = lora_socket
    monkeypatch.setitem(sys.modules, "openenergy.sim.pycom.lora", fake)
    main = (
        "import network, usocket\n"
        "print(network.LoRa.__name__, usocket.socket(usocket.AF_LORA, usocket.SOCK_RAW))\n"
        "print(usocket.SOL_LORA, usocket.SO_DR, usocket.SO_CONFIRMED)\n"
    )
    board = run(main, until_us=S + BOOT)
    assert out(board) == ["FakeLoRa lora-socket", "%d %d %d" % (0xFFF05, 0xF0003, 0xF0002)]
    assert calls == [("class", "dut"), ("socket", "dut", 0xA0, 3)]


def test_without_a_radio_model_lora_fails_loudly(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openenergy.sim.pycom.lora", None)
    main = (
        "import network, usocket\n"
        "for f in (lambda: network.LoRa(), lambda: usocket.socket(usocket.AF_LORA, usocket.SOCK_RAW)):\n"
        "    try:\n"
        "        f()\n"
        "    except NotImplementedError as e:\n"
        "        print(e)\n"
    )
    board = run(main, until_us=S + BOOT)
    assert out(board) == [
        "simulator: network.LoRa (no radio model installed) not supported",
        "simulator: usocket AF_LORA sockets (no radio model installed) not supported",
    ]
