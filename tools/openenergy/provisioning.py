"""OTAA identities for openenergy sensors: make or check them, keep them private, batch them.

A device's identity is its DevEUI, JoinEUI and AppKey (LoRaWAN 1.0.x OTAA) plus a TR005
ProfileID for its QR code. `provision` turns what the technician gives (or nothing: the DevEUI
and AppKey are then generated) into a credentials file, one per device:

    # openenergy credentials: SECRET (app_key). ...
    name = "chaufferie"
    dev_eui = "70B3D57ED0000001"
    join_eui = "0000000000000000"
    app_key = "…32 hex digits…"
    profile_id = "00000000"

TOML, mode 0600, written atomically; `dev_eui`, `join_eui` and `app_key` are the keys of the
sensor configuration (lib/devconfig.py), so `merge_into_config` drops them into a sensor TOML
for flashing, and `openenergy register` reads the file to create the device in ChirpStack.
Every identity is validated with devconfig.validate, so errors name the field. An existing
file is never overwritten with other keys unless `force`, and what a rerun does not give is
taken from the file instead of being generated again, which makes interrupted runs safe to
repeat.

Batch mode reads a CSV (columns in CSV_COLUMNS; `,` or `;` separated, UTF-8, Excel's BOM
accepted), provisions each row on its own (a bad row is reported and the others go on) and
records the rows done in `<csv>.state.json` beside it, so a rerun skips them.
"""

import csv
import io
import json
import os
import secrets
import stat
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import devconfig
from errors import ConfigError, OpenEnergyError

from openenergy import qr
from openenergy.cli import CliError

DEFAULT_JOIN_EUI = bytes(8)
DEFAULT_PROFILE_ID = bytes(4)
CSV_COLUMNS = ("name", "dev_eui", "join_eui", "app_key", "profile_id")
STATE_SUFFIX = ".state.json"
CREDENTIALS_FIELDS = ("name", "dev_eui", "join_eui", "app_key", "profile_id")
NAME_MAX = 64
# The smallest valid sensor configuration: identities are validated inside one.
_MINIMAL_SENSOR = {"image": "sensor", "s0": [{"pin": "P13"}]}
_HEX_SEPARATORS = str.maketrans("", "", ":- ")


class ProvisionError(OpenEnergyError):
    """A provisioning step that cannot be done as asked (one line, never a key)."""


def read_lora_mac(port):
    """The board's LoRa MAC (its DevEUI, 8 bytes) read over the serial port `port` ('auto':
    found by USB id); the board is reset afterwards so its firmware runs again.
    BoardError (one line, starting with --port when the port cannot be opened) otherwise."""
    from openenergy import boardlink

    with boardlink.open_board(port) as board:
        mac = board.lora_mac()
        board.reset()
    return mac


def generate_dev_eui(token_bytes=secrets.token_bytes):
    """A random EUI-64 marked locally administered and unicast (first byte: bit 1 set, bit 0
    clear), so it cannot collide with an IEEE-assigned EUI such as a board's own."""
    eui = bytearray(token_bytes(8))
    eui[0] = (eui[0] & 0xFC) | 0x02
    return bytes(eui)


def generate_app_key(token_bytes=secrets.token_bytes):
    """A random AppKey from the operating system's CSPRNG."""
    return token_bytes(16)


def compact_hex(text):
    """Hex as a technician may type or copy it ("70-B3-D5…", "70:b3 d5…") -> plain digits."""
    return text.strip().translate(_HEX_SEPARATORS)


@dataclass(frozen=True, eq=True)
class Credentials:
    """One device's identity; bytes fields, most significant byte first. repr hides app_key."""

    name: str
    dev_eui: bytes
    join_eui: bytes
    app_key: bytes
    profile_id: bytes = DEFAULT_PROFILE_ID

    @property
    def qr_text(self):
        return qr.tr005_text(self.join_eui, self.dev_eui, self.profile_id)

    def differences(self, other):
        """Names of the fields whose values differ (values never shown)."""
        return [f for f in CREDENTIALS_FIELDS if getattr(self, f) != getattr(other, f)]

    def __repr__(self):
        return "Credentials(name=%r, dev_eui=%s, join_eui=%s, app_key=%s, profile_id=%s)" % (
            self.name,
            self.dev_eui.hex().upper(),
            self.join_eui.hex().upper(),
            devconfig.REDACTED,
            self.profile_id.hex().upper(),
        )

    __str__ = __repr__


