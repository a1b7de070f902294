"""Procedural try-on samples for smoke tests and CI (`data.dataset: synthetic`): drawn in memory, no files.

Not to be confused with `mvvton.data.synth`, which renders the SynthMVG dataset to disk.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset


def _draw_rect(image: torch.Tensor, top: int, bottom: int, left: int, right: int, value: torch.Tensor) -> None:
    image[:, max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)] = value.view(-1, 1, 1)


class SyntheticTryOnDataset(Dataset):
    """Tiny procedural try-on samples in the `mvvton.data.sample` schema (smoke tests; no files).

    Each sample: a grey background, a body block whose torso wears a two-colour garment (front colour + a stripe
    seen from the front, back colour from the back), garment product images of both sides, an agnostic person with
    a grey torso, and a "pre-warped" composite pasting a slightly shifted garment. The person view cycles through
    front, side and back; side views hard-select the front garment (as the released sampler).
    """

    VIEWS = ("front", "side", "back")

    def __init__(self, num_samples: int = 8, height: int = 64, width: int = 64, seed: int = 0):
        self.num_samples = num_samples
        self.height = height
        self.width = width
        self.seed = seed

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        generator = torch.Generator().manual_seed(self.seed * 7919 + index)
        height, width = self.height, self.width
        view = self.VIEWS[index % 3]
        front_colour = torch.rand(3, generator=generator) * 2 - 1
        back_colour = torch.rand(3, generator=generator) * 2 - 1
        stripe_colour = -front_colour
        body_colour = torch.tensor([0.6, 0.2, 0.0])
        shift = int(torch.randint(-2, 3, (1,), generator=generator))

        cx = width // 2
        torso = (height // 4, height * 5 // 8, cx - width // 5, cx + width // 5)
        person = torch.full((3, height, width), 0.5)
        _draw_rect(person, height // 10, height * 9 // 10, cx - width // 4, cx + width // 4, body_colour)
        garment_colour = back_colour if view == "back" else front_colour
        _draw_rect(person, *torso, garment_colour)
        if view != "back":
            _draw_rect(person, torso[0], torso[1], cx - 1, cx + 2 if view == "front" else cx + 4, stripe_colour)

        inpaint_mask = torch.zeros(1, height, width)
        _draw_rect(inpaint_mask, torso[0] - 2, torso[1] + 2, torso[2] - 2, torso[3] + 2, torch.ones(1))
        agnostic = torch.where(inpaint_mask > 0.5, torch.zeros(3, 1, 1), person)
        inpaint_image = agnostic.clone()
        t, b, lft, rgt = torso
        _draw_rect(inpaint_image, t + shift, b + shift, lft - shift, rgt - shift, garment_colour * 0.8)

        def garment_image(colour: torch.Tensor, stripe: bool) -> tuple[torch.Tensor, torch.Tensor]:
            image, mask = torch.ones(3, height, width), torch.zeros(1, height, width)
            box = (height // 6, height * 5 // 6, width // 6, width * 5 // 6)
            _draw_rect(image, *box, colour)
            _draw_rect(mask, *box, torch.ones(1))
            if stripe:
                _draw_rect(image, box[0], box[1], cx - 2, cx + 2, stripe_colour)
            return image, mask

        garment_front, garment_front_mask = garment_image(front_colour, True)
        garment_back, garment_back_mask = garment_image(back_colour, False)

        def skeleton(facing: str) -> torch.Tensor:
            image = torch.full((3, height, width), -1.0)
            _draw_rect(image, height // 8, height * 3 // 4, cx - 1, cx + 1, torch.tensor([1.0, 0.0, 0.0]))
            right = torch.tensor([0.0, 1.0, 0.3]) if facing != "back" else torch.tensor([0.0, 0.3, 1.0])
            left = -right
            _draw_rect(image, height // 4, height // 4 + 2, cx - width // 4, cx, right)
            _draw_rect(image, height // 4, height // 4 + 2, cx, cx + width // 4, left)
            return image

        return {
            "person": person,
            "inpaint_image": inpaint_image,
            "inpaint_mask": inpaint_mask,
            "agnostic": agnostic,
            "garment_front": garment_front,
            "garment_back": garment_back,
            "garment_front_mask": garment_front_mask,
            "garment_back_mask": garment_back_mask,
            "skeleton_person": skeleton(view),
            "skeleton_front": skeleton("front"),
            "skeleton_back": skeleton("back"),
            "person_keypoints": torch.zeros(18, 3),
            "view": view,
            "garment_view": "back" if view == "back" else "front",
            "sample_id": f"synthetic_{index:05d}",
        }
