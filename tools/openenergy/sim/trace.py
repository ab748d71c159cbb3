"""The simulation trace: one JSON object per line for every board event, datagram and radio frame.

Each record starts with `t` (virtual time, µs) and `kind`; the other fields are the emitter's.
bytes values are written as lowercase hex. Key order is the emitter's, so two runs with the same
seed and scenario write byte-identical files. A disabled trace (no file, no capture) costs one
attribute test per event: emitters on hot paths check `trace.enabled` before building fields.
"""

import json


def _jsonable(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class Trace:
    """JSON-lines event log on the virtual clock.

    path: a file to write (None: no file); capture=True keeps the records in `records` (tests).
    `clock` is anything with now_us() (the world's scheduler), set by the world.
    """

    def __init__(self, path=None, capture=False, clock=None):
        self.clock = clock
        self.records = [] if capture else None
        self._file = open(path, "w", encoding="utf-8") if path is not None else None  # noqa: SIM115
        self.enabled = self._file is not None or capture
        self.counts = {}

    def emit(self, kind, **fields):
        """Record one event of `kind` at the current virtual time."""
        if not self.enabled:
            return
        record = {"t": self.clock.now_us() if self.clock is not None else 0, "kind": kind}
        for key, value in fields.items():
            record[key] = _jsonable(value)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.records is not None:
            self.records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record, separators=(",", ":")))
            self._file.write("\n")

    def of_kind(self, kind):
        """Captured records of one kind (capture=True only)."""
        return [r for r in self.records or () if r["kind"] == kind]

    def flush(self):
        if self._file is not None:
            self._file.flush()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        self.enabled = self.records is not None


class NullTrace(Trace):
    """A trace that records nothing (the default)."""

    def __init__(self, clock=None):
        super().__init__(None, False, clock)
