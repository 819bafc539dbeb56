"""Training checkpoints: everything needed to resume bit-identically, written atomically.

A checkpoint (a ``torch.save`` dict of tensors and plain Python values) holds the format
version, the step, the resolved config (JSON) and its hash, the model kind, its config and
sizes, and the states of the model, optimiser, scheduler, torch's RNG and the sampler's
numpy Generator. Files are ``<out>/checkpoints/step-<step:08d>.pt``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import torch

from outlearn.atomic import atomic_write_bytes
from outlearn.errors import CheckpointError

FORMAT_VERSION = 1
DIGEST = "sha256"  # key of the contents' digest (checkpoints from before it have none)
_NAME = re.compile(r"^step-(\d{8})\.pt$")


def checkpoint_dir(out: str | Path) -> Path:
    return Path(out) / "checkpoints"


def checkpoint_path(out: str | Path, step: int) -> Path:
    return checkpoint_dir(out) / f"step-{step:08d}.pt"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format version) atomically to ``path``.

    torch serialises to memory and :func:`~outlearn.atomic.atomic_write_bytes` writes the
    bytes, so a full disk is a :class:`~outlearn.errors.DiskFullError` (torch reports one
    as a RuntimeError without an errno)."""
    path = Path(path)
    body = {**payload, "format_version": FORMAT_VERSION}
    body[DIGEST] = payload_digest(body)
    buf = io.BytesIO()
    torch.save(body, buf)
    atomic_write_bytes(path, buf.getbuffer())
    return path


def latest_checkpoint(out: str | Path) -> Path | None:
    """The checkpoint of the highest step under ``out``, or None."""
    d = checkpoint_dir(out)
    if not d.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name)))
    return found[-1][1] if found else None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint; unreadable files and other format versions raise CheckpointError."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no checkpoint under {path}: run `outlearn train <train "
                                  "config>` first (its `out` is this directory), or fix the path")
        path = found
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: run `outlearn train <train "
                              "config>` first (it writes checkpoints under its `out`), or fix "
                              "the path")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a broken file
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}): delete it to resume from "
            "the one before, or start a new out dir"
        ) from None
    version = ck.get("format_version") if isinstance(ck, dict) else None
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}; this code reads version "
            f"{FORMAT_VERSION}. Retrain into a new out dir (or delete the old checkpoints)."
        )
    want = ck.pop(DIGEST, None)  # checkpoints written before digests were added have none
    if want is not None and payload_digest(ck) != want:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its contents (weights, optimiser or RNG state) no "
            "longer match the digest written with them. Delete it to resume from the one "
            "before, or start a new out dir")
    return ck


def _feed(h: Any, obj: Any) -> None:
    """Feed a canonical encoding of ``obj`` (nested dicts, lists, tensors, scalars) to ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}|".encode())
        for k in sorted(obj, key=repr):
            h.update(f"{k!r}:".encode())
            _feed(h, obj[k])
    elif isinstance(obj, list | tuple):
        h.update(f"L{len(obj)}|".encode())
        for v in obj:
            _feed(h, v)
    else:
        h.update(f"V{obj!r}|".encode())


def payload_digest(payload: dict[str, Any]) -> str:
    """sha256 of a checkpoint's contents (every tensor's bytes, every value; not the
    digest itself): a flipped byte in the weights is detected when the file is read."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != DIGEST})
    return h.hexdigest()


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_diff(old_json: str, new_json: str) -> list[str]:
    """Dotted keys whose values differ between two config JSON strings, with both values."""
    a, b = _flatten(json.loads(old_json)), _flatten(json.loads(new_json))
    return [
        f"{k}: checkpoint {a.get(k, '(absent)')!r} vs config {b.get(k, '(absent)')!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k, "(absent)") != b.get(k, "(absent)")
    ]


def check_compatible(
    ck: dict[str, Any], path: Path, config_json: str, config_hash: str,
    upgraded_json: str | None = None,
) -> None:
    """Refuse to resume from a checkpoint written under another config.

    ``upgraded_json`` is the checkpoint's own config re-read by this version's config model:
    an option added after the checkpoint was written then takes its default, which reproduces
    the old behaviour, so a checkpoint that differs from ``config_json`` only by such options
    still resumes.
    """
    if ck.get("config_hash") == config_hash or upgraded_json == config_json:
        return
    diff = config_diff(ck.get("config_json", "{}"), config_json)
    raise CheckpointError(
        f"checkpoint {path} was written by another config (hash {ck.get('config_hash')} vs "
        f"{config_hash}); differing fields: {'; '.join(diff) or '(none readable)'}. "
        "Use a new out dir, or delete that out dir's checkpoints to start over."
    )
