"""Export LightGlue to deployment formats (ONNX) and run the exported graphs."""

from .onnx import OnnxMatcher, export_onnx

__all__ = ["OnnxMatcher", "export_onnx"]
