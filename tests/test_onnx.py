"""ONNX export: the graph run by ONNX Runtime equals the fixed-depth PyTorch LightGlue on real
ALIKED features of real photo pairs, with the official weights."""

import onnx
import pytest
import torch
import torch.nn.functional as F

from specglue import LightGlue, cli
from specglue.export import OnnxMatcher, export_onnx
from specglue.specular import detect

from .conftest import load_rgb, pair_paths

FIXED = {"depth_confidence": -1, "width_confidence": -1}
MARGIN = 4  # px; stored in the graph's metadata and used by OnnxMatcher for specular_mask


def _features(reference_features, data_dir, pair, max_kpts, long_side=640):
    p0, p1 = pair_paths(data_dir, pair)
    return tuple(reference_features("aliked", p, max_kpts, long_side) for p in (p0, p1))


def _run(matcher, v0, v1):
    with torch.inference_mode():
        return matcher({"image0": v0, "image1": v1})


def _take(view, count):
    """The first ``count`` keypoints of a feature dict."""
    return {**view, "keypoints": view["keypoints"][:, :count], "descriptors": view["descriptors"][:, :count]}


def _assert_same(onnx_out, torch_out, min_matches):
    assert torch.equal(onnx_out["matches0"], torch_out["matches0"])
    assert torch.equal(onnx_out["matches1"], torch_out["matches1"])
    for key in ("matching_scores0", "matching_scores1"):
        assert onnx_out[key].shape == torch_out[key].shape
        diff = (onnx_out[key] - torch_out[key]).abs().amax().item() if torch_out[key].numel() else 0.0
        assert diff <= 1e-4, f"{key} differ by {diff}"
    assert onnx_out["stop"] == torch_out["stop"]
    assert torch.equal(onnx_out["stops"], torch_out["stops"])
    for (a, b), (c, d) in zip(zip(onnx_out["matches"], onnx_out["scores"]),
                              zip(torch_out["matches"], torch_out["scores"])):
        assert torch.equal(a, c) and torch.allclose(b, d, atol=1e-4)
    assert int((torch_out["matches0"] > -1).sum()) >= min_matches  # a meaningful comparison


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """PyTorch's two OpenMP threads run this file about 2x slower than one on the shared 2-core
    machine (ONNX Runtime keeps its own pool); results do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    return LightGlue(features="aliked", specular_mode="hard", mask_margin=MARGIN, **FIXED).eval()


@pytest.fixture(scope="module")
def plain_path(tmp_path_factory):
    """The official ALIKED weights without specular inputs, exported through the CLI entry point
    (``specglue export-onnx``), so every parity test below also covers the CLI."""
    out = tmp_path_factory.mktemp("onnx") / "cli" / "aliked.onnx"
    assert cli.main(["export-onnx", "--features", "aliked", str(out), "--opset", "18"]) == 0
    return out


@pytest.fixture(scope="module")
def sacre(reference_features, data_dir):
    """A real outdoor pair (640 px, 1024 ALIKED keypoints each)."""
    return _features(reference_features, data_dir, "sacre_coeur", 1024)


@pytest.fixture(scope="module")
def specular_path(model, tmp_path_factory):
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "aliked_specular.onnx", with_specular=True)


@pytest.fixture(scope="module")
def plain(plain_path):
    return OnnxMatcher(plain_path)


@pytest.fixture(scope="module")
def specular(specular_path):
    return OnnxMatcher(specular_path)


@pytest.fixture(scope="module")
def laparoscopic(reference_features, data_dir):
    """A real surgical pair (320 x 240, 400 ALIKED keypoints) with its detected highlights
    [1, H, W] bool."""
    views = _features(reference_features, data_dir, "laparoscopic", 400, 320)
    masks = [detect(load_rgb(p, 640)) for p in pair_paths(data_dir, "laparoscopic")]
    return views, masks


@pytest.mark.slow
class TestExport:
    def test_graph(self, specular_path):
        graph = onnx.load(str(specular_path))
        onnx.checker.check_model(graph, full_check=True)
        opset = max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))
        assert opset >= 17
        dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
                for v in [*graph.graph.input, *graph.graph.output]}
        assert dims == {
            "keypoints0": ["B", "M", 2], "keypoints1": ["B", "N", 2],
            "descriptors0": ["B", "M", 128], "descriptors1": ["B", "N", 128],
            "image_size0": ["B", 2], "image_size1": ["B", 2],
            "specularity0": ["B", "M"], "specularity1": ["B", "N"],
            "matches0": ["B", "M"], "matches1": ["B", "N"],
            "matching_scores0": ["B", "M"], "matching_scores1": ["B", "N"],
        }
        types = {v.name: v.type.tensor_type.elem_type for v in graph.graph.output}
        assert types["matches0"] == onnx.TensorProto.INT64
        assert types["matching_scores0"] == onnx.TensorProto.FLOAT
        meta = {p.key: p.value for p in graph.metadata_props}
        assert meta["specglue.n_layers"] == "9" and meta["specglue.mask_margin"] == str(MARGIN)

    def test_export_leaves_model_in_eval_mode(self, plain_path, model):
        assert not model.training

    def test_cli(self, plain_path, plain):
        graph = onnx.load(str(plain_path))
        onnx.checker.check_model(graph, full_check=True)
        assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) == 18
        assert [v.name for v in graph.graph.input] == ["keypoints0", "keypoints1", "descriptors0",
                                                       "descriptors1", "image_size0", "image_size1"]
        assert not plain.with_specular and plain.n_layers == 9 and plain.input_dim == 128
        assert list(plain_path.parent.iterdir()) == [plain_path]  # no temporary file left

    @pytest.mark.parametrize("kwargs, error, pattern", [
        ({"opset": 16}, ValueError, "opset must be >= 17"),
        ({"with_specular": True, "_mode": "soft"}, ValueError, "specular_mode='soft'"),
    ])
    def test_bad_export(self, tmp_path, kwargs, error, pattern):
        mode = kwargs.pop("_mode", "hard")
        small = LightGlue(features=None, input_dim=64, descriptor_dim=64, n_layers=1, specular_mode=mode)
        with pytest.raises(error, match=pattern):
            export_onnx(small, tmp_path / "x.onnx", **kwargs)
        assert not (tmp_path / "x.onnx").exists()

    def test_not_a_lightglue(self, tmp_path):
        with pytest.raises(TypeError, match="specglue.LightGlue"):
            export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx")


@pytest.mark.slow
class TestParity:
    def test_real_pair(self, model, plain, sacre):
        v0, v1 = sacre
        assert v0["keypoints"].shape[1] >= 900 and v1["keypoints"].shape[1] >= 900
        _assert_same(_run(plain, v0, v1), _run(model, v0, v1), min_matches=200)

    def test_dynamic_keypoint_counts(self, model, plain, sacre, m=300, n=700):
        v0, v1 = _take(sacre[0], m), _take(sacre[1], n)
        out = _run(plain, v0, v1)
        assert out["matches0"].shape == (1, m) and out["matches1"].shape == (1, n)
        _assert_same(out, _run(model, v0, v1), min_matches=50)

    def test_padded_batch(self, model, plain, sacre, laparoscopic):
        """Two pairs of different sizes and keypoint counts, padded: runs pair by pair."""
        a0, a1 = _take(sacre[0], 300), _take(sacre[1], 400)
        b0, b1 = _take(laparoscopic[0][0], 350), _take(laparoscopic[0][1], 250)

        def pad(views):
            lengths = [v["keypoints"].shape[1] for v in views]
            n = max(lengths)
            return {
                "keypoints": torch.cat([F.pad(v["keypoints"], (0, 0, 0, n - k)) for v, k in zip(views, lengths)]),
                "descriptors": torch.cat([F.pad(v["descriptors"], (0, 0, 0, n - k)) for v, k in zip(views, lengths)]),
                "lengths": torch.tensor(lengths),
                "image_size": torch.cat([v["image_size"] for v in views]),
            }

        v0, v1 = pad([a0, b0]), pad([a1, b1])
        _assert_same(_run(plain, v0, v1), _run(model, v0, v1), min_matches=100)

    def test_unpadded_batch(self, model, plain, sacre, laparoscopic):
        """B = 2 in one graph call (the batch axis is dynamic)."""
        a0, a1 = (_take(v, 200) for v in sacre)
        b0, b1 = (_take(v, 200) for v in laparoscopic[0])
        v0 = {k: torch.cat([a0[k], b0[k]]) for k in ("keypoints", "descriptors", "image_size")}
        v1 = {k: torch.cat([a1[k], b1[k]]) for k in ("keypoints", "descriptors", "image_size")}
        _assert_same(_run(plain, v0, v1), _run(model, v0, v1), min_matches=100)


@pytest.mark.slow
class TestSpecular:
    def test_keypoint_specular_equals_hard_mode(self, model, specular, laparoscopic):
        (v0, v1), (m0, m1) = laparoscopic
        from specglue.specular import sample_mask

        s0 = sample_mask(m0, v0["keypoints"], MARGIN)
        s1 = sample_mask(m1, v1["keypoints"], MARGIN)
        assert int((s0 >= 0.5).sum()) >= 25 and int((s1 >= 0.5).sum()) >= 25  # real highlights
        v0, v1 = {**v0, "keypoint_specular": s0}, {**v1, "keypoint_specular": s1}
        out, ref = _run(specular, v0, v1), _run(model, v0, v1)
        _assert_same(out, ref, min_matches=30)
        assert not (out["matches0"][s0 >= 0.5] > -1).any()
        assert torch.equal(out["specularity0"], ref["specularity0"])

    def test_specular_mask_is_sampled_with_the_margin(self, model, specular, laparoscopic):
        (v0, v1), (m0, m1) = laparoscopic
        v0, v1 = {**v0, "specular_mask": m0}, {**v1, "specular_mask": m1.float()}
        out, ref = _run(specular, v0, v1), _run(model, v0, v1)
        assert torch.equal(out["specularity0"], ref["specularity0"])
        assert torch.equal(out["specularity1"], ref["specularity1"])
        assert int((out["specularity0"] >= 0.5).sum()) >= 25
        _assert_same(out, ref, min_matches=30)

    def test_fully_specular_side(self, model, specular, laparoscopic):
        """Every key masked: zero messages, no NaN, no match, as PyTorch (stop 0)."""
        (v0, v1), _ = laparoscopic
        v0 = {**v0, "keypoint_specular": torch.ones(v0["keypoints"].shape[:2])}
        out = _run(specular, v0, v1)
        assert (out["matches0"] == -1).all() and (out["matches1"] == -1).all()
        assert torch.isfinite(out["matching_scores1"]).all() and (out["matching_scores1"] == 0).all()
        assert out["stop"] == 0
        _assert_same(out, _run(model, v0, v1), min_matches=0)


@pytest.mark.slow
class TestScaleOri:
    def test_sift_like_model(self, tmp_path, sacre):
        """add_scale_ori graphs take scales/oris (random 2-layer weights: a wiring test)."""
        small = LightGlue(features=None, input_dim=128, add_scale_ori=True, n_layers=2, **FIXED).eval()
        matcher = OnnxMatcher(export_onnx(small, tmp_path / "sift.onnx"))
        assert matcher.input_names[6:] == ["scales0", "oris0", "scales1", "oris1"]
        v0, v1 = _take(sacre[0], 200), _take(sacre[1], 260)
        g = torch.Generator().manual_seed(0)
        for v in (v0, v1):
            n = v["keypoints"].shape[1]
            v["scales"] = torch.rand(1, n, generator=g) * 4
            v["oris"] = (torch.rand(1, n, generator=g) - 0.5) * 6
        _assert_same(_run(matcher, v0, v1), _run(small, v0, v1), min_matches=0)
        with pytest.raises(ValueError, match="missing 'oris'"):
            _run(matcher, v0, {k: v for k, v in v1.items() if k != "oris"})


@pytest.mark.slow
class TestInputs:
    @pytest.fixture
    def views(self, sacre):
        return tuple(_take(v, 128) for v in sacre)

    @pytest.mark.parametrize("update, error, pattern", [
        ({"keypoint_specular": torch.zeros(1, 128)}, ValueError,
         r"\['keypoint_specular'\] was given but .* exported without specular inputs"),
        ({"specular_mask": torch.zeros(1, 480, 640, dtype=torch.bool)}, ValueError,
         r"\['specular_mask'\] was given"),
        ({"descriptors": torch.zeros(1, 128, 256)}, ValueError,
         r"descriptors'\] has width 256 .* \[B, M, 128\]"),
        ({"keypoints": torch.zeros(1, 128, 3)}, ValueError, r"keypoints'\] must have shape \[B, M, 2\]"),
        ({"image_size": None}, ValueError, "needs 'image_size'"),
        ({"image_size": torch.tensor([[0.0, 480.0]])}, ValueError, "image_size'\\] must be positive"),
        ({"lengths": torch.tensor([129])}, ValueError, r"lengths'\] must lie in \[0, 128\]"),
        ({"keypoints": torch.full((1, 128, 2), float("nan"))}, ValueError, "NaN"),
    ])
    def test_bad_input(self, plain, views, update, error, pattern):
        v0, v1 = views
        with pytest.raises(error, match=pattern):
            _run(plain, {**v0, **update}, v1)

    def test_bad_specular_input(self, specular, views):
        v0, v1 = views
        with pytest.raises(ValueError, match=r"keypoint_specular'\] must lie in \[0, 1\]"):
            _run(specular, {**v0, "keypoint_specular": torch.full((1, 128), 2.0)}, v1)
        with pytest.raises(ValueError, match=r"specular_mask'\] has shape \(1, 10, 10\) but image_size"):
            _run(specular, {**v0, "specular_mask": torch.zeros(1, 10, 10, dtype=torch.bool)}, v1)

    def test_missing_image(self, plain, views):
        with pytest.raises(ValueError, match="data is missing 'image1'"):
            plain({"image0": views[0]})

    @pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter's notice
    def test_not_a_specglue_graph(self, tmp_path):
        path = tmp_path / "linear.onnx"
        torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(path), dynamo=False)
        with pytest.raises(ValueError, match="not written by specglue"):
            OnnxMatcher(path)
        with pytest.raises(FileNotFoundError):
            OnnxMatcher(tmp_path / "missing.onnx")

    @pytest.mark.parametrize("m, n", [(0, 50), (50, 0), (0, 0)])
    def test_empty_side(self, model, plain, views, m, n):
        v0, v1 = _take(views[0], m), _take(views[1], n)
        out = _run(plain, v0, v1)
        assert out["matches0"].shape == (1, m) and out["matches1"].shape == (1, n)
        assert out["matches"][0].shape == (0, 2) and out["stop"] == 0
        _assert_same(out, _run(model, v0, v1), min_matches=0)

    def test_image_instead_of_size(self, model, plain, views):
        v0, v1 = views
        w, h = (int(x) for x in v0["image_size"][0])
        v0 = {k: v for k, v in v0.items() if k != "image_size"}
        v0["image"] = torch.zeros(1, 3, h, w)
        _assert_same(_run(plain, v0, v1), _run(model, v0, v1), min_matches=10)
