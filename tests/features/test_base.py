"""The shared extractor contract: conventions, resizing, masking, registry and input checks."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Dict, List, Optional

import kornia
import numpy as np
import pytest
import torch

import specglue.features as features
from specglue.features import EXTRACTORS, SIFT, build_extractor, max_pool_nms
from specglue.features.base import Extractor, network_size, shrink

from . import GLINT_FRAME, read_rgb, to_tensor


class Centroid(Extractor):
    """A one-keypoint extractor: the intensity centroid of a grey image, in its pixels."""

    default_conf = {
        "max_num_keypoints": 1,  # unused
        "detection_threshold": 0.0,  # unused
        "resize": None,  # long side in px; None = no resize
        "upsample": False,  # enlarge images smaller than resize
        "mask_margin": 0,  # px
        "roi_margin": 0,  # px
    }
    input_channels = 1

    @property
    def descriptor_dim(self) -> int:
        return 2

    def _extract_batch(self, image: torch.Tensor, region: Optional[torch.Tensor] = None
                       ) -> List[Dict[str, torch.Tensor]]:
        self.network_input_size = tuple(image.shape[-2:])  # (H, W) the network saw
        out = []
        for grey in image[:, 0]:
            h, w = grey.shape
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            total = grey.sum()
            kp = torch.stack([(xs * grey).sum() / total, (ys * grey).sum() / total])[None]
            out.append({"keypoints": kp, "keypoint_scores": torch.ones(1),
                        "descriptors": torch.ones(1, 2)})
        return out


class Fixed(Extractor):
    """Returns the keypoints given to it, whatever the image."""

    default_conf = {
        "max_num_keypoints": None,  # unused
        "detection_threshold": 0.0,  # unused
        "resize": None,  # unused here
        "upsample": False,  # unused here
        "mask_margin": 0,  # px
        "roi_margin": 0,  # px
        "keypoints": [],  # the [N, 2] keypoints to return
    }

    @property
    def descriptor_dim(self) -> int:
        return 3

    def _extract_batch(self, image: torch.Tensor, region: Optional[torch.Tensor] = None
                       ) -> List[Dict[str, torch.Tensor]]:
        kp = torch.tensor(self.conf["keypoints"], dtype=torch.float32).reshape(-1, 2)
        n = len(kp)
        return [{"keypoints": kp, "keypoint_scores": torch.arange(n, dtype=torch.float32),
                 "descriptors": torch.ones(n, 3)} for _ in range(image.shape[0])]


def blob(h: int, w: int, x0: float, y0: float, sigma: float = 3.0) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * sigma**2)).float()[None]


class TestResizeMapping:
    @pytest.mark.parametrize("resize", [64, 200, 77])
    def test_half_pixel_convention(self, resize):
        """A blob centred at (x0, y0) is found there after resizing and mapping back."""
        x0, y0 = 40.3, 25.7
        image = blob(96, 128, x0, y0)
        plain = Centroid().extract(image)["keypoints"][0, 0]
        assert torch.allclose(plain, torch.tensor([x0, y0]), atol=1e-3)
        mapped = Centroid(resize=resize, upsample=True).extract(image)["keypoints"][0, 0]
        # mapping without the half-pixel shift would be off by 0.5 * (1 / scale - 1) px
        assert torch.allclose(mapped, torch.tensor([x0, y0]), atol=0.05), mapped

    def test_resized_keypoints_on_same_features(self, data_dir):
        """SIFT at half resolution, mapped back, lands on the full-resolution keypoints."""
        image = read_rgb(data_dir / "06_oxford_graffiti_homography/img1.png")  # 800 x 640
        full = SIFT(resize=None, max_num_keypoints=2000).extract(image)["keypoints"][0]
        half = SIFT(resize=400, max_num_keypoints=1000).extract(image)["keypoints"][0]
        dist = torch.cdist(half.double(), full.double()).min(1).values
        assert len(half) > 500
        assert float((dist < 2.0).float().mean()) > 0.7
        # a mapping that forgets the scale puts them nowhere near
        wrong = torch.cdist(half.double() / 2, full.double()).min(1).values
        assert float((wrong < 2.0).float().mean()) < 0.3


class TestResolutionPolicy:
    """resize is the largest long side; smaller images are not enlarged unless upsample."""

    @pytest.mark.parametrize("resize", [320, 640, 1024])
    def test_network_size_is_kornias(self, resize):
        """The size benchmarks compute for their thresholds is the size the resize produces."""
        for h, w in [(1080, 1920), (1920, 1080), (480, 640), (333, 1001), (997, 641), (700, 700)]:
            size = network_size(h, w, resize, upsample=True)
            image = torch.zeros(1, 1, h, w)
            assert tuple(kornia.geometry.transform.resize(image, resize, side="long").shape[-2:]) == size
            small, (sx, sy) = shrink(image, resize, upsample=True)
            assert tuple(small.shape[-2:]) == size and (sx, sy) == (size[1] / w, size[0] / h)
        assert network_size(480, 640, 1024) is None and network_size(480, 640, None, upsample=True) is None

    def test_small_image_is_not_enlarged(self):
        x0, y0 = 40.3, 25.7
        image = blob(96, 128, x0, y0)
        extractor = Centroid(resize=1024)
        kp = extractor.extract(image)["keypoints"][0, 0]
        assert extractor.network_input_size == (96, 128)
        assert torch.allclose(kp, torch.tensor([x0, y0]), atol=1e-3)

    def test_upsample_enlarges_as_official(self):
        extractor = Centroid(resize=256, upsample=True)
        extractor.extract(blob(96, 128, 40.3, 25.7))
        assert extractor.network_input_size == (192, 256)
        official = Centroid.official(resize=256)
        assert official.conf["upsample"] is True
        official.extract(blob(96, 128, 40.3, 25.7))
        assert official.network_input_size == (192, 256)

    def test_large_image_is_shrunk(self):
        extractor = Centroid(resize=64)
        out = extractor.extract(blob(96, 128, 40.3, 25.7))
        assert extractor.network_input_size == (48, 64)
        assert out["image_size"].tolist() == [[128.0, 96.0]]  # the input image's (W, H)

    @pytest.mark.parametrize("shape, resize, upsample", [((8, 8), 1024, False), ((8, 8), 1024, True),
                                                         ((31, 200), None, False), ((60, 1000), 400, False)])
    def test_too_small_is_refused(self, shape, resize, upsample):
        """8x8 upsampled to 1024 px would give interpolation artefacts as keypoints."""
        image = torch.rand(3, *shape)
        with pytest.raises(ValueError, match=r"too small for Centroid.*at least 32 px"):
            Centroid(resize=resize, upsample=upsample).extract(image)

    def test_smallest_accepted_size(self):
        extractor = Centroid(resize=1024)
        extractor.extract(blob(32, 32, 10.0, 12.0))
        assert extractor.network_input_size == (32, 32)


class TestSpecularMask:
    def test_drops_nearest_pixel_in_dilated_mask(self):
        keypoints = [[10.0, 10.0], [14.6, 10.2], [30.0, 10.0], [30.0, 20.5]]
        mask = torch.zeros(32, 48, dtype=torch.bool)
        mask[10, 15] = True  # the nearest pixel of the second keypoint
        ext = Fixed(keypoints=keypoints)
        image = torch.rand(3, 32, 48)
        kept = ext.extract(image, specular_mask=mask)
        assert kept["keypoints"][0].tolist() == [keypoints[i] for i in (0, 2, 3)]
        assert kept["keypoint_scores"][0].tolist() == [0.0, 2.0, 3.0]
        # within 5 px (square window): the first keypoint goes too
        kept = Fixed(keypoints=keypoints, mask_margin=5).extract(image, specular_mask=mask)
        assert kept["keypoints"][0].tolist() == [keypoints[i] for i in (2, 3)]
        # a batch mask [B, H, W], one image masked, the other not: padding appears
        batch_mask = torch.stack([mask, torch.zeros_like(mask)])
        kept = ext.extract(torch.rand(2, 3, 32, 48), specular_mask=batch_mask)
        assert kept["keypoint_mask"].tolist() == [[True, True, True, False], [True] * 4]
        assert kept["keypoints"][0, 3].tolist() == [0.0, 0.0]
        assert kept["descriptors"][0, 3].tolist() == [0.0, 0.0, 0.0]

    @pytest.mark.parametrize("shape", [(31, 48), (48, 32), (2, 32, 48), (1, 1, 31, 48)])
    def test_wrong_mask_shape(self, shape):
        with pytest.raises(ValueError, match=r"specular_mask.*\[32, 48\].*got"):
            mask = torch.zeros(shape, dtype=torch.bool)
            Fixed().extract(torch.rand(3, 32, 48), specular_mask=mask)

    def test_wrong_mask_dtype(self):
        with pytest.raises(ValueError, match="specular_mask must be bool"):
            Fixed().extract(torch.rand(3, 32, 48), specular_mask=torch.zeros(32, 48))


class TestInputs:
    def test_numpy_and_torch_agree(self, data_dir):
        image = read_rgb(data_dir / GLINT_FRAME.replace("00", "03"))
        sift = SIFT(resize=None)
        a, b = sift.extract(image), sift.extract(to_tensor(image))
        c = sift({"image": to_tensor(image)[None]})
        for key in ("keypoints", "descriptors", "image_size"):
            assert torch.equal(a[key], b[key]) and torch.equal(a[key], c[key]), key
        assert a["image_size"].tolist() == [[320.0, 240.0]]
        assert a["keypoint_mask"].all() and a["keypoints"].shape[1] > 50

    @pytest.mark.parametrize(
        "image, message",
        [
            (torch.rand(32, 48), r"\[B, C, H, W\].*\(32, 48\)"),
            (torch.rand(1, 4, 32, 48), r"C in \(1, 3\).*\(1, 4, 32, 48\)"),
            (torch.randint(0, 255, (3, 32, 48), dtype=torch.uint8), "float"),
            (torch.rand(3, 32, 48) * 255, r"\[0, 1\]"),
            (np.zeros((32, 48, 3), np.float32), "uint8"),
            (np.zeros((32, 48, 4), np.uint8), r"\(32, 48, 4\)"),
            ([[0.0]], "torch.Tensor or a numpy array"),
        ],
    )
    def test_bad_image(self, image, message):
        with pytest.raises(ValueError, match=message):
            Fixed().extract(image)

    def test_forward_needs_image(self):
        with pytest.raises(ValueError, match="'image'"):
            Fixed()({"img": torch.rand(1, 3, 8, 8)})


class TestConfig:
    def test_unknown_key_is_rejected(self):
        with pytest.raises(ValueError, match=r"max_num_keypionts.*known keys"):
            SIFT(max_num_keypionts=10)

    def test_conf_is_read_only(self):
        with pytest.raises(TypeError):
            SIFT().conf["resize"] = 10  # type: ignore[index]

    @pytest.mark.parametrize("conf", [{"resize": 0}, {"resize": 12.5}, {"mask_margin": -1}])
    def test_bad_values(self, conf):
        with pytest.raises(ValueError):
            SIFT(**conf)

    def test_every_default_key_is_commented(self):
        """STYLE: one table of defaults, with a comment on every key."""
        from specglue.features.base import PREPROCESSING_CONF

        for cls in EXTRACTORS.values():
            # its own keys in its module, the shared ones where the base defines them
            for module, table, keys in ((cls.__module__, "default_conf:", set(cls.default_conf) - set(PREPROCESSING_CONF)),
                                        ("specglue.features.base", "PREPROCESSING_CONF:", set(PREPROCESSING_CONF))):
                source = Path(sys.modules[module].__file__).read_text().splitlines()
                start = next(i for i, line in enumerate(source) if table in line)
                for key in keys:
                    line = next(s for s in source[start:] if f'"{key}":' in s)
                    assert "#" in line, (cls.__name__, key)
            for key in ("max_num_keypoints", "detection_threshold", "resize", "upsample", "mask_margin"):
                assert key in cls.default_conf, (cls.__name__, key)


class TestRegistry:
    def test_names(self):
        assert EXTRACTORS == {"aliked": features.ALIKED, "disk": features.DISK,
                              "sift": features.SIFT, "superpoint": features.SuperPoint, "xfeat": features.XFeat}
        assert isinstance(build_extractor("sift", max_num_keypoints=10), SIFT)

    def test_unknown_name_lists_known(self):
        with pytest.raises(ValueError, match=r"'orb'.*aliked.*disk.*sift.*superpoint"):
            build_extractor("orb")


class TestMaxPoolNMS:
    def test_hand_worked(self):
        scores = torch.zeros(1, 5, 7)
        scores[0, 2, 1] = 0.9
        scores[0, 2, 2] = 0.5  # next to a stronger peak: suppressed
        scores[0, 2, 5] = 0.7  # 3 px away: kept with radius 1 and 2
        scores[0, 0, 3] = 0.6  # a maximum at r=1; at r=2 both peaks lie in its window
        out = max_pool_nms(scores, 1)
        assert out.nonzero().tolist() == [[0, 0, 3], [0, 2, 1], [0, 2, 5]]
        out = max_pool_nms(scores, 2)
        # 0.6 lies within 2 px of the kept peaks, so the extra rounds do not restore it
        assert out.nonzero().tolist() == [[0, 2, 1], [0, 2, 5]]
        assert torch.equal(max_pool_nms(scores, 0), scores)


class TestLibraryHygiene:
    def test_no_print_no_assert_no_torchvision(self):
        folder = Path(features.__file__).parent
        for path in sorted(folder.glob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                assert not isinstance(node, ast.Assert), f"{path.name}:{node.lineno} assert"
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id != "print", f"{path.name}:{node.lineno} print"
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                    assert not any(n.startswith("torchvision") for n in names), path.name

    def test_extract_writes_nothing_to_stdout(self, capsys, data_dir):
        SIFT(resize=None).extract(np.zeros((40, 40, 3), np.uint8))
        Centroid(resize=48).extract(blob(48, 64, 20.0, 20.0))
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == ""


# ---------------------------------------------------------------------------------------------
# region of interest (an endoscope's field of view)


def _endoscope_frame(data_dir: Path, size=(640, 480), radius=220) -> tuple:
    """A real photo seen through a circular stop: black outside a centred circle, JPEG-coded;
    returns the frame and the circle's (centre x, centre y, radius)."""
    import cv2

    w, h = size
    photo = read_rgb(data_dir / "01_lightglue_assets" / "sacre_coeur1.jpg")
    photo = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[:h, :w]
    photo[(xx - w / 2 + 0.5) ** 2 + (yy - h / 2 + 0.5) ** 2 > radius ** 2] = 0
    ok, jpeg = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED), (w / 2 - 0.5, h / 2 - 0.5, radius)