def check_name(name):
    """A device name: 1..64 letters, digits, '.', '_' or '-', not starting with '.' (it names
    the credentials file and the device in the network server)."""
    if not isinstance(name, str) or not name:
        raise ConfigError("name: missing (a device name such as chaufferie-1)")
    if len(name) > NAME_MAX:
        raise ConfigError(f"name: expected at most {NAME_MAX} characters, got {len(name)}")
    if name.startswith(".") or not all(ch.isalnum() or ch in "._-" for ch in name):
        raise ConfigError(
            "name: expected letters, digits, '.', '_' or '-' (it names a file), got %r" % name
        )
    return name


def checked_profile_id(value):
    """A TR005 ProfileID (8 hex digits or 4 bytes) -> 4 bytes."""
    if isinstance(value, bytes):
        if len(value) != 4:
            raise ConfigError("profile_id: expected 4 bytes")
        return value
    if not isinstance(value, str):
        raise ConfigError("profile_id: expected 8 hex digits in a string")
    text = compact_hex(value)
    if len(text) != 8 or any(ch not in "0123456789abcdefABCDEF" for ch in text):
        raise ConfigError(
            "profile_id: expected 8 hex digits (VendorID + VendorProfileID), got %r" % value
        )
    return bytes.fromhex(text)


def _hex_field(value):
    return compact_hex(value) if isinstance(value, str) else value


def sensor_config(base, dev_eui, join_eui, app_key):
    """Validate a sensor configuration (base: dict from a TOML file, or None for a minimal one)
    with this identity; returns the devconfig.Config. ConfigError names the field."""
    raw = dict(_MINIMAL_SENSOR if base is None else base)
    if raw.get("image", "sensor") != "sensor":
        raise ConfigError("image: provisioning is for sensor images, got %r" % raw.get("image"))
    raw.update(dev_eui=_hex_field(dev_eui), join_eui=_hex_field(join_eui))
    raw["app_key"] = _hex_field(app_key)
    config = devconfig.validate(raw)
    if config["dev_eui"] in (bytes(8), b"\xff" * 8):
        raise ConfigError("dev_eui: %s is not a usable DevEUI" % config["dev_eui"].hex().upper())
    if config["app_key"] == bytes(16):
        raise ConfigError("app_key: all zeros is not a key")
    return config


def checked_dev_eui(value):
    """A DevEUI (hex text or bytes) checked by devconfig on its own -> 8 bytes."""
    return sensor_config(None, value, DEFAULT_JOIN_EUI, b"\x01" * 16)["dev_eui"]


def checked_join_eui(value):
    """A JoinEUI (hex text or bytes) checked by devconfig on its own -> 8 bytes."""
    return sensor_config(None, b"\x02" + bytes(7), value, b"\x01" * 16)["join_eui"]


def make_credentials(name, dev_eui, join_eui, app_key, profile_id=DEFAULT_PROFILE_ID, base=None):
    """Checked Credentials from hex strings or bytes (see sensor_config for `base`)."""
    config = sensor_config(base, dev_eui, join_eui, app_key)
    return Credentials(
        check_name(name),
        config["dev_eui"],
        config["join_eui"],
        config["app_key"],
        checked_profile_id(profile_id),
    )


def merge_into_config(config, creds):
    """A copy of a sensor configuration dict (as read from TOML) with this identity in it."""
    merged = dict(config)
    merged["dev_eui"] = creds.dev_eui.hex().upper()
    merged["join_eui"] = creds.join_eui.hex().upper()
    merged["app_key"] = creds.app_key.hex().upper()
    return merged


# ---------------------------------------------------------------- credentials files


def _toml_value(value, field):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{field}: expected a finite number")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return "[" + ", ".join(_toml_value(v, field) for v in value) + "]"
    raise ConfigError(f"{field}: cannot be written as a TOML value")


