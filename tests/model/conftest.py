"""Fixtures shared by the model tests."""

import pytest

from specglue import LightGlue


@pytest.fixture(params=["padded", "each pair"])
def batch_path(request, monkeypatch):
    """Both ways a batch runs: one padded batch (GPUs), or one pair at a time (the CPU default)."""
    if request.param == "padded":
        monkeypatch.setattr(LightGlue, "padded_batch_devices", ("cuda", "mps", "cpu"))
    return request.param
