"""genseg: GenSeg experiments for medical image segmentation with ultra-few labels."""

__version__ = "0.1.0"
