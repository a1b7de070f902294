import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mvvton.constants import COCO18_INDEX as I
from mvvton.constants import GarmentView
from mvvton.errors import GarmentExtractionError, InvalidArgumentError, MVVTONError, NoGarmentDetectedError
from mvvton.preprocessing import garment_from_worn_photo as public_garment_from_worn_photo
from mvvton.preprocessing.garment import HumanParser, garment_keypoints, garment_mask
from mvvton.preprocessing.person import person_mask_from_keypoints
from mvvton.preprocessing.worn_garment import (
    MAX_SKIN_FRACTION,
    BodyParts,
    GarmentCategory,
    TorsoFrame,
    WornGarmentWarning,
    _regions,
    body_parts_from_keypoints,
    garment_from_worn_photo,
    garment_quality,
    lowered_hips,
    product_layout,
)

from .conftest import synthetic_keypoints

# Photos whose garment must come out usable without any warning (checked by eye on the contact sheet).
USABLE = ("idmvton_00055_00", "idmvton_00034_00", "ootd_051918_0", "catvton_mothr22044226e8", "id0000347008")


def _torso_and_hip(keypoints: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Independent re-statement of the acceptance rule's geometry: the shoulder-hip quadrilateral, and the pixels
    beyond the line through the hip midpoint perpendicular to the shoulder-mid -> hip-mid axis."""
    rs, ls, rh, lh = (keypoints[I[n], :2] for n in ("right_shoulder", "left_shoulder", "right_hip", "left_hip"))
    quad = np.zeros(shape, np.uint8)
    cv2.fillPoly(quad, [np.round([rs, ls, lh, rh]).astype(np.int32)], 1)
    axis = (rh + lh) / 2 - (rs + ls) / 2
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    below = (xs - (rh[0] + lh[0]) / 2) * axis[0] + (ys - (rh[1] + lh[1]) / 2) * axis[1] > 0
    return quad > 0, below


# --------------------------------------------------------------------------------------------------------------------
# Synthetic person (no mediapipe): blue shirt, skin-coloured arms and face, grey trousers, white background.

SKIN = (205, 150, 120)
SHIRT = (40, 70, 170)
TROUSERS = (90, 90, 90)


def _synthetic_person(marker: bool = True) -> tuple[np.ndarray, BodyParts]:
    keypoints = synthetic_keypoints("front")
    height, width = 512, 384
    image = np.full((height, width, 3), 255, np.uint8)
    person = person_mask_from_keypoints(keypoints, height, width)
    image[person > 0.5] = SKIN
    legs = np.zeros((height, width), np.uint8)
    cv2.fillPoly(legs, [np.array([[150, 290], [236, 290], [250, 500], [140, 500]], np.int32)], 1)
    image[(legs > 0) & (person > 0.5)] = TROUSERS
    shirt = np.zeros((height, width), np.uint8)
    cv2.fillPoly(shirt, [np.array([[135, 128], [249, 128], [232, 285], [152, 285]], np.int32)], 1)
    cv2.line(shirt, (140, 132), (133, 175), 1, 30)  # short sleeves
    cv2.line(shirt, (244, 132), (251, 175), 1, 30)
    shirt &= (person > 0.5).astype(np.uint8)
    image[shirt > 0] = SHIRT
    if marker:  # a print on the shirt's image-left half, to check that nothing is mirrored
        image[180:200, 165:180] = (250, 220, 0)
    rng = np.random.default_rng(0)
    image = np.clip(image.astype(int) + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    parts = body_parts_from_keypoints(image, keypoints, person)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    parts.skin_samples = lab[60:90, 180:205].reshape(-1, 3)  # the face
    parts.skin_source = "face"
    return image, parts


def test_synthetic_shirt_is_cut_out_without_arms_or_trousers():
    image, parts = _synthetic_person()
    with warnings.catch_warnings():
        warnings.simplefilter("error", WornGarmentWarning)  # a clean case gives no warning
        result = garment_from_worn_photo(image, body_parts=parts)
    m = result.photo_mask > 0.5
    shirt = np.abs(image.astype(int) - SHIRT).max(axis=2) < 20
    forearm = np.zeros_like(m)
    forearm[215:255, 115:135] = True  # right forearm, bare skin
    assert (m & shirt).sum() / shirt.sum() > 0.95
    assert not (m & forearm).any()
    assert m[300:, :].sum() == 0  # nothing of the trousers below the hip line
    assert result.quality.torso_coverage >= 0.7 and result.quality.below_hip_fraction < 0.05
    assert result.view is GarmentView.FRONT and result.method == "grabcut"


def test_layout_is_a_centred_unmirrored_product_photo():
    image, parts = _synthetic_person()
    result = garment_from_worn_photo(image, body_parts=parts)
    out, mask = result.image, result.mask > 0.5
    h, w = mask.shape
    assert abs(h / w - 4 / 3) < 0.02
    assert (out[~mask] == 255).all()
    ys, xs = np.nonzero(mask)
    assert abs(xs.mean() - w / 2) < 0.1 * w and abs((ys.min() + ys.max()) / 2 - h / 2) < 0.05 * h
    # The yellow print stays on the image-left half.
    yellow = (out[..., 0] > 200) & (out[..., 1] > 180) & (out[..., 2] < 80)
    assert yellow.sum() > 100 and np.nonzero(yellow)[1].mean() < w / 2
    # Same garment-mask / keypoint path as a product photo.
    iou = (garment_mask(out) > 0.5) & mask
    assert iou.sum() / (mask | (garment_mask(out) > 0.5)).sum() > 0.9
    np.testing.assert_array_equal(result.keypoints(), garment_keypoints(result.mask, GarmentView.FRONT))


def test_back_view_gives_the_back_garment():
    image, parts = _synthetic_person(marker=False)
    keypoints = synthetic_keypoints("back")
    keypoints[[I["nose"], I["right_eye"], I["left_eye"]], 2] = 0.0  # facing away
    back_parts = BodyParts(keypoints, parts.person_mask, parts.face_mask, parts.hands_mask, parts.skin_samples, "face")
    result = garment_from_worn_photo(image, body_parts=back_parts)
    assert result.view is GarmentView.BACK
    kp = result.keypoints()
    assert kp[I["right_shoulder"], 0] > kp[I["left_shoulder"], 0]  # wearer's right on the image right


def test_poor_coverage_raises_or_warns_with_advice():
    image, parts = _synthetic_person(marker=False)
    # A crop top: the lower torso is bare skin, so the garment covers well under 70 % of it.
    image = image.copy()
    image[205:290][np.abs(image[205:290].astype(int) - SHIRT).max(axis=2) < 20] = SKIN
    cut_parts = parts
    with pytest.raises(GarmentExtractionError, match="product photo of the garment, or a parsing model") as info:
        garment_from_worn_photo(image, body_parts=cut_parts)
    assert isinstance(info.value, NoGarmentDetectedError)
    with pytest.warns(WornGarmentWarning, match="covers only"):
        result = garment_from_worn_photo(image, body_parts=cut_parts, strict=False)
    assert result.warnings and result.quality.torso_coverage < 0.7


def test_empty_garment_always_raises():
    image = np.full((512, 384, 3), 255, np.uint8)
    keypoints = synthetic_keypoints("front")
    parts = body_parts_from_keypoints(image, keypoints, np.zeros((512, 384), np.float32))
    for strict in (True, False):
        with pytest.raises(GarmentExtractionError):
            garment_from_worn_photo(image, body_parts=parts, strict=strict)


def test_argument_errors():
    image, parts = _synthetic_person(marker=False)
    with pytest.raises(InvalidArgumentError, match="needs a parsing model"):
        garment_from_worn_photo(image, body_parts=parts, category="dress")
    with pytest.raises(ValueError):
        garment_from_worn_photo(image, body_parts=parts, category="hat")
    no_shoulders = parts.keypoints.copy()
    no_shoulders[[I["right_shoulder"], I["left_shoulder"]], 2] = 0
    bad = BodyParts(no_shoulders, parts.person_mask, parts.face_mask, parts.hands_mask, parts.skin_samples)
    with pytest.raises(GarmentExtractionError, match="shoulders"):
        garment_from_worn_photo(image, body_parts=bad)
    with pytest.raises(NoGarmentDetectedError):
        product_layout(image, np.zeros(image.shape[:2], np.float32))


def test_public_name_is_kept():
    assert public_garment_from_worn_photo is garment_from_worn_photo


def test_human_parser_plugin_per_category():
    image = np.full((512, 384, 3), 180, np.uint8)
    keypoints = synthetic_keypoints("front")
    person_mask = person_mask_from_keypoints(keypoints, 512, 384)

    class BoxParser:
        scheme = "atr"

        def __call__(self, img):
            labels = np.zeros(img.shape[:2], np.int64)
            labels[130:290, 140:245] = 4  # ATR upper-clothes
            labels[290:460, 150:240] = 6  # ATR pants
            labels[300:350, 50:100] = 14  # arm: never part of a garment
            return labels

    parser = BoxParser()
    assert isinstance(parser, HumanParser)
    upper = garment_from_worn_photo(image, keypoints, person_mask, parser=parser)
    expected = np.zeros(image.shape[:2], np.float32)
    expected[130:290, 140:245] = 1
    np.testing.assert_array_equal(upper.photo_mask, expected)
    assert upper.method == "parser" and upper.view is GarmentView.FRONT
    lower = garment_from_worn_photo(image, keypoints, person_mask, parser=parser, category=GarmentCategory.LOWER_BODY)
    assert lower.photo_mask[290:460, 150:240].all() and lower.photo_mask.sum() == 170 * 90
    with pytest.raises(GarmentExtractionError, match="no dress"):
        garment_from_worn_photo(image, keypoints, person_mask, parser=parser, category="dress")


# --------------------------------------------------------------------------------------------------------------------
# The skin rule.


def _bare_window(image: np.ndarray) -> np.ndarray:
    """Paint a skin-coloured window into the shirt's middle (a bare back between halter straps); return it."""
    shirt = np.abs(image.astype(int) - SHIRT).max(axis=2) < 20
    window = np.zeros(shirt.shape, bool)
    window[150:240, 165:220] = True
    image[window & shirt] = SKIN
    return window & shirt


@pytest.mark.parametrize("skin_model", ["face", "none"])
def test_skin_inside_the_torso_is_removed_or_named(skin_model):
    image, parts = _synthetic_person(marker=False)
    image = image.copy()
    window = _bare_window(image)
    if skin_model == "none":  # a back view without face or hands: the YCrCb prior decides
        parts.skin_samples, parts.skin_source = np.zeros((0, 3), np.float32), "none"
    skin_message = r"(contains skin|kept skin) \(\d+\.\d% of (the|its) garment"
    with pytest.raises(GarmentExtractionError, match=skin_message):
        garment_from_worn_photo(image, body_parts=parts)
    with pytest.warns(WornGarmentWarning, match=skin_message):
        result = garment_from_worn_photo(image, body_parts=parts, strict=False)
    # The second try cut the skin out (all but the window's blurred rim); the torso it leaves bare is what fails.
    assert (result.photo_mask[window] > 0.5).mean() < 0.1
    assert result.quality.skin_fraction <= MAX_SKIN_FRACTION and "skin removed" in result.method
    assert result.quality.torso_coverage < 0.7


def test_clean_shirt_has_no_skin():
    image, parts = _synthetic_person()
    result = garment_from_worn_photo(image, body_parts=parts)
    assert result.quality.skin_fraction < 0.01 and result.method == "grabcut"


def test_skin_model_is_refitted_on_the_arms():
    """Arms darker than the face (shade falling to 0.85 at the forearm): the face-only model misses most of the
    forearm; refitted on the bare arm pixels it already accepts, it finds it, and still not the shirt."""
    image, parts = _synthetic_person(marker=False)
    person = parts.person_mask > 0.5
    arms = (np.abs(image.astype(int) - SKIN).max(axis=2) < 20) & person
    arms[:130] = False
    shade = np.clip(1 - (np.arange(image.shape[0]) - 130) / 1000, 0.5, 1.0)[:, None, None]
    image = np.where(arms[..., None], (image * shade).astype(np.uint8), image)
    forearms = arms.copy()
    forearms[:220], forearms[280:] = False, False
    regions = _regions(image, parts, TorsoFrame.from_keypoints(parts.keypoints))
    assert regions.skin_measured[forearms].mean() > 0.8
    shirt = np.abs(image.astype(int) - SHIRT).max(axis=2) < 20
    assert regions.skin_measured[shirt].mean() < 0.01


def test_hands_on_the_garment_are_warned_about():
    """A hand resting on the shirt's side (hands akimbo) leaves a notch: a warning with the measured share."""
    image, parts = _synthetic_person(marker=False)
    image = image.copy()
    hand = np.zeros(image.shape[:2], np.uint8)
    cv2.circle(hand, (170, 230), 16, 1, -1)  # over the shirt's left edge, at the waist
    image[hand > 0] = SKIN
    parts.hands_mask = hand.astype(np.float32)
    with pytest.warns(
        WornGarmentWarning, match=r"hands in front of the garment cut gaps into it \(\d+\.\d% of its area"
    ):
        result = garment_from_worn_photo(image, body_parts=parts, strict=False)
    assert result.quality.occluded_fraction > 0.03
    assert (result.photo_mask[hand > 0] > 0.5).mean() < 0.1


def test_hips_at_the_elbows_are_lowered_and_warned_about():
    keypoints = synthetic_keypoints("front")
    unchanged, ratio = lowered_hips(keypoints)
    assert ratio is None and np.array_equal(unchanged, keypoints)  # shoulder-hip 160 px, shoulder-elbow 69 px
    high = keypoints.copy()
    high[[I["right_hip"], I["left_hip"]], 1] = 200  # at the elbows, as BlazePose did on a small side view
    lowered, ratio = lowered_hips(high)
    upper_arm = np.hypot(*(high[I["right_elbow"], :2] - high[I["right_shoulder"], :2]))
    assert ratio == pytest.approx(68 / upper_arm)
    assert lowered[I["right_hip"], 1] == pytest.approx(132 + 1.6 * upper_arm, abs=0.5)
    assert np.array_equal(np.delete(lowered, [I["right_hip"], I["left_hip"]], 0),
                          np.delete(high, [I["right_hip"], I["left_hip"]], 0))  # fmt: skip
    image, parts = _synthetic_person(marker=False)
    parts.keypoints = high
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = garment_from_worn_photo(image, body_parts=parts, strict=False)
    assert re.search(r"the pose put the hips too high \(shoulder to hip 0\.\d\d x", " ".join(result.warnings))
    assert result.photo_mask[240:280].any()  # the shirt below the (wrong) hip line is kept
    with pytest.raises(InvalidArgumentError):
        lowered_hips(keypoints[:17])


def test_garment_quality_skin_fraction_and_message():
    keypoints = synthetic_keypoints("front")
    person = person_mask_from_keypoints(keypoints, 512, 384)
    garment = np.zeros((512, 384), np.float32)
    garment[130:290, 140:245] = 1
    skin = np.zeros_like(garment)
    skin[130:162, 140:245] = 1  # the top 20 % of the garment
    quality = garment_quality(garment, keypoints, person, skin)
    assert quality.skin_fraction == pytest.approx(0.2)
    assert any("contains skin (20.0% of the garment" in p for p in quality.problems(GarmentCategory.UPPER_BODY))
    assert garment_quality(garment, keypoints, person).skin_fraction == 0.0
    with pytest.raises(InvalidArgumentError, match="one shape"):
        garment_quality(garment, keypoints, person, skin[:-1])


# --------------------------------------------------------------------------------------------------------------------
# Real photos (../shared, read in place).


@pytest.fixture(scope="module")
def analyzer():
    pytest.importorskip("mediapipe")
    from mvvton.preprocessing.worn_garment import WornPhotoAnalyzer

    with WornPhotoAnalyzer() as instance:
        yield instance


def _shared_person_photos(shared_dir: Path) -> list[Path]:
    paths = []
    for folder in ("samples", "samples-hard"):
        for line in (shared_dir / folder / "MANIFEST.tsv").read_text().splitlines()[1:]:
            if line.startswith("person/"):
                paths.append(shared_dir / folder / line.split("\t")[0])
    return paths


def _check_photo(path: Path, analyzer) -> str:
    """Run one photo through the acceptance rule; return "usable", "warning" or "error"."""
    image = np.asarray(Image.open(path).convert("RGB"))
    try:
        parts = analyzer(image)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = garment_from_worn_photo(image, body_parts=parts, strict=False)
    except MVVTONError as error:
        assert str(error), path.name  # typed, with a message
        return "error"
    emitted = [w for w in caught if issubclass(w.category, WornGarmentWarning)]
    assert len(emitted) == len(result.warnings), path.name
    mask = result.photo_mask > 0.5
    assert mask.shape == image.shape[:2] and mask.mean() > 0.01, path.name  # never a near-empty garment
    assert (result.image[result.mask < 0.5] == 255).all(), path.name
    if result.warnings:
        return "warning"
    torso, below = _torso_and_hip(parts.keypoints, mask.shape)
    torso &= parts.person_mask > 0.5
    coverage = (torso & mask).sum() / torso.sum()
    below_fraction = (mask & below).sum() / mask.sum()
    assert coverage >= 0.7 and below_fraction < 0.05, (path.name, coverage, below_fraction)
    assert result.quality.skin_fraction <= MAX_SKIN_FRACTION, (path.name, result.quality)
    return "usable"


def test_worn_garment_on_a_shared_photo(shared_dir, analyzer):
    path = shared_dir / "samples" / "person" / "idmvton_00055_00_front.jpg"  # lilac VANS tee, tucked into jeans
    assert _check_photo(path, analyzer) == "usable"
    image = np.asarray(Image.open(path).convert("RGB"))
    result = garment_from_worn_photo(image, analyzer=analyzer)
    m = result.photo_mask > 0.5
    # The jeans (below the tee's hem, centre of the photo) are not part of the garment.
    assert not m[900:1000, 300:450].any()
    assert result.view is GarmentView.FRONT


@pytest.mark.slow
def test_worn_garment_on_all_shared_photos(shared_dir, analyzer):
    outcomes = {path.name: _check_photo(path, analyzer) for path in _shared_person_photos(shared_dir)}
    assert len(outcomes) == 16
    for name, outcome in outcomes.items():
        if any(key in name for key in USABLE):
            assert outcome == "usable", (name, outcome)
    # Bare skin kept in the garment (checked by eye): the upper arm of the cami, the bare back of the halter top.
    for key in ("pidm_reference_img_0", "id0000374902"):
        assert [outcome for name, outcome in outcomes.items() if key in name] == ["warning"], key
    # A 3/4 back view looking over the shoulder: BACK by BlazePose's landmarks (2-D keypoints alone say FRONT).
    image = np.asarray(Image.open(shared_dir / "samples-hard" / "person" /
                                  "posetransfer_WOMEN-Blouses-Shirts-id0000234303_back.jpg").convert("RGB"))  # fmt: skip
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = garment_from_worn_photo(image, analyzer=analyzer, strict=False)
    assert result.view is GarmentView.BACK and any("the view is uncertain" in note for note in result.warnings)
