"""`MVVTONPipeline`: multi-view virtual try-on, `pipe(person, garment_front, garment_back)`."""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers.image_processor import PipelineImageInput, VaeImageProcessor
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents
from diffusers.schedulers import KarrasDiffusionSchedulers
from diffusers.utils import replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from mvvton.constants import GarmentView, PersonView
from mvvton.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    ModelLoadError,
    MVVTONError,
    NonFiniteResultError,
)
from mvvton.image_processor import CLIP_CROP_MARGIN, crop_garment_for_clip
from mvvton.models import GarmentEncoderModel, GarmentImageEncoderModel, MVVTONUNet2DConditionModel, PoseEncoderModel
from mvvton.models.attention_processor import GarmentTokens
from mvvton.models.autoencoder_tiny import TinyAutoencoderModel
from mvvton.models.precision import upcast_normalization_layers
from mvvton.pipelines.input_checks import MAX_WORKING_PIXELS_DEFAULT, CheckedCall, check_call
from mvvton.pipelines.model_folder import check_pipeline_folder
from mvvton.pipelines.pipeline_output import MVVTONPipelineOutput
from mvvton.preprocessing.paste import check_output_size, paste_batch_into_originals
from mvvton.utils.validation import tensor_to_hwc

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from mvvton import MVVTONPipeline, load_image
        >>> pipe = MVVTONPipeline.from_pretrained("path/to/converted/mvg")  # a local folder, never a hub download
        >>> result = pipe(
        ...     load_image("person.jpg"), load_image("tee_front.jpg"), load_image("tee_back.jpg"),
        ...     num_inference_steps=50, generator=torch.Generator().manual_seed(23), return_intermediates=True,
        ... )
        >>> result.images[0].save("tryon.png")
        >>> result.intermediates[0]["routed_garment"]  # 'front' or 'back'
        ```
"""

VIEW_NAMES = ("front", "back")
ARGUMENT_NAMES = {
    "warped_composite": "warped_garment", "inpaint_mask": "mask_image", "person_skeleton": "pose_image",
    "garment_front_skeleton": "garment_front_pose_image", "garment_back_skeleton": "garment_back_pose_image",
}  # fmt: skip
"""Internal column -> the `__call__` argument it comes from (for error messages)."""


def _as_rgb_image(value: Any, name: str) -> PIL.Image.Image | np.ndarray:
    """Any accepted image -> what `VaeImageProcessor` reads unambiguously: float tensors and float arrays keep their
    precision as `(H, W, 3)` float32 in [0, 1]; everything else (PIL of any mode, integer arrays, paths, bytes) becomes
    8-bit RGB PIL (alpha composited on white, grey repeated, 16-bit scaled)."""
    from mvvton.preprocessing.io import load_image

    if isinstance(value, torch.Tensor) and torch.is_floating_point(value):
        value = tensor_to_hwc(value)  # (H, W, C) float in [0, 1]
    elif isinstance(value, torch.Tensor):
        value = value.detach().cpu().permute(1, 2, 0).numpy()  # uint8 / bool (H, W, C)
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        array = value[..., None] if value.ndim == 2 else value
        array = np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[..., :3]
        return np.ascontiguousarray(array, dtype=np.float32)
    return load_image(value, name=name)


def _uniform_batch(values: list, channels: int) -> list:
    """`VaeImageProcessor` needs one type per batch: if any item is a float array, all become float arrays."""
    if all(isinstance(value, PIL.Image.Image) for value in values):
        return values
    converted = []
    for value in values:
        if isinstance(value, PIL.Image.Image):
            value = np.asarray(value, np.float32) / 255
            value = value[..., None] if value.ndim == 2 else value  # (H, W, C)
        converted.append(value if channels == 3 or value.shape[-1] == 1 else value[..., :1])
    return converted


def _as_mask_image(value: Any, name: str) -> PIL.Image.Image | np.ndarray:
    """Any accepted mask -> single channel (0 = keep, 1 = regenerate): float tensors / arrays stay float as
    `(H, W, 1)` float32 in [0, 1] (soft masks keep their precision); anything else becomes 8-bit `L` PIL."""
    from mvvton.preprocessing.io import load_image

    if isinstance(value, torch.Tensor) and torch.is_floating_point(value):
        array = value.detach().cpu().float().numpy()
        array = array.mean(axis=0) if array.ndim == 3 else array  # (C, H, W) -> (H, W)
        return np.ascontiguousarray(array[..., None], dtype=np.float32)
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        array = value[..., : min(3, value.shape[-1])].mean(axis=-1) if value.ndim == 3 else value
        return np.ascontiguousarray(array[..., None], dtype=np.float32)  # (H, W, 1)
    if isinstance(value, (str, os.PathLike, bytes, bytearray)):
        value = load_image(value, name=name)
    if isinstance(value, PIL.Image.Image):
        return value if value.mode == "L" else value.convert("RGB").convert("L")
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu()
        array = (array.float() / 255 if array.dtype == torch.uint8 else array.float()).numpy()
        array = array.mean(axis=0) if array.ndim == 3 else array  # (C, H, W) -> (H, W)
    else:
        array = np.asarray(value)
        if array.ndim == 3:
            array = array[..., : min(3, array.shape[-1])].mean(axis=-1, dtype=np.float64)  # (H, W, C) -> (H, W)
            array = array / 255 if np.asarray(value).dtype == np.uint8 else array
        elif array.dtype == np.uint8:
            array = array / 255
        if np.asarray(value).dtype == np.uint16:
            array = array / 65535
    array = np.asarray(array, dtype=np.float64)
    return PIL.Image.fromarray(np.clip(np.round(array * 255), 0, 255).astype(np.uint8), mode="L")


def _preprocessor_input(value: Any) -> Any:
    """A `(C, H, W)` tensor -> `(H, W, C)` numpy in [0, 1] (the preprocessor reads PIL / numpy / paths / bytes)."""
    return tensor_to_hwc(value) if isinstance(value, torch.Tensor) else value


def _user_stacklevel() -> int:
    """`stacklevel` for `warnings.warn` that points at the caller's line, past mvvton, torch and diffusers frames
    (`torch.no_grad` and `replace_example_docstring` wrap `__call__`)."""
    import contextlib
    import os
    import sys

    import diffusers

    import mvvton

    library_dirs = tuple(
        os.path.dirname(module.__file__) + os.sep for module in (mvvton, torch, diffusers)
    ) + (contextlib.__file__,)
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(library_dirs):
        frame, level = frame.f_back, level + 1
    return level


MISSING_BACK_WARNING = (
    "no `garment_back` given: the front garment is used for the back view too; back and side views will show the "
    "front print. Pass the garment's back photo as `garment_back`."
)


def check_strength(strength: object, name: str = "strength") -> float:
    """`strength` as a float in (0, 1]; raises `InvalidArgumentTypeError` / `InvalidArgumentError` otherwise."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise InvalidArgumentTypeError(f"`{name}` must be a number in (0, 1], got {type(strength).__name__}")
    if not 0.0 < float(strength) <= 1.0:  # also rejects NaN; +-inf fall outside
        raise InvalidArgumentError(
            f"`{name}` must be in (0, 1] (1 = start from the pre-warp noised to t = 999, as released; lower keeps "
            f"more of the pre-warp), got {strength}"
        )
    return float(strength)


class MVVTONPipeline(DiffusionPipeline):
    r"""
    Multi-view virtual try-on with MV-VTON (AAAI 2025): renders a person wearing a garment given its front and back
    product photos.

    Components:
        vae ([`AutoencoderKL`] or [`TinyAutoencoderModel`]): image <-> latent.
        unet ([`MVVTONUNet2DConditionModel`]): 9-channel denoiser with joint (global + local) garment attention.
        garment_encoder ([`GarmentEncoderModel`]): local garment tokens of both views, soft-selected by pose.
        scheduler: any diffusers scheduler; the released sampler is DDIM (50 steps, eta 0).
        pose_encoder ([`PoseEncoderModel`], *optional*): skeleton -> pose tokens (multi-view model only).
        image_encoder ([`GarmentImageEncoderModel`], *optional*): global garment token from a CLIP crop of the
            hard-selected view; without it the unconditional vector is not available and `guidance_scale` must be 1.

    Config:
        garment_timestep: timestep given to the garment encoder (999 in the released sampler).
        default_height / default_width: working size when `height` / `width` are not given.
        default_strength: `strength` when the call does not give one (1.0: the released sampler).
    """

    model_cpu_offload_seq = "image_encoder->pose_encoder->garment_encoder->unet->vae"
    _optional_components = ["pose_encoder", "image_encoder"]
    _callback_tensor_inputs = ["latents", "masked_image_latents", "mask_latents", "global_embeds"]

    def __init__(
        self,
        vae: AutoencoderKL | TinyAutoencoderModel,
        unet: MVVTONUNet2DConditionModel,
        garment_encoder: GarmentEncoderModel,
        scheduler: KarrasDiffusionSchedulers,
        pose_encoder: PoseEncoderModel | None = None,
        image_encoder: GarmentImageEncoderModel | None = None,
        garment_timestep: int = 999,
        default_height: int = 512,
        default_width: int = 384,
        max_working_pixels: int = MAX_WORKING_PIXELS_DEFAULT,
        default_strength: float = 1.0,
    ):
        super().__init__()
        if garment_encoder is not None and garment_encoder.config.use_soft_selection and pose_encoder is None:
            raise InvalidArgumentError(
                "this garment encoder is the multi-view model (use_soft_selection=True) and needs a `pose_encoder`, "
                "got None; load the folder's pose_encoder (or build a frontal pipeline with use_soft_selection=False)"
            )
        self.register_modules(
            vae=vae,
            unet=unet,
            garment_encoder=garment_encoder,
            scheduler=scheduler,
            pose_encoder=pose_encoder,
            image_encoder=image_encoder,
        )
        self.register_to_config(
            garment_timestep=garment_timestep, default_height=default_height, default_width=default_width,
            max_working_pixels=max_working_pixels,
        )  # fmt: skip
        self.register_to_config(default_strength=check_strength(default_strength, "default_strength"))
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1) if vae is not None else 8
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)
        self.mask_processor = VaeImageProcessor(
            vae_scale_factor=self.vae_scale_factor, do_normalize=False, do_convert_grayscale=True
        )
        self.preprocessor = None  # a `mvvton.preprocessing.TryOnPreprocessor`, built on first use

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> MVVTONPipeline:
        """Load a local pipeline folder (nothing is downloaded). The folder is checked first, so a missing, corrupt
        or incomplete folder raises `ModelLoadError` naming the file instead of failing deep inside diffusers."""
        check_pipeline_folder(pretrained_model_name_or_path)
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except MVVTONError:
            raise
        except Exception as error:  # corrupt weights, mismatched shapes, unreadable configs
            raise ModelLoadError(
                f"could not load the pipeline from '{pretrained_model_name_or_path}' ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:300] if str(error) else 'no details'}); the folder is corrupt or "
                "incomplete: re-create it with `mvvton convert`"
            ) from error

    # --------------------------------------------------------------------------------------------------------------
    # properties (per-call state)

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1.0

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    @property
    def uses_pose(self) -> bool:
        return bool(self.garment_encoder.config.use_soft_selection)

    @property
    def num_garment_views(self) -> int:
        return int(self.garment_encoder.config.num_views)

    # --------------------------------------------------------------------------------------------------------------
    # speed and memory

    def set_use_memory_efficient_attention_xformers(self, valid: bool, attention_op: Callable | None = None) -> None:
        """xformers attention per component. Unlike diffusers' default walk through every submodule, this never
        reaches the UNet's `Attention` layers directly, which would swap the joint attention for plain processors
        and drop the garment conditioning. The UNet goes first: it checks that xformers runs on its device."""
        for name in ("unet", "garment_encoder", "vae", "image_encoder", "pose_encoder"):
            module = getattr(self, name, None)
            if isinstance(module, torch.nn.Module) and hasattr(module, "set_use_memory_efficient_attention_xformers"):
                module.set_use_memory_efficient_attention_xformers(valid, attention_op)

    def enable_layerwise_casting(
        self, storage_dtype: torch.dtype = torch.bfloat16, compute_dtype: torch.dtype = torch.float32
    ) -> None:
        """Store every model's weights in `storage_dtype` and run each Linear / Conv in `compute_dtype` (diffusers'
        layerwise casting). With the defaults: half the weight memory, float32 math; on CPUs without native bf16
        kernels this is much faster than running in bfloat16 (docs/benchmarks.md)."""
        upcast_normalization_layers(self.vae)  # norms are skipped below and compute in fp32 from stored weights
        for name in ("unet", "garment_encoder", "vae", "image_encoder", "pose_encoder"):
            module = getattr(self, name, None)
            if module is not None:
                # only norms are skipped: diffusers' default patterns would also skip e.g. CLIP's patch embedding
                # and our `proj_out`, leaving them in the storage dtype while their inputs are in compute dtype
                module.enable_layerwise_casting(
                    storage_dtype=storage_dtype, compute_dtype=compute_dtype, skip_modules_pattern=("norm",)
                )

    @torch.no_grad()
    def warmup(self, height: int | None = None, width: int | None = None) -> None:
        """Run one 1-step call on synthetic inputs at the working size, so that a server's first request does not pay
        the weights' page faults (memory-mapped safetensors) and the kernels' first-call setup."""
        height = height or self.config.default_height
        width = width or self.config.default_width
        gray = torch.full((1, 3, height, width), 0.5)
        mask = torch.zeros(1, 1, height, width)
        mask[..., height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 1.0
        skeletons = {"pose_image": gray, "garment_front_pose_image": gray} if self.uses_pose else {}
        self(
            gray, gray, gray, mask_image=mask, warped_garment=gray, view="front", height=height, width=width,
            num_inference_steps=1, generator=torch.Generator().manual_seed(0), output_type="pt", **skeletons,
        )  # fmt: skip

    # --------------------------------------------------------------------------------------------------------------
    # 1. inputs

    def check_inputs(
        self,
        person,
        garment_front,
        garment_back,
        *,
        optional_images: dict[str, Any],
        person_keypoints,
        view,
        height,
        width,
        max_working_pixels,
        num_inference_steps,
        guidance_scale,
        eta,
        num_images_per_prompt,
        generator,
        latents,
        garment_timestep,
        output_type,
        flags: dict[str, Any],
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
    ) -> CheckedCall:
        """Validate every argument before any model or preprocessing work (see `mvvton.pipelines.input_checks`).

        Raises a typed `MVVTONError` (also a `ValueError` / `TypeError`) naming the first bad argument."""
        checked = check_call(
            person=person, garment_front=garment_front, garment_back=garment_back, optional_images=optional_images,
            mask_names=("mask_image", "garment_front_mask", "garment_back_mask"), person_keypoints=person_keypoints,
            view=view, height=height, width=width, size_multiple=self.size_multiple,
            max_working_pixels=self.config.max_working_pixels if max_working_pixels is None else max_working_pixels,
            num_inference_steps=num_inference_steps, num_train_timesteps=self.scheduler.config.num_train_timesteps,
            guidance_scale=guidance_scale, eta=eta, num_images_per_prompt=num_images_per_prompt, generator=generator,
            latents=latents, latent_channels=self.vae.config.latent_channels, vae_scale_factor=self.vae_scale_factor,
            garment_timestep=garment_timestep, output_type=output_type, flags=flags,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            allowed_callback_inputs=self._callback_tensor_inputs,
        )  # fmt: skip
        if checked.guidance_scale > 1.0 and self.image_encoder is None:
            raise InvalidArgumentError(
                f"`guidance_scale`={checked.guidance_scale} needs the image encoder's unconditional vector, and this "
                "pipeline has no image_encoder; use guidance_scale=1.0"
            )
        images = checked.images
        prepared = bool(images["mask_image"]) and bool(images["warped_garment"])
        if bool(images["warped_garment"]) and not images["mask_image"]:
            raise InvalidArgumentError("`warped_garment` needs `mask_image` too (prepared inputs come as a set)")
        if prepared and self.uses_pose and (not images["pose_image"] or not images["garment_front_pose_image"]):
            raise InvalidArgumentError(
                "with a given `mask_image` and `warped_garment`, the multi-view model also needs `pose_image` and "
                "`garment_front_pose_image` (skeleton renders); or omit them all to let the preprocessor build them"
            )
        if prepared and "auto" in checked.views and not checked.keypoints:
            raise InvalidArgumentError(
                "with prepared inputs, pass `view=` ('front' / 'side' / 'back') or `person_keypoints`"
            )
        return checked

    @property
    def size_multiple(self) -> int:
        """`height` and `width` must be multiples of this (VAE downsampling x UNet downsampling)."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    # --------------------------------------------------------------------------------------------------------------
    # 3. preprocessing

    def _get_preprocessor(self):
        if self.preprocessor is None:
            from mvvton.preprocessing.preprocessor import TryOnPreprocessor

            self.preprocessor = TryOnPreprocessor()
        return self.preprocessor

    def _route(self, view: str, keypoints: np.ndarray | None) -> tuple[PersonView, GarmentView]:
        from mvvton.preprocessing.view import classify_person_view, garment_view_for

        if view == "auto":
            person_view = classify_person_view(np.asarray(keypoints, dtype=np.float32))
        else:
            person_view = PersonView(view)
        if person_view is PersonView.SIDE and keypoints is None:
            return person_view, GarmentView.FRONT  # the released test-time rule for side views
        return person_view, garment_view_for(person_view, np.zeros((18, 3), np.float32) if keypoints is None else keypoints)

    def preprocess_inputs(
        self,
        person: list,
        garment_front: list,
        garment_back: list,
        *,
        height: int,
        width: int,
        view: str | list[str],
        mask_image: list,
        warped_garment: list,
        pose_image: list,
        garment_front_pose_image: list,
        garment_back_pose_image: list,
        person_keypoints: list,
        garment_front_mask: list,
        garment_back_mask: list,
    ) -> dict[str, Any]:
        """Turn per-sample inputs into batched tensors at `(height, width)`; runs the preprocessor where needed.

        Returns a dict of `(B, ...)` tensors: `person`, `warped_composite` (3ch, [-1, 1]), `inpaint_mask` (1ch,
        [0, 1], 1 = regenerate), `garments` (B, V, 3, H, W), `garment_masks` (B, V, 1, H, W), `person_skeleton`,
        `garment_skeletons` (B, V, 3, H, W), and lists `routed` (GarmentView) and `intermediates`.
        """
        batch_size = len(person)
        prepared = len(mask_image) > 0 and len(warped_garment) > 0
        missing_back = not garment_back and self.num_garment_views > 1
        if not garment_back:
            garment_back = garment_front
        columns: dict[str, list] = {key: [] for key in (
            "person", "warped_composite", "inpaint_mask", "garment_front", "garment_back", "garment_front_mask",
            "garment_back_mask", "person_skeleton", "garment_front_skeleton", "garment_back_skeleton",
        )}  # fmt: skip
        routed, intermediates = [], []
        placements: list = []  # per sample (crop box, original photo, mask) for output_size="original"

        def pick(values: list, index: int):
            return values[index] if len(values) > 1 else (values[0] if values else None)

        views = list(view) if isinstance(view, (list, tuple)) else [view]
        for index in range(batch_size):
            keypoints = pick(person_keypoints, index)
            sample_view = pick(views, index)
            if prepared:
                sample = {
                    "person": pick(person, index),
                    "warped_composite": pick(warped_garment, index),
                    "inpaint_mask": pick(mask_image, index),
                    "garment_front": pick(garment_front, index),
                    "garment_back": pick(garment_back, index),
                    "garment_front_mask": pick(garment_front_mask, index),
                    "garment_back_mask": pick(garment_back_mask, index),
                    "person_skeleton": pick(pose_image, index),
                    "garment_front_skeleton": pick(garment_front_pose_image, index),
                    "garment_back_skeleton": pick(garment_back_pose_image, index)
                    if garment_back_pose_image
                    else pick(garment_front_pose_image, index),
                }
                person_view, garment_view = self._route(
                    sample_view, None if keypoints is None else np.asarray(keypoints)
                )
                placements.append(None)
                notes: list[str] = []
            else:
                result = self._get_preprocessor()(
                    _preprocessor_input(pick(person, index)),
                    _preprocessor_input(pick(garment_front, index)),
                    _preprocessor_input(pick(garment_back, index)),
                    mask_image=_preprocessor_input(pick(mask_image, index)),
                    person_keypoints=keypoints,
                    garment_front_mask=_preprocessor_input(pick(garment_front_mask, index)),
                    garment_back_mask=_preprocessor_input(pick(garment_back_mask, index)),
                    view=sample_view,
                    height=height,
                    width=width,
                )
                placements.append((result.crop_box, result.original_person, result.inpaint_mask))
                sample = {
                    "person": result.person,
                    "warped_composite": result.warped_composite,
                    "inpaint_mask": result.inpaint_mask,
                    "garment_front": result.garment_front,
                    "garment_back": result.garment_back,
                    "garment_front_mask": result.garment_front_mask,
                    "garment_back_mask": result.garment_back_mask,
                    "person_skeleton": result.person_skeleton,
                    "garment_front_skeleton": result.garment_front_skeleton,
                    "garment_back_skeleton": result.garment_back_skeleton,
                }
                person_view, garment_view = PersonView(result.view), GarmentView(result.routed_garment)
                notes = list(result.warnings)
            if missing_back:
                notes.append(MISSING_BACK_WARNING)
            routed.append(garment_view)
            intermediates.append(
                {
                    "person_view": person_view.value,
                    "routed_garment": garment_view.value,
                    "warnings": notes,
                    **{key: value for key, value in sample.items() if value is not None},
                }
            )
            for key in columns:
                columns[key].append(sample[key])

        def images(key: str) -> torch.Tensor:
            values = _uniform_batch([_as_rgb_image(value, ARGUMENT_NAMES.get(key, key)) for value in columns[key]], 3)
            return self.image_processor.preprocess(values, height=height, width=width)  # (B, 3, H, W) [-1, 1]

        def masks(key: str) -> torch.Tensor:
            values = _uniform_batch([_as_mask_image(value, ARGUMENT_NAMES.get(key, key)) for value in columns[key]], 1)
            return self.mask_processor.preprocess(values, height=height, width=width)  # (B, 1, H, W) [0, 1]

        garment_masks = None
        if any(value is not None for value in columns["garment_front_mask"] + columns["garment_back_mask"]):
            empty = np.zeros((height, width), np.float32)  # a view without a mask: the CLIP crop takes it whole
            for key in ("garment_front_mask", "garment_back_mask"):
                columns[key] = [empty if value is None else value for value in columns[key]]
            garment_masks = torch.stack([masks("garment_front_mask"), masks("garment_back_mask")], dim=1)
        garments = torch.stack([images("garment_front"), images("garment_back")], dim=1)
        batch = {
            "person": images("person"),
            "warped_composite": images("warped_composite"),
            "inpaint_mask": masks("inpaint_mask"),
            "garments": garments[:, : self.num_garment_views],  # (B, V, 3, H, W)
            "garment_masks": garment_masks,  # (B, 2, 1, H, W) or None
            "routed": routed,
            "intermediates": intermediates,
            "placements": placements,
        }
        if self.uses_pose:
            batch["person_skeleton"] = images("person_skeleton")
            batch["garment_skeletons"] = torch.stack(
                [images("garment_front_skeleton"), images("garment_back_skeleton")], dim=1
            )[:, : self.num_garment_views]  # (B, V, 3, H, W)
        return batch

    # --------------------------------------------------------------------------------------------------------------
    # 4. garment conditioning

    def encode_garments(
        self,
        garments: torch.Tensor,
        garment_masks: torch.Tensor | None,
        routed: list[GarmentView],
        person_skeleton: torch.Tensor | None,
        garment_skeletons: torch.Tensor | None,
        garment_timestep: int,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Global token of each sample's routed view and local tokens of all views (computed once per call).

        Returns `global_embeds (B, 1, D)` and per-level `garment_tokens` `(B, V * N_k, D)`.
        """
        device, dtype = self._execution_device, self.unet.dtype
        garments = garments.to(device=device, dtype=dtype)
        batch_size = garments.shape[0]
        view_index = torch.tensor(
            [min(VIEW_NAMES.index(view.value), self.num_garment_views - 1) for view in routed], device=device
        )
        if self.image_encoder is not None:
            routed_garment = garments[torch.arange(batch_size, device=device), view_index]  # (B, 3, H, W)
            routed_mask = None
            if garment_masks is not None:
                routed_mask = garment_masks.to(device)[torch.arange(batch_size, device=device), view_index]
            pixel_values = crop_garment_for_clip(
                routed_garment, routed_mask, self.image_encoder.image_size, margin=CLIP_CROP_MARGIN
            )
            global_embeds = self.image_encoder(pixel_values.to(self.image_encoder.dtype)).to(dtype)
        else:
            global_embeds = torch.zeros(batch_size, 1, self.unet.config.cross_attention_dim, device=device, dtype=dtype)

        person_pose = garment_pose = None
        if self.uses_pose:
            pose_dtype = self.pose_encoder.dtype
            person_pose = self.pose_encoder(person_skeleton.to(device=device, dtype=pose_dtype))  # (B, Np, D)
            folded = garment_skeletons.to(device=device, dtype=pose_dtype).flatten(0, 1)  # (B*V, 3, H, W)
            garment_pose = self.pose_encoder(folded).unflatten(0, (batch_size, -1))  # (B, V, Np, D)
        output = self.garment_encoder(
            garments.to(self.garment_encoder.dtype),
            garment_timestep,
            person_pose_embeds=person_pose,
            garment_pose_embeds=garment_pose,
        )
        return global_embeds, [tokens.to(dtype) for tokens in output.garment_tokens]

    # --------------------------------------------------------------------------------------------------------------
    # 6. / 7. latents

    def _encode_vae_image(self, image: torch.Tensor, generator) -> torch.Tensor:
        """`(B, 3, H, W)` [-1, 1] -> scaled latents, sampling the posterior as the released model does."""
        image = image.to(device=self._execution_device, dtype=self.vae.dtype)
        if isinstance(generator, list):
            latents = torch.cat(
                [retrieve_latents(self.vae.encode(image[i : i + 1]), generator=generator[i]) for i in range(len(image))]
            )
        else:
            latents = retrieve_latents(self.vae.encode(image), generator=generator)
        return latents * self.vae.config.scaling_factor

    def prepare_mask_latents(
        self, inpaint_mask: torch.Tensor, warped_composite: torch.Tensor, generator, latent_size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep-mask `(B, 1, h, w)` (1 = keep, bilinear, soft) and masked-image latents `(B, 4, h, w)`."""
        keep = 1.0 - inpaint_mask.to(device=self._execution_device, dtype=self.unet.dtype)
        mask_latents = F.interpolate(keep, size=latent_size, mode="bilinear", align_corners=False)
        masked_image_latents = self._encode_vae_image(warped_composite, generator).to(self.unet.dtype)
        return mask_latents, masked_image_latents

    def prepare_latents(
        self,
        shape: tuple[int, ...],
        start_latents: torch.Tensor | None,
        timesteps: torch.Tensor,
        generator,
        latents: torch.Tensor | None,
        strength: float = 1.0,
    ) -> torch.Tensor:
        """x_T. Released sampler: the pre-warped composite noised to the last training step (q_sample at t=999,
        although the first DDIM step is 981). For sigma-based schedulers: noised to the first timestep instead.
        With `strength` < 1 (img2img): noised to the first of the remaining `timesteps`, for every scheduler."""
        device, dtype = self._execution_device, self.unet.dtype
        if latents is not None:
            return latents.to(device=device, dtype=dtype)
        noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        if start_latents is None:
            return noise * self.scheduler.init_noise_sigma
        if strength < 1.0:
            return self.scheduler.add_noise(start_latents, noise, timesteps[:1].repeat(shape[0])).to(dtype)
        if hasattr(self.scheduler, "alphas_cumprod") and not hasattr(self.scheduler, "sigmas"):
            alpha_bar = self.scheduler.alphas_cumprod[self.scheduler.config.num_train_timesteps - 1].to(device)
            return (alpha_bar.sqrt() * start_latents + (1 - alpha_bar).sqrt() * noise).to(dtype)
        return self.scheduler.add_noise(start_latents, noise, timesteps[:1].repeat(shape[0]))

    def get_timesteps(self, num_inference_steps: int, strength: float) -> torch.Tensor:
        """The last `int(num_inference_steps * strength)` of the scheduler's timesteps (as diffusers' img2img)."""
        num_steps = max(min(int(num_inference_steps * strength), num_inference_steps), 1)
        start = (num_inference_steps - num_steps) * self.scheduler.order
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(start)
        return self.scheduler.timesteps[start:]

    def prepare_extra_step_kwargs(self, generator, eta: float) -> dict[str, Any]:
        parameters = set(inspect.signature(self.scheduler.step).parameters)
        kwargs: dict[str, Any] = {}
        if "eta" in parameters:
            kwargs["eta"] = eta
        if "generator" in parameters:
            kwargs["generator"] = generator
        return kwargs

    @staticmethod
    def doubled_tokens(garment_tokens: list[torch.Tensor] | GarmentTokens) -> GarmentTokens:
        """Local tokens for a CFG batch `[uncond, cond]`: both halves keep them (as training's CFG dropout does)."""
        levels = garment_tokens.levels if isinstance(garment_tokens, GarmentTokens) else garment_tokens
        cache = isinstance(garment_tokens, GarmentTokens) and garment_tokens.projection_cache is not None
        return GarmentTokens([None if level is None else torch.cat([level, level]) for level in levels], cache)

    def predict_noise(
        self,
        latent_model_input: torch.Tensor,
        timestep: torch.Tensor,
        global_embeds: torch.Tensor,
        uncond_embeds: torch.Tensor | None,
        garment_tokens: list[torch.Tensor] | None,
        guidance_scale: float,
        reproduce_original_guidance: bool = False,
        guidance_tokens: GarmentTokens | None = None,
    ) -> torch.Tensor:
        """The denoiser output for `latent_model_input` `(B, 9, h, w)`: ε, or v / x0 as the scheduler's
        `prediction_type` says (its `step` interprets it; guidance is linear in all three). With guidance, the
        unconditional branch sees the unconditional vector in place of the global token and keeps the local tokens
        (as in training's CFG dropout). `reproduce_original_guidance=True` copies the released sampler's bug: with
        guidance it drops the local tokens from BOTH branches. `guidance_tokens`: `doubled_tokens(garment_tokens)`,
        built once per call."""
        if guidance_scale <= 1.0:
            return self.unet(latent_model_input, timestep, global_embeds, garment_tokens=garment_tokens).sample
        tokens = None
        if not reproduce_original_guidance and garment_tokens is not None:
            tokens = guidance_tokens if guidance_tokens is not None else self.doubled_tokens(garment_tokens)
        noise = self.unet(
            torch.cat([latent_model_input] * 2),
            torch.cat([timestep.expand(latent_model_input.shape[0])] * 2),
            torch.cat([uncond_embeds, global_embeds]),
            garment_tokens=tokens,
        ).sample
        noise_uncond, noise_cond = noise.chunk(2)
        return noise_uncond + guidance_scale * (noise_cond - noise_uncond)

    # --------------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        person: PipelineImageInput,
        garment_front: PipelineImageInput,
        garment_back: PipelineImageInput | None = None,
        *,
        mask_image: PipelineImageInput | None = None,
        view: str | list[str] = "auto",
        person_keypoints: np.ndarray | list[np.ndarray] | None = None,
        warped_garment: PipelineImageInput | None = None,
        pose_image: PipelineImageInput | None = None,
        garment_front_pose_image: PipelineImageInput | None = None,
        garment_back_pose_image: PipelineImageInput | None = None,
        garment_front_mask: PipelineImageInput | None = None,
        garment_back_mask: PipelineImageInput | None = None,
        height: int | None = None,
        width: int | None = None,
        max_working_pixels: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 1.0,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        start_from_warped: bool = True,
        strength: float | None = None,
        paste_back: bool = True,
        output_size: str = "working",
        garment_timestep: int | None = None,
        reproduce_original_guidance: bool = False,
        cache_local_projections: bool = True,
        output_type: str = "pil",
        return_dict: bool = True,
        return_intermediates: bool = False,
        callback_on_step_end: Callable[[DiffusionPipeline, int, int, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> MVVTONPipelineOutput | tuple:
        r"""
        Render `person` wearing the garment.

        Args:
            person (`PipelineImageInput`): photo(s) of the person (front, side or back view).
            garment_front / garment_back (`PipelineImageInput`): product photos of the garment's front and back.
                `garment_back=None` reuses the front (with a warning).
            mask_image (*optional*): region to regenerate (white = regenerate); overrides the automatic agnostic
                mask. With `warped_garment` (and, for the multi-view model, the pose images) the inputs are taken as
                prepared and the preprocessor is skipped.
            view (`str` or `list[str]`, defaults to `"auto"`): person view `front` / `side` / `back` (one for all
                or one per sample), or `"auto"`: detected from the pose.
            person_keypoints (*optional*): `(18, 3)` OpenPose-18 keypoints (pixels, confidence) per sample.
            warped_garment (*optional*): the pre-warped composite (agnostic person with the garment pasted in).
            pose_image, garment_front_pose_image, garment_back_pose_image (*optional*): skeleton renders.
            garment_front_mask, garment_back_mask (*optional*): garment masks for the CLIP crop.
            height, width (`int`, *optional*): working size (defaults from the pipeline config); multiples of
                `pipe.size_multiple`.
            max_working_pixels (`int`, *optional*): raise the working-size budget `height * width` (default
                `config.max_working_pixels`, 1024x1024) for one call.
            num_inference_steps (`int`, defaults to 50), guidance_scale (`float`, defaults to 1.0: no guidance, as
                released), num_images_per_prompt, eta (DDIM eta, 0), generator, latents: as in diffusers.
            start_from_warped (`bool`, defaults to `True`): start from the noised pre-warped composite (released
                sampler) instead of pure noise.
            strength (`float` in (0, 1], *optional*): how far the pre-warped composite is noised before denoising,
                as in diffusers' img2img: `1.0` (the released sampler) noises it to t = 999 and runs every step;
                below 1 it is noised to about `strength x 1000` and only the last `int(num_inference_steps x
                strength)` steps run, so more of the pre-warp is kept. Defaults to `config.default_strength`.
            paste_back (`bool`, defaults to `True`): keep the person's pixels outside the regenerated region.
            output_size (`str`, defaults to `"working"`): `"original"` pastes each result into the person's original
                photo at its own resolution (crop box, feathered mask edge, colours kept outside the mask; needs
                output_type "pil" or "np"; prepared inputs stay at the working size); `"working"` returns the
                `(height, width)` canvas. With `"original"` and `return_intermediates`, `intermediates[i]
                ["working_image"]` keeps the canvas result.
            garment_timestep (`int`, *optional*): garment-encoder timestep; defaults to `config.garment_timestep`.
            reproduce_original_guidance (`bool`): compatibility switch for the released sampler's guidance bug.
            cache_local_projections (`bool`, defaults to `True`): project the (fixed) local tokens to keys/values
                once per call instead of at every step; same result.
            output_type (`str`): `"pil"`, `"np"`, `"pt"` or `"latent"`.
            return_intermediates (`bool`): add per-sample intermediates (routing, masks, skeletons, warp).
            callback_on_step_end, callback_on_step_end_tensor_inputs: as in diffusers.

        Examples:

        Returns:
            [`MVVTONPipelineOutput`] or `(images,)` / `(images, intermediates)`.
        """
        check_output_size(output_size, output_type)
        # 0. Default height and width
        height = self.config.default_height if height is None else height
        width = self.config.default_width if width is None else width

        # 1. Check inputs (every argument, before any model or preprocessing work)
        optional_images = {
            "mask_image": mask_image, "warped_garment": warped_garment, "pose_image": pose_image,
            "garment_front_pose_image": garment_front_pose_image, "garment_back_pose_image": garment_back_pose_image,
            "garment_front_mask": garment_front_mask, "garment_back_mask": garment_back_mask,
        }  # fmt: skip
        flags = {
            "start_from_warped": start_from_warped, "paste_back": paste_back,
            "reproduce_original_guidance": reproduce_original_guidance,
            "cache_local_projections": cache_local_projections, "return_dict": return_dict,
            "return_intermediates": return_intermediates,
        }  # fmt: skip
        checked = self.check_inputs(
            person, garment_front, garment_back, optional_images=optional_images, person_keypoints=person_keypoints,
            view=view, height=height, width=width, max_working_pixels=max_working_pixels,
            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, eta=eta,
            num_images_per_prompt=num_images_per_prompt, generator=generator, latents=latents,
            garment_timestep=garment_timestep, output_type=output_type, flags=flags,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )  # fmt: skip
        height, width = checked.height, checked.width
        num_inference_steps, guidance_scale, eta = checked.num_inference_steps, checked.guidance_scale, checked.eta
        num_images_per_prompt = checked.num_images_per_prompt
        strength = check_strength(self.config.get("default_strength", 1.0) if strength is None else strength)
        if strength < 1.0 and not start_from_warped:
            raise InvalidArgumentError("`strength` < 1 needs `start_from_warped=True` (it keeps part of the pre-warp)")
        if int(num_inference_steps * strength) < 1:
            raise InvalidArgumentError(
                f"`strength` {strength} x `num_inference_steps` {num_inference_steps} leaves no denoising step; "
                "raise either so that their product is at least 1"
            )
        self._guidance_scale = guidance_scale
        self._interrupt = False

        # 2. Define call parameters
        batch_size = checked.batch_size
        device = self._execution_device
        if not checked.garment_backs and self.num_garment_views > 1:
            warnings.warn(MISSING_BACK_WARNING, stacklevel=_user_stacklevel())

        # 3. Preprocess person, garments, masks and poses
        images = checked.images
        batch = self.preprocess_inputs(
            checked.persons, checked.garment_fronts, checked.garment_backs, height=height, width=width,
            view=checked.views, mask_image=images["mask_image"], warped_garment=images["warped_garment"],
            pose_image=images["pose_image"], garment_front_pose_image=images["garment_front_pose_image"],
            garment_back_pose_image=images["garment_back_pose_image"], person_keypoints=checked.keypoints,
            garment_front_mask=images["garment_front_mask"], garment_back_mask=images["garment_back_mask"],
        )  # fmt: skip

        def repeat(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.repeat_interleave(num_images_per_prompt, dim=0)

        # 4. Encode garments: global token of the routed view, local tokens of all views (once per call)
        global_embeds, garment_tokens = self.encode_garments(
            batch["garments"], batch["garment_masks"], batch["routed"], batch.get("person_skeleton"),
            batch.get("garment_skeletons"),
            self.config.garment_timestep if garment_timestep is None else garment_timestep,
        )  # fmt: skip
        global_embeds = repeat(global_embeds)
        # fixed for the whole loop: each joint block projects its local keys/values once
        garment_tokens = GarmentTokens([repeat(level) for level in garment_tokens], cache_projections=cache_local_projections)
        total = batch_size * num_images_per_prompt
        uncond_embeds = self.image_encoder.unconditional_embeds(total).to(global_embeds) if self.image_encoder else None

        # 5. Set timesteps (with strength < 1, only the last ones: img2img)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps if strength == 1.0 else self.get_timesteps(num_inference_steps, strength)
        self._num_timesteps = len(timesteps)

        # 6. / 7. Prepare mask latents and latent variables
        latent_size = (height // self.vae_scale_factor, width // self.vae_scale_factor)
        mask_latents, masked_image_latents = self.prepare_mask_latents(
            repeat(batch["inpaint_mask"]), repeat(batch["warped_composite"]), generator, latent_size
        )
        latent_channels = self.vae.config.latent_channels
        latents = self.prepare_latents(
            (total, latent_channels, *latent_size),
            masked_image_latents if start_from_warped else None,
            timesteps,
            generator,
            latents,
            strength,
        )

        # 8. Check that sizes match the UNet
        expected_channels = latent_channels + masked_image_latents.shape[1] + mask_latents.shape[1]
        if expected_channels != self.unet.config.in_channels:
            raise ValueError(f"the UNet expects {self.unet.config.in_channels} input channels, got {expected_channels}")

        # 9. Extra step kwargs
        extra_step_kwargs = self.prepare_extra_step_kwargs(generator, eta)

        # 10. Denoising loop
        guidance_tokens = None  # the CFG batch's local tokens, built on the first guided step
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                scaled_latents = self.scheduler.scale_model_input(latents, t)
                latent_model_input = torch.cat([scaled_latents, masked_image_latents, mask_latents], dim=1)
                if self.do_classifier_free_guidance and guidance_tokens is None:
                    guidance_tokens = self.doubled_tokens(garment_tokens)
                noise_pred = self.predict_noise(
                    latent_model_input, t.to(device).reshape(1), global_embeds, uncond_embeds, garment_tokens,
                    self.guidance_scale, reproduce_original_guidance, guidance_tokens,
                )  # fmt: skip
                latents = self.scheduler.step(noise_pred, t, latents, **extra_step_kwargs, return_dict=False)[0]
                if not bool(torch.isfinite(latents).all()):
                    raise NonFiniteResultError(
                        f"sampling step {i + 1}/{len(timesteps)} (t={int(t)}) produced NaN or inf latents, so no "
                        "image is returned; check the weights (e.g. half precision overflow) and the inputs"
                    )
                if callback_on_step_end is not None:
                    callback_kwargs = {}
                    for name in callback_on_step_end_tensor_inputs or ["latents"]:
                        callback_kwargs[name] = locals()[name]
                    callback_outputs = callback_on_step_end(self, i, t, callback_kwargs)
                    latents = callback_outputs.pop("latents", latents)
                    masked_image_latents = callback_outputs.pop("masked_image_latents", masked_image_latents)
                    mask_latents = callback_outputs.pop("mask_latents", mask_latents)
                    global_embeds = callback_outputs.pop("global_embeds", global_embeds)
                progress_bar.update()

        # decode, paste back, postprocess
        if output_type == "latent":
            images = latents
        else:
            decoded = self.vae.decode(latents / self.vae.config.scaling_factor, return_dict=False)[0]
            if not bool(torch.isfinite(decoded).all()):
                raise NonFiniteResultError("the VAE decoder produced NaN or inf pixels, so no image is returned")
            decoded = decoded.clamp(-1, 1)
            if paste_back:
                regenerate = repeat(batch["inpaint_mask"]).to(decoded)
                decoded = decoded * regenerate + repeat(batch["person"]).to(decoded) * (1 - regenerate)
            images = self.image_processor.postprocess(decoded, output_type=output_type)
            if output_size == "original":
                working = images
                images = paste_batch_into_originals(images, batch["placements"], num_images_per_prompt)
                for index, record in enumerate(batch["intermediates"]):
                    record["working_image"] = working[index * num_images_per_prompt]
        self.maybe_free_model_hooks()

        intermediates = batch["intermediates"] if return_intermediates else None
        if not return_dict:
            return (images,) if intermediates is None else (images, intermediates)
        return MVVTONPipelineOutput(images=images, intermediates=intermediates)
