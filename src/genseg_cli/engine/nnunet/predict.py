"""nnU-Net's predictor on genseg's samples, in memory, scored by genseg's own evaluation.

Each image goes to nnUNetPredictor as the array nnU-Net's reader would have made of its file
(2D: C x 1 x H x W; 3D: 1 x D x H x W with the volume's spacing), so no test or out-of-domain
image is ever written into nnU-Net's folders. nnU-Net resamples its probabilities back to the
image's own shape; genseg scores them there (evaluation.resolution=original) or at the model
size (model), with the same thresholds and metrics as every run.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from genseg_cli.core.errors import GensegError
from genseg_cli.core.progress import item_progress
from genseg_cli.core.runtime import Runtime
from genseg_cli.data.samples import Sample
from genseg_cli.data.spec import DataSpec
from genseg_cli.engine.nnunet.finished import BEST, TRAINER
from genseg_cli.engine.nnunet.layout import Folders, nnunet_environment
from genseg_cli.engine.nnunet.method import NnUNet
from genseg_cli.evaluation.evaluate import score_pairs, to_size

EPS = 1e-6


def nnunet_input(sample: Sample, dims: int) -> tuple[np.ndarray, dict]:
    """The image and properties nnU-Net's reader gives for this sample's file."""
    if dims == 2:
        image = sample.image if sample.image.ndim == 3 else sample.image[..., None]
        return image.transpose(2, 0, 1)[:, None].astype(np.float32), {"spacing": [999.0, 1.0, 1.0]}
    spacing = list(sample.spacing or (1.0,) * sample.image.ndim)
    return sample.image[None].astype(np.float32), {"spacing": spacing}


def as_logits(probabilities: np.ndarray, dims: int) -> torch.Tensor:
    """nnU-Net's softmax probabilities as genseg logits: a binary task's log-odds of the
    foreground (one channel; sigmoid gives back the probability), else log probabilities."""
    probs = torch.from_numpy(np.asarray(probabilities, dtype=np.float32))
    if dims == 2:
        probs = probs[:, 0]  # nnU-Net's 2D images have a depth of one
    probs = probs.clamp(EPS, 1.0)
    if probs.shape[0] == 2:
        return (probs[1].log() - probs[0].log())[None]
    return probs.log()


class Prediction:
    """A trained nnU-Net network behind nnUNetPredictor: the trainer's own after training
    (`of_trainer`), or a finished run's checkpoint (`of_checkpoint`)."""

    def __init__(
        self,
        network: torch.nn.Module,
        plans_manager: Any,
        configuration_manager: Any,
        dataset_json: dict,
        mirroring: tuple[int, ...] | None,
        settings: dict,
        spec: DataSpec,
        runtime: Runtime,
    ) -> None:
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        self.spec, self.runtime = spec, runtime
        network = network.eval()
        device = runtime.device
        with contextlib.redirect_stdout(None):  # its CPU notice
            self.predictor = nnUNetPredictor(
                tile_step_size=float(settings["tile_step_size"]),
                use_gaussian=True,
                use_mirroring=bool(settings["tta"]),
                perform_everything_on_device=device.type == "cuda",
                device=device,
                verbose=False,
                verbose_preprocessing=False,
                allow_tqdm=False,
            )
        self.predictor.manual_initialization(
            network,
            plans_manager,
            configuration_manager,
            [{k: v.detach().clone() for k, v in network.state_dict().items()}],
            dataset_json,
            TRAINER,
            mirroring,
        )

    @classmethod
    def of_trainer(cls, trainer: Any, method: NnUNet, use_best: bool) -> Prediction:
        """The trainer's fold 0: its final weights, or checkpoint_best.pth with `use_best`."""
        if use_best:
            kept = torch.load(
                f"{trainer.output_folder}/{BEST}", map_location="cpu", weights_only=False
            )
            trainer.network.load_state_dict(kept["network_weights"])
        trainer.set_deep_supervision_enabled(False)
        return cls(
            trainer.network,
            trainer.plans_manager,
            trainer.configuration_manager,
            trainer.dataset_json,
            trainer.inference_allowed_mirroring_axes,
            method.settings,
            method.spec,
            method.runtime,
        )

    @classmethod
    def of_checkpoint(
        cls, path: Path, folders: Folders, settings: dict, spec: DataSpec, runtime: Runtime
    ) -> Prediction:
        """A finished run's checkpoint (`load_fold`) behind the predictor."""
        # nnunetv2 reads its thread counts from the environment when first imported
        with nnunet_environment(folders, 0, torch.get_num_threads()):
            network, plans, configuration, dataset_json, mirroring = load_fold(path)
            return cls(
                network.to(runtime.device),
                plans,
                configuration,
                dataset_json,
                mirroring,
                settings,
                spec,
                runtime,
            )

    def logits(self, sample: Sample) -> torch.Tensor:
        """genseg logits (classes x the image's own shape) of one sample."""
        image, properties = nnunet_input(sample, self.spec.dims)
        runtime = self.runtime  # on CUDA nnU-Net's predictor uses its own autocast
        with runtime.autocast() if runtime.device.type == "cpu" else contextlib.nullcontext():
            _, probabilities = self.predictor.predict_single_npy_array(
                image, properties, None, None, True
            )
        return as_logits(probabilities, self.spec.dims)

    def score(self, samples: Sequence[Sample], cfg: DictConfig, label: str = "") -> pd.DataFrame:
        """Per-sample scores, as genseg's evaluation gives them for any run."""
        resolution, threshold = cfg.evaluation.resolution, float(cfg.evaluation.threshold)
        frames = []
        with item_progress(bool(cfg.trainer.progress)) as bar:
            task = bar.add_task(f"nnU-Net predicts {label}", total=len(samples))
            for sample in samples:
                logit = self.logits(sample)
                if resolution == "model":
                    logit = to_size(logit, self.spec.spatial)
                frames.append(score_pairs([logit], [sample], self.spec, resolution, threshold))
                bar.update(task, advance=1)
        if not frames:
            return score_pairs([], [], self.spec, resolution, threshold)
        return pd.concat(frames, ignore_index=True)


def load_fold(path: Path) -> tuple:
    """(network, plans, configuration, dataset.json, mirroring axes) of a trained fold's
    checkpoint, with the plans and dataset.json nnU-Net saved beside the fold: the network
    built as nnU-Net's own predictor builds it, less its search for the trainer by name."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    model_dir = path.parent.parent
    try:
        plans = PlansManager(json.loads((model_dir / "plans.json").read_text()))
        dataset_json = json.loads((model_dir / "dataset.json").read_text())
        state = torch.load(path, map_location="cpu", weights_only=False)
        configuration = plans.get_configuration(state["init_args"]["configuration"])
        network = nnUNetTrainer.build_network_architecture(
            plans,
            configuration,
            determine_num_input_channels(plans, configuration, dataset_json),
            plans.get_label_manager(dataset_json).num_segmentation_heads,
            enable_deep_supervision=False,
        )
        network.load_state_dict(state["network_weights"])
    except Exception as err:  # a damaged or foreign fold: one line, not nnU-Net's traceback
        detail = str(err).splitlines()[0][:200] if str(err) else ""
        raise GensegError(
            f"cannot load nnU-Net's model from {path} ({type(err).__name__}: {detail}); "
            "train the run again"
        ) from None
    mirroring = state.get("inference_allowed_mirroring_axes")
    return network, plans, configuration, dataset_json, mirroring
