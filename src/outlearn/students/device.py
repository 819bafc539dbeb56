"""Where a student trains and runs: the CPU by default, a GPU when asked for.

A config's ``device`` (or ``$OUTLEARN_DEVICE`` when the config leaves it unset) names a torch
device: "cpu", "cuda", "cuda:N", "mps", or "auto" (the first GPU if torch sees one, else the
CPU). The device does not enter a run's identity: a checkpoint trained on a GPU resumes and
evaluates on the CPU and back (bit-exact resume holds on one device, not across devices).
"""

from __future__ import annotations

import os
import re

import torch

from outlearn.errors import ConfigError

_PATTERN = re.compile(r"cpu|auto|mps|cuda(:\d+)?")


def check_device_name(name: str | None) -> str | None:
    """Validate a device name (None: decided at run time); raises ValueError naming the fix."""
    if name is not None and not _PATTERN.fullmatch(name):
        raise ValueError(f"device {name!r}: use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'")
    return name


def resolve_device(name: str | None = None) -> torch.device:
    """The torch device for ``name`` (None: ``$OUTLEARN_DEVICE``, else "cpu")."""
    name = name or os.environ.get("OUTLEARN_DEVICE") or "cpu"
    try:
        check_device_name(name)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r}: this torch ({torch.__version__}) sees no CUDA GPU. Use "
                "device = 'cpu' (or 'auto'), or install a CUDA build of torch on a GPU machine"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible; "
                "use one of cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps': not available here; use device = 'cpu' or 'auto'")
    return torch.device(name)
