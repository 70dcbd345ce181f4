"""Input checks that raise ``ValueError`` / ``TypeError`` naming the argument and what was expected.

Shape specs are sequences of ints (exact sizes) or strings (named sizes that must agree across
calls sharing the same ``sizes`` dict), e.g. ``("B", "M", 2)``.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Union

import torch

Dim = Union[int, str]


def check_tensor(
    name: str,
    x: object,
    shape: Sequence[Dim],
    sizes: Optional[Dict[str, int]] = None,
    kind: str = "float",
    finite: bool = False,
) -> torch.Tensor:
    """Check that ``x`` is a tensor of the given shape spec and dtype kind.

    Args:
        name: how the argument is named in error messages (e.g. ``"image0['keypoints']"``).
        shape: expected shape; string entries are named sizes recorded in / checked against
            ``sizes``.
        kind: ``"float"``, ``"bool"``, ``"int"``, ``"bool_or_float"`` or ``"any"``.
        finite: also reject NaN and Inf values.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {_fmt(shape)}, got {type(x).__name__}")
    if x.ndim != len(shape):
        raise ValueError(f"{name} must have shape {_fmt(shape)}, got {tuple(x.shape)}")
    sizes = {} if sizes is None else sizes
    for axis, (want, got) in enumerate(zip(shape, x.shape)):
        if isinstance(want, int) and want != got:
            raise ValueError(f"{name} must have shape {_fmt(shape)}, got {tuple(x.shape)}")
        if isinstance(want, str):
            if want in sizes and sizes[want] != got:
                raise ValueError(
                    f"{name} has size {got} on axis {axis} ({want}) but {sizes[want]} was "
                    f"given elsewhere; expected shape {_fmt(shape)} with {want}={sizes[want]}"
                )
            sizes.setdefault(want, got)
    ok = {
        "float": x.is_floating_point(),
        "bool": x.dtype == torch.bool,
        "int": not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool,
        "bool_or_float": x.dtype == torch.bool or x.is_floating_point(),
        "any": True,
    }[kind]
    if not ok:
        raise TypeError(f"{name} must have a {kind.replace('_', ' ')} dtype, got {x.dtype}")
    if finite and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def _fmt(shape: Sequence[Dim]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"
