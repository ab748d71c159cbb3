"""Firmware images: what goes onto a board's /flash, from the image's manifest.

An image is a folder (``firmware/sensor``, ``firmware/nanogateway`` or any path) holding
``manifest.json``::

    {"files": ["boot.py", "main.py", "forwarder.py"], "lib": ["semtech", "eu868"]}

``files`` are the image's own files (copied to /flash), ``lib`` the lib modules it needs (copied
to /flash/lib). Flashing and the simulator both read the manifest through this module, so a board
in the simulator holds exactly what a real board would.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = ROOT / "firmware"
LIB_DIR = ROOT / "lib"


@dataclass(frozen=True)
class Image:
    """A resolved image: its name, folder, and the (host path, board path) pairs to install."""

    name: str
    folder: Path
    entries: tuple

    def board_files(self):
        """Mapping board path ('/flash/main.py', '/flash/lib/lorawan.py') -> host path."""
        return dict((board, host) for host, board in self.entries)


def resolve(image):
    """Return the Image for a name under firmware/ ('sensor', 'nanogateway') or a folder path."""
    folder = Path(image)
    if not folder.is_dir():
        folder = FIRMWARE_DIR / str(image)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError(
            "image: expected 'sensor', 'nanogateway' or a folder with a manifest.json, got %r"
            % str(image)
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise ConfigError("image: %s is not valid JSON (%s)" % (manifest_path, exc)) from None
    files = manifest.get("files")
    libs = manifest.get("lib", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ConfigError("image: %s 'files' must be a list of file names" % manifest_path)
    if not isinstance(libs, list) or not all(isinstance(m, str) for m in libs):
        raise ConfigError("image: %s 'lib' must be a list of lib module names" % manifest_path)
    entries = []
    for name in files:
        host = folder / name
        if not host.is_file():
            raise ConfigError("image: %s lists %r, which does not exist" % (manifest_path, name))
        entries.append((host, "/flash/" + name))
    for module in libs:
        host = LIB_DIR / (module + ".py")
        if not host.is_file():
            raise ConfigError(
                "image: %s needs lib module %r, which does not exist" % (manifest_path, module)
            )
        entries.append((host, "/flash/lib/" + module + ".py"))
    return Image(name=folder.name, folder=folder, entries=tuple(entries))