def _distance_inside_rim(keypoints: torch.Tensor, circle: tuple) -> np.ndarray:
    """Distance (px) of each keypoint from the rim, positive inside the circle."""
    cx, cy, r = circle
    kpts = keypoints.reshape(-1, 2).numpy()
    return r - np.hypot(kpts[:, 0] - cx, kpts[:, 1] - cy)


@pytest.mark.parametrize("name", ["aliked", "disk", "sift"])
def test_roi_auto_keeps_keypoints_off_the_rim(data_dir, name):
    """On a frame with a black circular border the official settings put keypoints on the rim;
    with the estimated field of view as roi none lies outside it or within the margin."""
    from specglue.features.roi import estimate_roi

    frame, circle = _endoscope_frame(data_dir)
    official = EXTRACTORS[name].official(max_num_keypoints=1024, resize=None)
    on_rim = _distance_inside_rim(official.extract(frame)["keypoints"], circle)
    assert (on_rim < 4).sum() >= {"aliked": 20, "disk": 2, "sift": 20}[name]  # the rim's edge makes corners
    roi = estimate_roi(frame)
    assert roi is not None
    extractor = build_extractor(name, max_num_keypoints=1024)
    out = extractor.extract(frame, roi=roi)
    kpts = out["keypoints"][0]
    assert len(kpts) > 100
    xy = torch.round(kpts).long()
    inside_roi = torch.from_numpy(roi)[xy[:, 1], xy[:, 0]]
    assert bool(inside_roi.all())
    margin = extractor.conf["roi_margin"]
    assert _distance_inside_rim(kpts, circle).min() > margin - 1.5  # roi edge within a px of the circle


