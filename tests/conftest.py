"""Test-suite settings. Under CI (ARCHVIZ_CI=1, set by .ci/run) hypothesis runs
derandomized: the same examples every run, so a run is reproducible; a deeper random
search runs locally (and with ARCHVIZ_HYPOTHESIS_EXAMPLES / the tests' own switches)."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("ARCHVIZ_CI"):
    settings.load_profile("ci")
