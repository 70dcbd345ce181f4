"""Optional dependencies: a missing one names the extra that installs it."""

import sys

import pytest

from specglue.optional import MissingDependency, require


def test_present_module_is_returned():
    assert require("json", "colmap", "anything").dumps([1]) == "[1]"


def test_missing_module_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycolmap", None)  # as if not installed
    with pytest.raises(MissingDependency, match=r"COLMAP databases needs pycolmap.*pip install 'specglue\[colmap\]'"):
        require("pycolmap", "colmap", "COLMAP databases")


def test_ray_engine_reports_the_missing_extra(monkeypatch):
    from specglue.collection.engine import make_engine

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependency, match=r"pip install 'specglue\[ray\]'"):
        make_engine("ray")
