"""Pre-flight for `backbone.encoder_weights`: pretrained encoder weights come from the Hugging
Face hub when the network is built, so a machine without the hub and without a cached copy is
told so before a run folder exists, instead of retrying downloads inside the run.
"""

from __future__ import annotations

import os
import socket

from omegaconf import DictConfig

from genseg_cli.core.errors import GensegError

HUB_HOST = "huggingface.co"


def _smp_weights(encoder: str, weights: str) -> tuple[str, str] | None:
    """(repo id, revision) of an smp encoder's pretrained weights, None when smp does not list
    them (timm encoders, other networks)."""
    try:
        from segmentation_models_pytorch.encoders import encoders
    except ImportError:  # pragma: no cover
        return None
    settings = encoders.get(encoder, {}).get("pretrained_settings", {}).get(weights)
    if not settings or "repo_id" not in settings:
        return None
    return settings["repo_id"], settings.get("revision")


def _cached(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model.safetensors", revision=revision)
    return isinstance(found, str)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub answers (HF_HUB_OFFLINE=1 says it does not, without asking)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def check_encoder_weights(backbone: DictConfig) -> None:
    """Refuse `backbone.encoder_weights` that can neither be read from the local cache nor
    fetched now (offline, or HF_HUB_OFFLINE=1)."""
    weights = backbone.get("encoder_weights")
    if not weights:
        return
    model = backbone.get("model")
    encoder = model.get("encoder_name") if isinstance(model, DictConfig) else None
    source = _smp_weights(str(encoder), str(weights)) if encoder else None
    if source is not None and _cached(*source):
        return
    if hub_reachable():
        return
    where = f" ({source[0]})" if source else ""
    raise GensegError(
        f"backbone.encoder_weights={weights}: the pretrained encoder{where} is not in the local "
        f"cache and {HUB_HOST} cannot be reached; connect once to fetch it, or train with "
        "backbone.encoder_weights=null (random start) or backbone.weights=PATH (a local file)"
    )
