"""A scratch folder for a test process, removed when the process exits (the helpers that
write one spec per case used to leave a folder in /tmp on every run)."""
from __future__ import annotations

import atexit
import shutil
import tempfile


def scratch_dir(prefix: str) -> str:
    """A new temporary folder, deleted with everything in it at interpreter exit."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, True)
    return path
