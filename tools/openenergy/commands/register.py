"""`openenergy register`: create devices and their OTAA keys in ChirpStack v4 (gRPC API).

The work is in openenergy.chirpstack; this module gathers the options, reads the credentials
files written by `openenergy provision` and prints one line per device. The API token comes
from --api-token or CHIRPSTACK_API_TOKEN and is never printed; neither is any key.
"""

import argparse
import os
import sys

from errors import ConfigError

from openenergy import provisioning
from openenergy.cli import CliError

EPILOG = """\
examples:
  export CHIRPSTACK_SERVER=chirpstack.example.org:8080
  export CHIRPSTACK_API_TOKEN=...      # ChirpStack UI > API keys (tenant or admin key)
  openenergy register credentials/chaufferie.toml \\
      --application-id 0f3c6a3e-6f2b-4a51-9d3b-2d3f8f1f5c10 \\
      --device-profile-id 5a8e9f0c-1d2b-4c3a-8e7f-6a5b4c3d2e1f

  # every board of a batch (the files written by `openenergy provision --csv`)
  openenergy register credentials/*.toml --application-id ... --device-profile-id ...

  # a server behind TLS (a reverse proxy on 443)
  openenergy register credentials/bureau.toml --server https://chirpstack.example.org ...

Safe to run again: an existing device is compared and updated only where it differs (name,
device profile, JoinEUI, AppKey), so a rerun after a failure completes the job. The ids are in
the ChirpStack UI: Applications > (application) > the id under its name; Device profiles > the
id of the profile. The profile must support OTAA (LoRaWAN 1.0.2, EU868 for openenergy sensors).
Exit status 0, or 2 with one line on stderr: a refused token (UNAUTHENTICATED), an unreachable
server (UNAVAILABLE), an unknown application or device profile (NOT_FOUND), a bad file.
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "register",
        help="create devices and their OTAA keys in ChirpStack v4",
        description="Create (or bring up to date) each device and its OTAA keys in ChirpStack v4 "
        "through its gRPC API, from the credentials files of `openenergy provision`.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "credentials",
        nargs="*",
        metavar="CREDENTIALS.toml",
        help="credentials files written by `openenergy provision`",
    )
    parser.add_argument(
        "--server",
        metavar="HOST:PORT",
        default=os.environ.get("CHIRPSTACK_SERVER"),
        help="ChirpStack API address; https://HOST[:PORT] for TLS (default: $CHIRPSTACK_SERVER)",
    )
    parser.add_argument(
        "--api-token",
        metavar="TOKEN",
        help="API key (default: $CHIRPSTACK_API_TOKEN, the safer place: a token typed here "
        "stays in the shell history)",
    )
    parser.add_argument(
        "--application-id",
        metavar="UUID",
        default=os.environ.get("CHIRPSTACK_APPLICATION_ID"),
        help="the application (default: $CHIRPSTACK_APPLICATION_ID)",
    )
    parser.add_argument(
        "--device-profile-id",
        metavar="UUID",
        default=os.environ.get("CHIRPSTACK_DEVICE_PROFILE_ID"),
        help="the device profile (default: $CHIRPSTACK_DEVICE_PROFILE_ID)",
    )
    parser.add_argument("--description", default="", help="device description in ChirpStack")
    parser.add_argument("--tls", action="store_true", help="use TLS even without https://")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for each answer (default: %(default)g)",
    )
    flags = parser.add_argument_group("without a credentials file")
    flags.add_argument("--name", help="device name")
    flags.add_argument("--dev-eui", metavar="HEX", help="DevEUI, 16 hex digits")
    flags.add_argument("--join-eui", metavar="HEX", help="JoinEUI (default: 16 zeros)")
    flags.add_argument(
        "--app-key", metavar="HEX", help="AppKey, 32 hex digits (prefer a credentials file)"
    )
    parser.set_defaults(func=run)


def _devices(args):
    given = [args.name, args.dev_eui, args.join_eui, args.app_key]
    if args.credentials and any(v is not None for v in given):
        raise CliError("--dev-eui/--app-key/--name/--join-eui: not with credentials files")
    if args.credentials:
        devices = []
        for path in args.credentials:
            creds = provisioning.load_credentials(path)
            if not provisioning.is_private(path):
                print(
                    f"warning: {path} can be read by other users: chmod 600 {path}",
                    file=sys.stderr,
                )
            devices.append(creds)
        return devices
    if args.dev_eui is None or args.app_key is None:
        raise CliError("credentials: give CREDENTIALS.toml files, or --dev-eui and --app-key")
    dev_eui = provisioning.checked_dev_eui(args.dev_eui)
    return [
        provisioning.make_credentials(
            args.name or dev_eui.hex(),
            dev_eui,
            args.join_eui if args.join_eui is not None else provisioning.DEFAULT_JOIN_EUI,
            args.app_key,
        )
    ]


def run(args):
    try:
        from openenergy import chirpstack
    except ImportError as exc:
        raise CliError(
            f"register needs the chirpstack-api and grpcio packages ({exc.name} is missing): "
            "pip install chirpstack-api grpcio"
        ) from None
    if args.server is None:
        raise CliError("--server: missing (host:port, or set CHIRPSTACK_SERVER)")
    token = args.api_token if args.api_token is not None else os.environ.get("CHIRPSTACK_API_TOKEN")
    if not token:
        raise CliError("--api-token: missing (or set CHIRPSTACK_API_TOKEN)")
    if args.application_id is None:
        raise CliError("--application-id: missing (or set CHIRPSTACK_APPLICATION_ID)")
    if args.device_profile_id is None:
        raise CliError("--device-profile-id: missing (or set CHIRPSTACK_DEVICE_PROFILE_ID)")
    if not args.timeout > 0:
        raise CliError("--timeout: expected a number of seconds > 0")
    application_id = chirpstack.check_uuid("--application-id", args.application_id)
    profile_id = chirpstack.check_uuid("--device-profile-id", args.device_profile_id)
    try:
        devices = _devices(args)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    with chirpstack.Client(args.server, token, True if args.tls else None, args.timeout) as client:
        for creds in devices:
            client.hide(creds.app_key.hex())
        application = client.get_application(application_id)
        profile = client.get_device_profile(profile_id)
        for warning in chirpstack.check_profile(profile, profile_id):
            print(f"warning: {warning}", file=sys.stderr)
        print(
            f"ChirpStack {client.target}: application {application.name!r}, "
            f"device profile {profile.name!r}"
        )
        for creds in devices:
            actions = chirpstack.register_device(
                client, creds, application_id, profile_id, args.description
            )
            done = ", ".join(f"{what} {action}" for what, action in actions)
            print(f"{creds.name} {creds.dev_eui.hex().upper()}: {done}")
            sys.stdout.flush()
    return 0
