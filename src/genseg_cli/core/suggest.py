"""Did-you-mean hints for misspelt keys, arguments, datasets and config choices."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option most like `word` (a whole dotted key, or failing that its last part), or None.

    >>> closest("n_labled", ["n_labeled", "seed"])
    'n_labeled'
    >>> closest("lr", ["optim.optimizer.lr", "seed"])
    'optim.optimizer.lr'
    """
    options = sorted(set(options))
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if match:
        return match[0]
    # a key given without its group (lr for optim.optimizer.lr): compare the last parts
    leaf = word.rsplit(".", 1)[-1]
    by_leaf = {o.rsplit(".", 1)[-1]: o for o in options}
    match = difflib.get_close_matches(leaf, sorted(by_leaf), n=1, cutoff=0.8)
    return by_leaf[match[0]] if match else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest option, or '' when none is close.

    >>> "unknown key 'trainer.step'" + did_you_mean("trainer.step", ["trainer.steps"])
    "unknown key 'trainer.step' (did you mean trainer.steps?)"
    """
    match = closest(word, options)
    return f" (did you mean {match}?)" if match else ""
