"""The oneDNN CPU kernels equal PyTorch's, are taken only where they apply, and are chosen by measurement."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from specglue import LightGlue
from specglue.model import lightglue as lightglue_module
from specglue.ops import choice, cpu, kernels
from specglue.ops.choice import use_kernels
from specglue.ops.kernels import Linear, attention, matmul_nt, onednn_dtype

from ..conftest import pair_paths


@pytest.fixture(autouse=True)
def _unpinned(monkeypatch):
    """This module tests the kernels themselves: the suite's pin (conftest) is lifted."""
    monkeypatch.delenv(choice.KERNELS_ENV)

pytestmark = pytest.mark.skipif(not cpu.HAS_ONEDNN_LINEAR, reason="this torch build has no oneDNN")


def sdpa_reference(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask).nan_to_num()


def test_linear_equals_f_linear_and_keeps_state_dict_keys():
    layer = Linear(256, 768)
    x = torch.randn(2, 300, 256)
    with torch.inference_mode():
        assert onednn_dtype(x, layer.weight, layer.bias) == torch.float32
        out = layer(x)
    torch.testing.assert_close(out, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    assert set(layer.state_dict()) == {"weight", "bias"}
    assert layer(torch.zeros(1, 0, 256)).shape == (1, 0, 768)


def test_matmul_nt_equals_bmm():
    a, b = torch.randn(3, 70, 64), torch.randn(3, 90, 64)
    with torch.inference_mode():
        out = matmul_nt(a, b)
    torch.testing.assert_close(out, a @ b.transpose(1, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_attention_equals_sdpa(mask_kind):
    q, k, v = torch.randn(2, 4, 50, 64), torch.randn(2, 4, 70, 64), torch.randn(2, 4, 70, 64)
    mask = None
    if mask_kind is not None:
        keep = torch.rand(2, 1, 1, 70) > 0.3
        keep[1, ..., :] = False  # pair 1: every key masked -> zero messages, not NaN
        mask = keep if mask_kind == "bool" else torch.zeros(keep.shape).masked_fill(~keep, -torch.inf)
    with torch.inference_mode():
        out = attention(q, k, v, mask)
    torch.testing.assert_close(out, sdpa_reference(q, k, v, mask), rtol=1e-5, atol=1e-5)
    if mask is not None:
        assert torch.isfinite(out).all() and (out[1] == 0).all()


def test_attention_with_per_query_mask_in_score_blocks(monkeypatch):
    """Blocks of query rows (bounded memory) give the same result as one block."""
    monkeypatch.setattr(kernels, "_SCORE_BLOCK", 7 * 40)  # 7 query rows per block
    q, k, v = torch.randn(1, 2, 33, 16), torch.randn(1, 2, 40, 16), torch.randn(1, 2, 40, 16)
    mask = torch.rand(1, 2, 33, 40) > 0.5
    with torch.inference_mode():
        out = attention(q, k, v, mask)
    torch.testing.assert_close(out, sdpa_reference(q, k, v, mask), rtol=1e-5, atol=1e-5)


def test_attention_mask_with_fewer_dims_broadcasts_like_sdpa():
    q, k, v = torch.randn(2, 4, 12, 8), torch.randn(2, 4, 9, 8), torch.randn(2, 4, 9, 8)
    mask = torch.rand(12, 9) > 0.4  # [Lq, Lk]
    with torch.inference_mode():
        out = attention(q, k, v, mask)
    torch.testing.assert_close(out, sdpa_reference(q, k, v, mask), rtol=1e-5, atol=1e-5)


def test_dispatch_rules():
    x = torch.randn(4, 8)
    w = torch.randn(3, 8, requires_grad=True)
    assert onednn_dtype(x, w) is None  # autograd needs the differentiable path
    with torch.no_grad():
        assert onednn_dtype(x, w) == torch.float32
        assert onednn_dtype(x.double(), w) is None
        with use_kernels("pytorch"):
            assert onednn_dtype(x, w) is None
        assert onednn_dtype(x, w) == torch.float32
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert onednn_dtype(x, w) == (torch.bfloat16 if cpu.HAS_ONEDNN_BF16 else None)


@pytest.mark.skipif(not cpu.HAS_ONEDNN_BF16, reason="no bf16 oneDNN on this CPU")
def test_bf16_autocast_attention_is_close_to_fp32_and_linear_is_left_to_autocast():
    q, k, v = torch.randn(1, 4, 300, 64), torch.randn(1, 4, 280, 64), torch.randn(1, 4, 280, 64)
    bias = torch.zeros(1, 1, 1, 280).masked_fill(torch.rand(1, 1, 1, 280) > 0.7, -torch.inf)
    layer = Linear(64, 32)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, masked = attention(q, k, v), attention(q, k, v, bias)
        projected = layer(q)
    assert out.dtype == torch.bfloat16 and projected.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), sdpa_reference(q, k, v), rtol=0, atol=3e-2)
    torch.testing.assert_close(masked.float(), sdpa_reference(q, k, v, bias), rtol=0, atol=3e-2)


def test_bf16_linear_casts_its_weights_once_and_again_when_they_change():
    layer = Linear(64, 32)
    x = torch.randn(10, 64)

    def autocast_linear():  # what autocast computes from the current fp32 parameters
        return F.linear(x.bfloat16(), layer.weight.bfloat16(), layer.bias.bfloat16())

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        first = layer(x)
        cached = layer._bf16_cache[1]
        assert torch.equal(first, autocast_linear())
        assert layer(x) is not first and layer._bf16_cache[1] is cached  # no new cast
    layer.load_state_dict({"weight": torch.randn(32, 64), "bias": torch.randn(32)})  # copy_ in place
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(layer(x), autocast_linear())
    with torch.no_grad():
        layer.bias.add_(1.0)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(layer(x), autocast_linear())
    assert set(layer.state_dict()) == {"weight", "bias"}
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autograd records: autocast's own casts
        out = layer(x)
    out.float().sum().backward()
    assert layer.weight.grad is not None
    with torch.inference_mode():  # inference-tensor weights have no version counter: cast per call
        frozen = Linear(64, 32)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            expected = F.linear(x.bfloat16(), frozen.weight.bfloat16(), frozen.bias.bfloat16())
            assert torch.equal(frozen(x), expected)
            frozen.weight.mul_(2.0)
            assert not torch.equal(frozen(x), expected)


def test_gradients_flow_through_the_fallback():
    layer = Linear(8, 3)
    q = torch.randn(1, 2, 5, 4, requires_grad=True)
    out = attention(q, q, q).sum() + layer(torch.randn(5, 8)).sum()
    out.backward()
    assert q.grad is not None and layer.weight.grad is not None


@pytest.mark.parametrize("mode", ["auto", "onednn"])
def test_lightglue_matches_are_the_same_whichever_kernels_run(mode, data_dir, reference_features, kernel_cache):
    path0, path1 = pair_paths(data_dir, "dsc")
    data = {"image0": reference_features("aliked", path0), "image1": reference_features("aliked", path1)}
    fast, plain = LightGlue(features="aliked", kernels=mode).eval(), LightGlue(features="aliked", kernels="pytorch").eval()
    with torch.inference_mode():
        a, b = fast(data), plain(data)
    assert a["stop"] == b["stop"]
    assert torch.equal(a["matches0"], b["matches0"]) and torch.equal(a["prune0"], b["prune0"])
    torch.testing.assert_close(a["matching_scores0"], b["matching_scores0"], rtol=0, atol=1e-4)
    if mode == "auto":  # every product the forward ran was measured and its choice saved
        stored = json.loads((kernel_cache / "kernels.json").read_text())[choice.machine_key()]
        ops = {key.split()[0] for key in stored}
        assert ops == {"linear", "attention", "matmul_nt"}
        assert all(set(entry["ms"]) == {"onednn", "pytorch"} for entry in stored.values())


# ----------------------------------------------------------------------------------------
# Choice by measurement
# ----------------------------------------------------------------------------------------


@pytest.fixture
def kernel_cache(tmp_path, monkeypatch):
    """An empty choices file for the test; the process's choices forgotten before and after."""
    monkeypatch.setenv("SPECGLUE_CACHE", str(tmp_path))
    choice.CHOICES.clear()
    yield tmp_path
    choice.CHOICES.clear()


class FakeClock:
    """Stands in for ``time`` in the kernels module: a path "takes" the seconds it adds, so the
    choice tests do not depend on the machine's load."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(choice, "time", fake)
    return fake


def counting(calls, name, clock=None, cost_s=0.0):
    """A path that counts its calls, returns a tensor that names it and costs ``cost_s`` on ``clock``."""
    def run():
        calls[name] += 1
        if clock is not None:
            clock.now += cost_s
        return torch.full((2,), float(len(name)))
    return run


def test_the_faster_path_is_kept_saved_and_reused(kernel_cache, clock):
    calls = {"onednn": 0, "pytorch": 0}
    paths = {"onednn": counting(calls, "onednn", clock, 0.003), "pytorch": counting(calls, "pytorch", clock, 0.001)}
    out = choice.CHOICES.run("op A", paths)
    assert torch.equal(out, torch.full((2,), 7.0))  # the pytorch path's own output
    timed = 1 + choice._TIMING_REPEATS
    assert calls == {"onednn": timed, "pytorch": timed}
    entry = json.loads((kernel_cache / "kernels.json").read_text())[choice.machine_key()]["op A"]
    assert entry["path"] == "pytorch" and entry["ms"]["onednn"] > entry["ms"]["pytorch"]
    choice.CHOICES.run("op A", paths)  # remembered: only the chosen path runs
    assert calls == {"onednn": timed, "pytorch": timed + 1}
    choice.CHOICES.clear()  # a new process reads the file instead of measuring again
    choice.CHOICES.run("op A", paths)
    assert calls == {"onednn": timed, "pytorch": timed + 2}


def test_a_near_tie_keeps_the_stock_path(kernel_cache, clock):
    """Another path replaces the default only when at least 10 % faster."""
    calls = {"onednn": 0, "pytorch": 0}
    paths = {"onednn": counting(calls, "onednn", clock, 0.0092), "pytorch": counting(calls, "pytorch", clock, 0.01)}
    choice.CHOICES.run("op tie", paths, default="pytorch")  # 8 % faster: kept out
    assert choice.CHOICES.entries["op tie"]["path"] == "pytorch"
    paths["onednn"] = counting(calls, "onednn", clock, 0.0088)  # 12 % faster: the other path wins
    choice.CHOICES.run("op faster", paths, default="pytorch")
    assert choice.CHOICES.entries["op faster"]["path"] == "onednn"


def test_a_choice_file_of_another_machine_is_not_used_and_is_kept(kernel_cache):
    other = {"other CPU | torch 0 | 1 threads": {"op B": {"path": "onednn", "ms": {}}}}
    (kernel_cache / "kernels.json").write_text(json.dumps(other))
    calls = {"onednn": 0, "pytorch": 0}
    choice.CHOICES.run("op B", {"onednn": counting(calls, "onednn"), "pytorch": counting(calls, "pytorch")})
    assert calls["pytorch"] > 1  # measured here
    stored = json.loads((kernel_cache / "kernels.json").read_text())
    assert set(stored) == set(other) | {choice.machine_key()}


def test_an_unreadable_or_unwritable_choice_file_only_costs_a_measurement(kernel_cache, caplog):
    (kernel_cache / "kernels.json").write_text("{not json")
    calls = {"onednn": 0, "pytorch": 0}
    paths = {"onednn": counting(calls, "onednn"), "pytorch": counting(calls, "pytorch")}
    with caplog.at_level("WARNING", logger="specglue.ops.choice"):
        choice.CHOICES.run("op C", paths)
    assert "unreadable" in caplog.text
    assert "op C" in json.loads((kernel_cache / "kernels.json").read_text())[choice.machine_key()]


def test_pinned_modes_and_the_environment_variable(kernel_cache, monkeypatch):
    x, layer = torch.randn(40, 16), Linear(16, 8)
    with torch.inference_mode():
        with use_kernels("onednn"):
            layer(x)
        with use_kernels("pytorch"):
            assert onednn_dtype(x, layer.weight) is None
            layer(x)
        monkeypatch.setenv(choice.KERNELS_ENV, "pytorch")
        assert choice.kernel_mode() == "pytorch" and onednn_dtype(x, layer.weight) is None
        with use_kernels("onednn"):  # an explicit mode wins over the variable
            assert choice.kernel_mode() == "onednn"
        with use_kernels("auto"):  # the variable applies where the mode is auto, read on entry
            assert choice.kernel_mode() == "pytorch"
        monkeypatch.setenv(choice.KERNELS_ENV, "fastest")
        with pytest.raises(ValueError, match="SPECGLUE_KERNELS"):
            layer(x)
    assert not (kernel_cache / "kernels.json").exists()  # pinned paths are never measured
    with pytest.raises(ValueError, match="kernels"):
        LightGlue(features=None, kernels="mkl")


def test_size_buckets():
    assert [choice.size_bucket(n) for n in (1, 64, 65, 512, 513, 2048)] == [64, 64, 128, 512, 1024, 2048]


def test_native_bf16_reads_the_cpu_flags():
    flags = open("/proc/cpuinfo").read() if __import__("os").path.exists("/proc/cpuinfo") else ""
    assert cpu.native_bf16() == (("amx_bf16" in flags or "avx512_bf16" in flags) and cpu.HAS_ONEDNN_BF16)


@pytest.mark.skipif(not cpu.HAS_ONEDNN_BF16, reason="no bf16 oneDNN on this CPU")
@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
def test_bf16_attention_pads_odd_lengths_and_masks_the_padding(mask_kind, monkeypatch):
    """Under CPU bf16, SDPA sees query and key lengths padded to multiples of 64 (oneDNN
    compiles a kernel per new shape, and pruning makes new lengths every pair); padded keys
    are masked, so the result is the unpadded one, fully masked queries included."""
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 100, 64), torch.randn(2, 4, 77, 64), torch.randn(2, 4, 77, 64)
    mask = {"none": None,
            "bool": torch.rand(2, 1, 100, 77) > 0.3,
            "float": torch.zeros(1, 1, 1, 77).masked_fill(torch.rand(1, 1, 1, 77) > 0.7, -torch.inf)}[mask_kind]
    if mask_kind == "bool":
        mask[0, 0, 5] = False  # a query that may attend to nothing
    lengths = []
    sdpa = kernels._sdpa
    monkeypatch.setattr(kernels, "_sdpa", lambda q, k, v, m: lengths.append((q.shape[-2], k.shape[-2])) or sdpa(q, k, v, m))
    with torch.inference_mode(), use_kernels("pytorch"), torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(q, k, v, mask)
    assert lengths == [(128, 128)]
    assert out.shape == (2, 4, 100, 64) and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), sdpa_reference(q, k, v, mask), rtol=0, atol=3e-2)
    if mask_kind == "bool":
        assert float(out[0, :, 5].abs().max()) == 0.0


@pytest.mark.skipif(not cpu.HAS_ONEDNN_BF16, reason="no bf16 oneDNN on this CPU")
def test_bf16_products_run_on_padded_rows_with_the_unpadded_results(monkeypatch, data_dir, reference_features):
    """Linear layers and the similarity under CPU bf16: rows padded to multiples of 64, the
    results those of the unpadded products; a whole bf16 LightGlue forward on odd keypoint
    counts (pruning on) gives oneDNN no other row count."""
    torch.manual_seed(0)
    layer, x = Linear(64, 32), torch.randn(3, 33, 64)
    a, b = torch.randn(1, 100, 32), torch.randn(1, 77, 32)
    rows = []
    linear = F.linear
    monkeypatch.setattr(F, "linear", lambda x, *args: rows.append(x.numel() // x.shape[-1]) or linear(x, *args))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        projected, sim = layer(x), matmul_nt(a, b)
        expected = linear(x.bfloat16(), layer.weight.bfloat16(), layer.bias.bfloat16())
    assert rows[0] == 128 and projected.shape == (3, 33, 32)
    assert torch.equal(projected, expected)
    assert sim.shape == (1, 100, 77)
    torch.testing.assert_close(sim.float(), a @ b.transpose(1, 2), rtol=0, atol=0.15)
    rows.clear()
    path0, path1 = pair_paths(data_dir, "dsc")
    f0, f1 = reference_features("aliked", path0), reference_features("aliked", path1)
    f0 = {key: value[:, :701] if key != "image_size" else value for key, value in f0.items()}  # odd count
    monkeypatch.setattr(lightglue_module, "native_bf16", lambda: True)  # mp=True runs bf16 on this CPU too
    matcher = LightGlue(features="aliked", mp=True).eval()
    with torch.inference_mode():
        out = matcher({"image0": f0, "image1": f1})
    assert rows and all(r % 64 == 0 for r in rows), sorted(set(rows))
    assert int((out["matches0"] > -1).sum()) > 100