def config_text(config, creds, source=None):
    """A device configuration (dict as read from a sensor TOML, identity merged in) as TOML text:
    top-level keys, then tables, then arrays of tables; None values are left out."""
    merged = merge_into_config(config, creds)
    lines = [
        "# openenergy sensor configuration with credentials: SECRET (app_key). Mode 0600.",
        "# Written by `openenergy provision` for %s%s; flash it with `openenergy flash`."
        % (creds.name, f" from {source}" if source else ""),
    ]
    tables, arrays = [], []
    for key, value in merged.items():
        if value is None:
            continue
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value, key)}")
    for key, table in tables:
        lines += ["", f"[{key}]"]
        lines += [
            f"{k} = {_toml_value(v, f'{key}.{k}')}" for k, v in table.items() if v is not None
        ]
    for key, items in arrays:
        for i, table in enumerate(items):
            lines += ["", f"[[{key}]]"]
            lines += [
                f"{k} = {_toml_value(v, f'{key}[{i}].{k}')}"
                for k, v in table.items()
                if v is not None
            ]
    text = "\n".join(lines) + "\n"
    if tomllib.loads(text) != {k: v for k, v in merged.items() if v is not None}:
        raise ConfigError("config: cannot be written back as TOML unchanged (nested tables?)")
    return text


def _toml_string(value):
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def credentials_text(creds, when=None):
    """The credentials file's text (TOML)."""
    when = when or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        "# openenergy credentials: SECRET (app_key). Keep this file private (mode 0600).",
        f"# Written by `openenergy provision` on {when}.",
        "# Use it with `openenergy register` and `openenergy flash --config`.",
        f"name = {_toml_string(creds.name)}",
        f'dev_eui = "{creds.dev_eui.hex().upper()}"',
        f'join_eui = "{creds.join_eui.hex().upper()}"',
        f'app_key = "{creds.app_key.hex().upper()}"',
        f'profile_id = "{creds.profile_id.hex().upper()}"',
        f'qr = "{creds.qr_text}"',
    ]
    return "\n".join(lines) + "\n"


