"""One conversion request and its result, shared by every converter.

:class:`ConversionJob` writes the pairs a converter found (and split.csv) and words the error
for a source that does not match the layout :data:`EXPECTED_LAYOUTS` describes;
:class:`PrepareResult` is what a conversion reports back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genseg_cli.core.errors import GensegError
from genseg_cli.data.prepare.images import write_pairs
from genseg_cli.data.prepare.sources import SourcePair, combine_groups
from genseg_cli.data.prepare.split_files import write_split


@dataclass
class PrepareResult:
    """What a conversion produced: pairs written, whether split.csv exists, what was skipped."""

    name: str
    dst: Path
    n_pairs: int
    has_split: bool
    warnings: list[str] = field(default_factory=list)


_SKIN = "<id>.jpg next to <id>_contour.png (any folder below src), or images/ + masks/<id>.png"
_MSD = "{task}/imagesTr/*.nii.gz and {task}/labelsTr/*.nii.gz ({task} may be src itself)"
# The layout each converter looks for, quoted in the error when src does not match it.
EXPECTED_LAYOUTS = {
    "isic": "ISIC2018_Task1-2_Training_Input/*.jpg and "
    "ISIC2018_Task1_Training_GroundTruth/*_segmentation.png",
    "ph2": "'PH2 Dataset images/IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp' and "
    "'.../IMDxxx_lesion/IMDxxx_lesion.bmp' (in src or one folder below)",
    "dermis": _SKIN,
    "dermquest": _SKIN,
    "jsrt": "All247images/*.IMG with SCR masks '.../masks/left lung/*.gif' and "
    "'.../masks/right lung/*.gif', or images/*.png with masks/*.png",
    "nlm_mc": "CXR_png/MCUCXR_*.png with ManualMask/leftMask/*.png and ManualMask/rightMask/*.png",
    "nlm_sz": "CXR_png/CHNCXR_*.png with mask/CHNCXR_*_mask.png",
    "kvasir": "Kvasir-SEG/images/<id>.jpg and Kvasir-SEG/masks/<id>.jpg "
    "(Kvasir-SEG may be src itself), optional train.txt/val.txt",
    "cvc_clinicdb": "Original/<n>.tif and 'Ground Truth/<n>.tif' "
    "(or PNG/Original and 'PNG/Ground Truth')",
    "busi": "Dataset_BUSI_with_GT/<class>/'<class> (<n>).png' with '<class> (<n>)_mask.png' "
    "(and _mask_1.png, ...) for class in benign, malignant, normal",
    "fuseg": "train/images/<id>.png with train/labels/<id>.png (and validation/images, labels)",
    "fetreg": "Video<nnn>/images/*.png with Video<nnn>/labels/*.png (labels 0..3, 1 = vessel)",
    "icfluid": "image/<id>.png with mask/<id>.png (or images/ with masks/)",
    "hippocampus": _MSD.format(task="Task04_Hippocampus"),
    "liver": _MSD.format(task="Task03_Liver"),
}


@dataclass(frozen=True)
class ConversionJob:
    """One conversion request; knows how to report a source that does not match its layout."""

    name: str
    src: Path
    dst: Path
    max_size: int | None

    def layout_error(self, problem: str = "no {name} dataset found") -> GensegError:
        expected = EXPECTED_LAYOUTS[self.name]
        return GensegError(f"{problem.format(name=self.name)} in {self.src}: expected {expected}")

    def finish(
        self,
        pairs: list[SourcePair],
        warnings: list[str],
        split: dict[str, str] | None = None,
        **write_options: Any,
    ) -> PrepareResult:
        """Write the pairs (and split) of a 2D set; finding no pair at all is an error."""
        if not pairs:
            raise self.layout_error("no image with a matching mask")
        written, skipped = write_pairs(pairs, self.dst, max_size=self.max_size, **write_options)
        has_split = write_split(self.dst, split, written) if split else False
        return PrepareResult(self.name, self.dst, len(written), has_split, warnings + skipped)

    def finish_groups(
        self,
        groups: Sequence[tuple[str, list[SourcePair]]],
        warnings: list[str],
        **write_options: Any,
    ) -> PrepareResult:
        """Like :meth:`finish` for pairs grouped by split; a single split writes no split.csv."""
        pairs, split, renamed = combine_groups(groups)
        several = len({name for name, _ in groups}) > 1
        return self.finish(pairs, warnings + renamed, split if several else None, **write_options)
