"""The `openenergy` command line: dispatches to one module per sub-command."""

import argparse
import importlib
import sys

from errors import OpenEnergyError

# Each module exposes register(subparsers); its parsers set `func(args) -> int`.
COMMAND_MODULES = (
    "lorawan",
    "airtime",
    "payload",
    "tic",
    "sim",
    "provision",
    "register",
    "sniff",
    "plan",
    "flash",
    "board",
)


class CliError(Exception):
    """A usage or input error reported as one line on stderr with exit status 2."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="openenergy",
        description="Open energy monitoring on LoPy boards: decode frames and payloads, "
        "compute airtime, simulate a building, flash and provision boards.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module("openenergy.commands." + name)
        except ModuleNotFoundError as exc:
            if exc.name != "openenergy.commands." + name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (CliError, OpenEnergyError) as exc:
        print("openenergy %s: error: %s" % (args.command, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("openenergy: interrupted", file=sys.stderr)
        return 130
