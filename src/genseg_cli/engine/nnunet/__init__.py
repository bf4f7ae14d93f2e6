"""method=nnunet: nnU-Net v2 (the nnunetv2 package) trained on a run's own split, scored by
genseg. See docs/nnunet.md."""
