"""pytest set-up: the portable lib tests import testkit from tests/lib."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "lib"))
# lib/ first too: a module added since the editable install is still found.
sys.path.insert(0, str(Path(__file__).parent.parent / "lib"))
