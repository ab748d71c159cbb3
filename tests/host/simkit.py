"""Helpers for the simulator tests: run firmware on one board of a fresh world."""

from pathlib import Path

from openenergy.sim.world import World

FIXTURES = Path(__file__).resolve().parent.parent / "sim_fixtures"
S = 1_000_000
MIN = 60 * S
BOOT = 500_000  # World's default boot_time_us


def run(image, until_us=5 * S, setup=None, name="dut", board_args=None, **world_args):
    """Run image (a fixture folder, {path: text}, or main.py source) on one board until
    until_us; setup(world, board) schedules the outside world first. Returns the board, whose
    console, NVS and stats stay readable after the world is closed."""
    if isinstance(image, str):
        image = {"main.py": image}
    with World(seed=world_args.pop("seed", 1), **world_args) as world:
        board = world.add_board(name, image, **(board_args or {}))
        if setup is not None:
            setup(world, board)
        world.run(until_us=until_us)
        return board


def out(board, prefix=""):
    """Console lines of a board (those starting with prefix)."""
    return [line for _, line in board.console if line.startswith(prefix)]


# Firmware prologue: join the "lab" WiFi and wait for it (needs the world's AP or none declared).
WIFI_UP = (
    "import time, usocket\n"
    "from network import WLAN\n"
    "wlan = WLAN(mode=WLAN.STA)\n"
    "wlan.connect('lab', auth=(WLAN.WPA2, 'secret'))\n"
    "while not wlan.isconnected():\n"
    "    time.sleep_ms(10)\n"
)
