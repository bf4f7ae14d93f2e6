"""The batch streams a training method can ask the loop for, named in one vocabulary.

A method lists the streams it needs (`Method.streams`); the loop builds exactly those and hands
each step one batch dict holding all of them. Streams that are not asked for cost nothing.
"""

from __future__ import annotations

LABELLED = "labelled"  # real labelled pairs ("image", "mask"), augmented by the augment group
LABELLED_PLAIN = "labelled_plain"  # the same pairs as they are (the paper's vanilla baseline)
NEW_MASKS = "new_masks"  # with each labelled pair, a new mask ("new_mask") made by mask_augment
UNLABELED = "unlabeled"  # pool images without labels ("unlabeled_image"), for semi-supervision
# the labelled pairs again, for a generator that learns from them during training, augmented
# without the transforms it skips ("generator_image", "generator_mask"; generator.skip_augment)
GENERATOR_PAIRS = "generator_pairs"
STREAMS = (LABELLED, LABELLED_PLAIN, NEW_MASKS, UNLABELED, GENERATOR_PAIRS)


def check_streams(streams: tuple[str, ...]) -> tuple[str, ...]:
    """`streams` if they are known and ask for one kind of labelled pairs, else ValueError."""
    unknown = sorted(set(streams) - set(STREAMS))
    if unknown:
        raise ValueError(f"unknown batch streams {unknown}; known: {list(STREAMS)}")
    if (LABELLED in streams) == (LABELLED_PLAIN in streams):
        raise ValueError(f"streams {streams} must hold exactly one of {LABELLED}, {LABELLED_PLAIN}")
    return streams
