"""genseg: GenSeg experiments for medical image segmentation with ultra-few labels."""

import os
import warnings

__version__ = "0.1.0"

# albumentations asks PyPI for its latest version when imported, unless told not to: nothing of
# genseg reaches the network at run time (a GPU host without a network showed the failed lookup)
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# timm (imported by segmentation-models-pytorch) calls torch.jit.interface, which torch deprecates:
# two lines of warning before every command's output that no genseg user can act on
warnings.filterwarnings(
    "ignore", message=r"`torch\.jit\.interface` is deprecated", category=FutureWarning
)