def load_credentials(path):
    """Read and check a credentials file -> Credentials (ConfigError naming the field)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            "credentials: invalid TOML in %s: %s" % (path, str(exc).splitlines()[0])
        ) from None
    except OSError as exc:
        raise ConfigError(f"credentials: cannot read {path} ({exc.strerror})") from None
    unknown = sorted(set(raw) - set(CREDENTIALS_FIELDS) - {"qr"})
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key in credentials file {path}")
    try:
        return make_credentials(
            raw.get("name"),
            raw.get("dev_eui"),
            raw.get("join_eui"),
            raw.get("app_key"),
            raw.get("profile_id", "00000000"),
        )
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in {path})") from None


def is_private(path):
    """True when only the owner may read the file (no group/other permission bits)."""
    return stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0


def write_atomic(path, text, mode=0o600):
    """Write text to path through a temporary file in the same folder, then rename it over the
    target: a reader sees the old file or the new one, never half of one. Parent folders are
    created (mode 0700 for a private file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if mode == 0o600 else 0o755)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def find_dev_eui(out_dir, dev_eui, skip=None):
    """(name, path) of another credentials file in out_dir holding this DevEUI, or None."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return None
    for path in sorted(out_dir.glob("*.toml")):
        if skip is not None and path.resolve() == Path(skip).resolve():
            continue
        try:
            other = load_credentials(path)
        except ConfigError:
            continue
        if other.dev_eui == dev_eui:
            return other.name, path
    return None


@dataclass
class Request:
    """What the technician asked for one device; None fields are taken from an existing
    credentials file of the same name, or generated."""

    name: str = None
    dev_eui: object = None  # hex text or bytes
    dev_eui_source: str = "given"
    join_eui: object = None
    app_key: object = None
    profile_id: object = None


@dataclass
class Outcome:
    creds: Credentials
    path: Path
    action: str  # created | unchanged | replaced
    dev_eui_source: str
    app_key_source: str  # given | generated | kept
    config_path: Path = None  # config/NAME.toml, written when a base configuration was given


def provision(
    request,
    out_dir,
    force=False,
    base=None,
    default_join_eui=DEFAULT_JOIN_EUI,
    default_profile_id=DEFAULT_PROFILE_ID,
    token_bytes=secrets.token_bytes,
    base_source=None,
):
    """Provision one device: resolve, validate, write out_dir/<name>.toml. Returns an Outcome.

    Values the request leaves out (None) come from an existing credentials file of the same
    name, else from the defaults or the generators; given values that differ from the file
    replace it only with `force`. To start a device over, delete its file. With `base` (a
    sensor configuration dict, read from the file named `base_source`), the full device
    configuration with this identity is also written to out_dir/config/<name>.toml (0600).

    Raises ConfigError (a bad value, naming the field) or ProvisionError (a conflict with
    what is already provisioned; never a key in the message).
    """
    out_dir = Path(out_dir)
    dev_eui, app_key = request.dev_eui, request.app_key
    dev_source = request.dev_eui_source
    key_source = "given" if app_key is not None else None
    name = request.name
    if name is None:
        # Without a name the device is named after its DevEUI (lowercase hex).
        if dev_eui is None:
            dev_eui, dev_source = generate_dev_eui(token_bytes), "generated"
        name = checked_dev_eui(dev_eui).hex()
    path = out_dir / (check_name(name) + ".toml")
    existing = None
    if path.exists():
        try:
            existing = load_credentials(path)
        except ConfigError as exc:
            if not force:
                raise ProvisionError(
                    f"{path} exists but cannot be used ({exc}): fix it or use --force"
                ) from None
    keep = existing is not None
    if keep and dev_eui is None:
        dev_eui, dev_source = existing.dev_eui, "kept"
    if keep and app_key is None:
        app_key, key_source = existing.app_key, "kept"
    if dev_eui is None:
        dev_eui, dev_source = generate_dev_eui(token_bytes), "generated"
    if app_key is None:
        app_key, key_source = generate_app_key(token_bytes), "generated"
    join_eui = request.join_eui
    if join_eui is None:
        join_eui = existing.join_eui if keep else default_join_eui
    profile_id = request.profile_id
    if profile_id is None:
        profile_id = existing.profile_id if keep else default_profile_id
    config = sensor_config(base, dev_eui, join_eui, app_key)
    creds = Credentials(
        name,
        config["dev_eui"],
        config["join_eui"],
        config["app_key"],
        checked_profile_id(profile_id),
    )
    action = "created"
    if existing is not None:
        differences = creds.differences(existing)
        if not differences:
            action = "unchanged"
        elif not force:
            raise ProvisionError(
                "%s already holds other credentials for %s (%s differ%s): use --force to "
                "replace them"
                % (path, creds.name, ", ".join(differences), "s" if len(differences) == 1 else "")
            )
        else:
            action = "replaced"
    elif path.exists() and force:
        action = "replaced"
    clash = find_dev_eui(out_dir, creds.dev_eui, skip=path)
    if clash is not None:
        raise ProvisionError(
            "dev_eui: %s is already provisioned as %s (%s)"
            % (creds.dev_eui.hex().upper(), clash[0], clash[1])
        )
    config_path = None
    if base is not None:
        config_path = path.parent / "config" / (creds.name + ".toml")
        text = config_text(base, creds, base_source)
    if action != "unchanged" or not is_private(path):
        write_atomic(path, credentials_text(creds))
    if config_path is not None:
        write_atomic(config_path, text)
    return Outcome(creds, path, action, dev_source, key_source, config_path)


# ---------------------------------------------------------------- CSV batches


@dataclass
class RowResult:
    line: int
    name: str
    status: str  # done | skipped | error
    message: str
    outcome: Outcome = None


def read_csv(path):
    """[(line number, {column: value})] from a provisioning CSV; ProvisionError on a bad header."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ProvisionError(f"--csv: cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ProvisionError(f"--csv: {path} is not UTF-8 text") from None
    lines = text.splitlines()
    header_index = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), None
    )
    if header_index is None:
        raise ProvisionError(f"--csv: {path} is empty (expected a header: {','.join(CSV_COLUMNS)})")
    header_line = lines[header_index]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines[header_index:])), delimiter=delimiter)
    header = [column.strip().lower() for column in next(reader)]
    for column in header:
        if column not in CSV_COLUMNS:
            raise ProvisionError(
                "--csv: unknown column %r on line %d (expected %s)"
                % (column, header_index + 1, ", ".join(CSV_COLUMNS))
            )
    if "name" not in header:
        raise ProvisionError(f"--csv: the header needs a name column (line {header_index + 1})")
    if len(set(header)) != len(header):
        raise ProvisionError(f"--csv: a column is named twice on line {header_index + 1}")
    rows = []
    for offset, values in enumerate(reader, start=header_index + 2):
        if not any(v.strip() for v in values) or values[0].startswith("#"):
            continue
        if len(values) > len(header):
            rows.append((offset, {"__error__": "more values than columns"}))
            continue
        rows.append((offset, {c: v.strip() for c, v in zip(header, values, strict=False)}))
    return rows


