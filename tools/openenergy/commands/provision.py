"""`openenergy provision`: give a sensor its OTAA identity, one board at a time or from a CSV.

The logic lives in openenergy.provisioning; this module parses options and prints. Keys are
never printed: only the DevEUI, the JoinEUI, the TR005 QR content and where the file went.
"""

import argparse
import sys
import tomllib
from pathlib import Path

from errors import ConfigError

from openenergy import provisioning, qr
from openenergy.cli import CliError

EPILOG = """\
examples:
  # one board, DevEUI from its label, AppKey generated; QR code on screen and as a PNG
  openenergy provision --name chaufferie --dev-eui 70B3D57ED0000001 --qr chaufferie.png

  # everything generated (a locally administered DevEUI and a random AppKey)
  openenergy provision --name compteur-eau

  # a whole batch: one row per board, resumable (rerun after an interruption or a fix)
  openenergy provision --csv boards.csv --join-eui 0000000000000000

  boards.csv (comma or semicolon separated; only name is required):
    name,dev_eui,join_eui,app_key,profile_id
    chaufferie,70B3D57ED0000001,,,
    compteur-eau,,,,

what it writes:
  OUT_DIR/NAME.toml   the credentials (dev_eui, join_eui, app_key, profile_id), mode 0600:
                      give it to `openenergy register` and `openenergy flash --config`
  OUT_DIR/NAME.png    the TR005 QR code (batch mode; --qr FILE.png for one board)
  OUT_DIR/config/NAME.toml  with --config: that sensor configuration with this identity,
                      validated, mode 0600: what `openenergy flash --config` writes to the board
  CSV.state.json      the rows already done (batch mode), so a rerun skips them

An existing credentials file is never overwritten with other keys without --force; what a
rerun does not give is kept from the file (never generated again): delete the file of a device
to start it over. The QR code (LW:D0:JoinEUI:DevEUI:ProfileID,
LoRa Alliance TR005) never contains the AppKey. Exit status: 0 done, 1 some CSV rows failed,
2 the command could not run (one line on stderr naming the field).
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "provision",
        help="give sensors their OTAA identity (DevEUI, JoinEUI, AppKey) and a TR005 QR code",
        description="Create or check the OTAA identity of a sensor (or of every row of a CSV), "
        "write it to a private credentials file and show its LoRa Alliance TR005 QR code.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    one = parser.add_argument_group("one board")
    one.add_argument("--name", help="device name (default: the DevEUI in hex); names the file")
    source = one.add_mutually_exclusive_group()
    source.add_argument(
        "--dev-eui", metavar="HEX", help="DevEUI, 16 hex digits (default: generated)"
    )
    source.add_argument(
        "--port",
        metavar="PORT",
        help="read the DevEUI from the board's LoRa MAC on this serial port",
    )
    one.add_argument(
        "--app-key",
        metavar="HEX",
        help="AppKey, 32 hex digits (default: generated; prefer that: a key typed here stays "
        "in the shell history)",
    )
    one.add_argument("--qr", metavar="FILE.png", help="also save the QR code as a PNG")
    one.add_argument(
        "--no-terminal-qr", action="store_true", help="do not draw the QR code in the terminal"
    )
    batch = parser.add_argument_group("many boards")
    batch.add_argument("--csv", metavar="FILE", help="provision one board per row of FILE")
    both = parser.add_argument_group("both")
    both.add_argument(
        "--join-eui", metavar="HEX", help="JoinEUI for rows without one (default: 16 zeros)"
    )
    both.add_argument(
        "--profile-id",
        metavar="HEX",
        help="TR005 ProfileID, 8 hex digits: VendorID + VendorProfileID (default: 00000000)",
    )
    both.add_argument(
        "--out-dir",
        metavar="DIR",
        help="where credentials files go (default: ./credentials, or credentials/ beside the CSV)",
    )
    both.add_argument(
        "--config",
        metavar="FILE",
        help="a sensor TOML (like examples/sensor.toml): validated with the identity and written "
        "with it to OUT_DIR/config/NAME.toml, ready for flashing",
    )
    both.add_argument(
        "--force",
        action="store_true",
        help="let the values given replace existing credentials that differ",
    )
    parser.set_defaults(func=run)


def _base_config(path):
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: invalid TOML in {path}: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path} ({exc.strerror})") from None


def _defaults(args):
    join_eui = profile_id = None
    if args.join_eui is not None:
        join_eui = provisioning.checked_join_eui(args.join_eui)
    if args.profile_id is not None:
        profile_id = provisioning.checked_profile_id(args.profile_id)
    return join_eui, profile_id


def run(args):
    base = _base_config(args.config)
    join_eui, profile_id = _defaults(args)
    if args.csv is not None:
        for option in ("name", "dev_eui", "port", "app_key", "qr"):
            if getattr(args, option) is not None:
                raise CliError(f"--{option.replace('_', '-')}: not with --csv (put it in the CSV)")
        return run_batch(args, base, join_eui, profile_id)
    return run_one(args, base, join_eui, profile_id)


def run_one(args, base, join_eui, profile_id):
    dev_eui, source = args.dev_eui, "given"
    if args.port is not None:
        dev_eui = provisioning.read_lora_mac(args.port)
        source = f"read from the board on {args.port}"
    request = provisioning.Request(
        name=args.name,
        dev_eui=dev_eui,
        dev_eui_source=source,
        join_eui=join_eui,
        app_key=args.app_key,
        profile_id=profile_id,
    )
    out_dir = Path(args.out_dir) if args.out_dir else Path("credentials")
    try:
        outcome = provisioning.provision(
            request, out_dir, args.force, base, base_source=args.config
        )
    except OSError as exc:
        raise CliError(
            f"--out-dir: cannot write in {out_dir} ({exc.strerror or exc.__class__.__name__})"
        ) from None
    creds = outcome.creds
    action = {
        "created": "credentials written to",
        "unchanged": "credentials already in",
        "replaced": "credentials replaced in",
    }[outcome.action]
    dev_source = {"kept": "kept from the existing file", "generated": "generated"}.get(
        outcome.dev_eui_source, outcome.dev_eui_source
    )
    key_source = {
        "given": "given",
        "generated": "generated",
        "kept": "kept from the existing file",
    }[outcome.app_key_source]
    print(f"{creds.name}: {action} {outcome.path} (mode 0600)")
    print(f"  DevEUI   {creds.dev_eui.hex().upper()} ({dev_source})")
    print(f"  JoinEUI  {creds.join_eui.hex().upper()}")
    print(f"  AppKey   {key_source}; only in the credentials file, never printed")
    print(f"  QR       {creds.qr_text}")
    if not args.no_terminal_qr:
        print(qr.terminal_text(creds.qr_text))
    if args.qr is not None:
        try:
            qr.save_png(creds.qr_text, args.qr)
        except OSError as exc:
            raise CliError(f"--qr: cannot write {args.qr} ({exc.strerror})") from None
        print(f"  QR code saved to {args.qr}")
    if outcome.config_path is not None:
        print(f"  config   {outcome.config_path} (mode 0600): {args.config} with this identity")
    print(
        f"next: openenergy register {outcome.path} --application-id UUID --device-profile-id UUID"
    )
    return 0


def run_batch(args, base, join_eui, profile_id):
    csv_path = Path(args.csv)
    out_dir = Path(args.out_dir) if args.out_dir else csv_path.parent / "credentials"

    def show(result):
        where = f"line {result.line}" + (f" ({result.name})" if result.name else "")
        if result.status == "error":
            print(f"{where}: error: {result.message}")
        else:
            creds = result.outcome.creds
            print(
                f"{where}: {result.status}: {result.message} "
                f"(DevEUI {creds.dev_eui.hex().upper()}, {result.outcome.path})"
            )
        sys.stdout.flush()

    results = provisioning.run_batch(
        csv_path,
        out_dir,
        force=args.force,
        base=base,
        join_eui=join_eui,
        profile_id=profile_id,
        on_row=show,
        base_source=args.config,
    )
    counts = {
        status: sum(r.status == status for r in results) for status in ("done", "skipped", "error")
    }
    print(
        f"{len(results)} rows: {counts['done']} done, {counts['skipped']} skipped, "
        f"{counts['error']} failed (state: {provisioning.state_path(csv_path)})"
    )
    if counts["error"]:
        print(
            f"openenergy provision: {counts['error']} row(s) failed: fix them and run the same "
            "command again (rows done are skipped)",
            file=sys.stderr,
        )
        return 1
    return 0
