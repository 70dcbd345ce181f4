"""Optional dependencies: a missing one names the extra that installs it."""

import sys

import pytest

from specglue.optional import MissingDependency, require


def test_present_module_is_returned():
    assert require("json", "eval", "anything").dumps([1]) == "[1]"


def test_missing_module_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if not installed
    with pytest.raises(MissingDependency, match=r"the evaluation caches needs h5py.*pip install 'specglue\[eval\]'"):
        require("h5py", "eval", "the evaluation caches")


def test_cache_reports_the_missing_extra(monkeypatch, tmp_path):
    from specglue.eval.cache import FeatureCache

    (tmp_path / "features.h5").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"specglue\[eval\]"):
        FeatureCache(tmp_path / "features.h5").names()