def state_path(csv_path):
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.name + STATE_SUFFIX)


def load_state(path):
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        return {"version": 1, "done": {}}
    except (OSError, ValueError):
        raise ProvisionError(f"{path}: unreadable state file (delete it to start over)") from None
    if not isinstance(state, dict) or not isinstance(state.get("done"), dict):
        raise ProvisionError(f"{path}: unreadable state file (delete it to start over)")
    return state


def run_batch(
    csv_path,
    out_dir=None,
    force=False,
    base=None,
    join_eui=None,
    profile_id=None,
    qr_png=True,
    on_row=None,
    token_bytes=secrets.token_bytes,
    base_source=None,
):
    """Provision every row of a CSV; returns [RowResult]. on_row(result) is called as each
    row finishes. Rows already recorded in the state file and still matching their
    credentials file are skipped."""
    csv_path = Path(csv_path)
    out_dir = Path(out_dir) if out_dir is not None else csv_path.parent / "credentials"
    rows = read_csv(csv_path)
    spath = state_path(csv_path)
    state = load_state(spath)
    results = []
    seen = {}
    for line, row in rows:
        name = row.get("name", "")
        try:
            if "__error__" in row:
                raise ProvisionError(row["__error__"])
            check_name(name)
            if name in seen:
                raise ProvisionError(f"name: {name!r} is already used on line {seen[name]}")
            seen[name] = line
            request = Request(
                name=name,
                dev_eui=row.get("dev_eui") or None,
                join_eui=row.get("join_eui") or join_eui,
                app_key=row.get("app_key") or None,
                profile_id=row.get("profile_id") or profile_id,
            )
            outcome = provision(
                request, out_dir, force, base, token_bytes=token_bytes, base_source=base_source
            )
            if qr_png:
                png = outcome.path.with_suffix(".png")
                if outcome.action != "unchanged" or not png.exists():
                    qr.save_png(outcome.creds.qr_text, png)
            recorded = state["done"].get(name)
            dev_eui = outcome.creds.dev_eui.hex().upper()
            if outcome.action == "unchanged" and recorded and recorded.get("dev_eui") == dev_eui:
                result = RowResult(line, name, "skipped", "done in an earlier run", outcome)
            else:
                message = {
                    "created": "credentials written",
                    "replaced": "credentials replaced (--force)",
                    "unchanged": "credentials already there",
                }[outcome.action]
                result = RowResult(line, name, "done", message, outcome)
            state["done"][name] = {
                "line": line,
                "dev_eui": dev_eui,
                "file": str(outcome.path),
                "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            write_atomic(spath, json.dumps(state, indent=1, sort_keys=True) + "\n", mode=0o644)
        except (OpenEnergyError, CliError) as exc:
            result = RowResult(line, name, "error", str(exc))
        except OSError as exc:
            result = RowResult(line, name, "error", f"{exc.filename or ''}: {exc.strerror}")
        results.append(result)
        if on_row is not None:
            on_row(result)
    return results
