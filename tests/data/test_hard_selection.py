import numpy as np

from mvvton.constants import COCO18_INDEX, GarmentView
from mvvton.data.sample import hard_garment_view


def side_keypoints(right_arm_x: float, left_arm_x: float) -> np.ndarray:
    keypoints = np.zeros((18, 3), dtype=np.float32)
    for name, x in (("right_shoulder", right_arm_x), ("right_elbow", right_arm_x),
                    ("left_shoulder", left_arm_x), ("left_elbow", left_arm_x)):  # fmt: skip
        keypoints[COCO18_INDEX[name]] = (x, 50.0, 1.0)
    return keypoints


def test_side_view_follows_arm_order_like_the_pipeline():
    assert hard_garment_view("side", side_keypoints(60, 40)) is GarmentView.BACK  # right arm further right: turned away
    assert hard_garment_view("side", side_keypoints(40, 60)) is GarmentView.FRONT
    assert hard_garment_view("side", None) is GarmentView.FRONT  # no keypoints: the original test-time rule
    assert hard_garment_view("back", side_keypoints(40, 60)) is GarmentView.BACK
    assert hard_garment_view("front", side_keypoints(60, 40)) is GarmentView.FRONT
