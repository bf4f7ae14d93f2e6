"""The table of converters: dataset name -> function turning its download into the layout.

A converter takes (src, dst, max_size, **options), writes the pairs (and split.csv where the
source defines a split) into dst and returns a :class:`PrepareResult`;
:func:`genseg_cli.data.prepare.prepare_dataset` runs it into a temporary folder, unpacks
archives first and publishes the result atomically.

>>> CONVERTERS["kvasir"](Path("downloads/kvasir-seg"), Path("data/kvasir.partial"), None)
"""

from __future__ import annotations

from collections.abc import Callable

from genseg_cli.data.prepare.chest import convert_jsrt, convert_nlm_mc, convert_nlm_sz
from genseg_cli.data.prepare.endoscopy import convert_cvc_clinicdb, convert_fetreg, convert_kvasir
from genseg_cli.data.prepare.job import PrepareResult
from genseg_cli.data.prepare.msd import convert_hippocampus, convert_liver
from genseg_cli.data.prepare.retina import convert_icfluid
from genseg_cli.data.prepare.skin import (
    convert_dermis,
    convert_dermquest,
    convert_fuseg,
    convert_isic,
    convert_ph2,
)
from genseg_cli.data.prepare.ultrasound import convert_busi

Converter = Callable[..., PrepareResult]


CONVERTERS: dict[str, Converter] = {
    "isic": convert_isic,
    "ph2": convert_ph2,
    "dermis": convert_dermis,
    "dermquest": convert_dermquest,
    "jsrt": convert_jsrt,
    "nlm_mc": convert_nlm_mc,
    "nlm_sz": convert_nlm_sz,
    "kvasir": convert_kvasir,
    "cvc_clinicdb": convert_cvc_clinicdb,
    "busi": convert_busi,
    "buid": convert_busi,
    "fuseg": convert_fuseg,
    "fetreg": convert_fetreg,
    "icfluid": convert_icfluid,
    "hippocampus": convert_hippocampus,
    "liver": convert_liver,
}
