"""`genseg data prepare NAME --src PATH`: convert a dataset's official download to genseg's layout.

2D sets become ``images/<id>.png|jpg`` + ``masks/<id>.png`` (0/255) and, where the source
defines one, ``split.csv``; 3D MSD tasks keep their NIfTI files under ``imagesTr``/``labelsTr``.

Layout of the package, lowest first:

- :mod:`.sources`: finding the files of a download and pairing images with their masks;
- :mod:`.images`: reading, binarising and resizing source images and masks, writing 2D pairs;
- :mod:`.split_files`: ``split.csv`` and the split lists some downloads ship;
- :mod:`.job`: one conversion request (:class:`ConversionJob`) and its :class:`PrepareResult`;
- one converter module per family of sources: :mod:`.skin`, :mod:`.chest`, :mod:`.endoscopy`,
  :mod:`.ultrasound`, :mod:`.retina` and :mod:`.msd` (3D volumes);
- :mod:`.converters`: the ``CONVERTERS`` table, dataset name -> converter;
- :mod:`.pipeline`: :func:`prepare_dataset`, which checks the request, unpacks an archive,
  converts into ``<dst>.partial`` and publishes the result in place.

A new dataset needs one function ``convert_<name>(src, dst, max_size) -> PrepareResult`` in
the module of its family, registered in ``CONVERTERS``, and a line in
``job.EXPECTED_LAYOUTS`` describing the layout it looks for (quoted when ``src`` does not
match it).

>>> prepare_dataset("kvasir", src=Path("downloads/kvasir-seg"), dst=Path("data/kvasir"))
"""

from genseg_cli.data.prepare.converters import CONVERTERS, Converter
from genseg_cli.data.prepare.job import PrepareResult
from genseg_cli.data.prepare.pipeline import is_archive, prepare_dataset, unpacked

__all__ = ["CONVERTERS", "Converter", "PrepareResult", "is_archive", "prepare_dataset", "unpacked"]