def test_roi_margin_is_in_network_pixels_and_budget_goes_inside(data_dir):
    """Shrunk 2x for the network, the 4 px margin keeps keypoints 8 input px inside the rim;
    in top-k mode the whole budget lands inside the region."""
    frame, circle = _endoscope_frame(data_dir, size=(1280, 960), radius=440)
    yy, xx = np.mgrid[:960, :1280]
    roi = (xx - circle[0]) ** 2 + (yy - circle[1]) ** 2 <= circle[2] ** 2
    extractor = build_extractor("aliked", max_num_keypoints=512, resize=640, detection_threshold=0.0)
    inside = _distance_inside_rim(extractor.extract(frame, roi=roi)["keypoints"], circle)
    assert len(inside) == 512
    assert inside.min() >= 2 * extractor.conf["roi_margin"] - 1.5
    without = _distance_inside_rim(extractor.extract(frame)["keypoints"], circle)
    assert (without < 8).sum() > 0


def test_roi_of_the_wrong_size_is_refused():
    extractor = build_extractor("sift", max_num_keypoints=64)
    image = np.zeros((64, 96, 3), np.uint8)
    with pytest.raises(ValueError, match=r"roi must have the image.s shape .* got \[1, 64, 64\]"):
        extractor.extract(image, roi=np.ones((64, 64), bool))
