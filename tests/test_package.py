"""The package as a whole: importing it reaches no network."""

import os
import subprocess
import sys

# albumentations' import-time update check builds its opener with urllib.request.build_opener
PROBE = """
import urllib.request
calls = []
urllib.request.build_opener = lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(OSError())
import genseg_cli.data.images, genseg_cli.data.mask_augment
assert not calls, "an import asked the network"
"""


def test_importing_the_data_layer_reaches_no_network():
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
