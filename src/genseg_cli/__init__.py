"""genseg: GenSeg experiments for medical image segmentation with ultra-few labels."""

import os

__version__ = "0.1.0"

# albumentations asks PyPI for its latest version when imported, unless told not to: nothing of
# genseg reaches the network at run time (a GPU host without a network showed the failed lookup)
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
