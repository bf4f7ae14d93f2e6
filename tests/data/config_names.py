"""Dataset names as the config tree declares them: one conf/dataset/<name>.yaml per dataset.

Tests read the names here instead of keeping their own list, so adding a dataset means adding
its yaml (and, for a downloadable one, its converter), not editing tests.
"""

from __future__ import annotations

from genseg_cli.core.config import conf_dir

# The user's own images/ + masks/ folder: registered like a dataset, but it has no official
# download, so it has no converter and `dataset_names()` leaves it out.
GENERIC = "folder"
CONFIGURED = sorted(path.stem for path in (conf_dir() / "dataset").glob("*.yaml"))
DATASETS = [name for name in CONFIGURED if name != GENERIC]
