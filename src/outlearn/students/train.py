"""Train a student on a history file: ``train(cfg) -> checkpoint path``.

AdamW, linear warm-up then cosine decay to 0, grad-norm clipping, validation loss on
held-out learners every ``val_every`` steps, progress with tokens/s and time left; the
records go to ``metrics.jsonl`` in ``cfg.out`` and, drawn from them when a call ends,
``loss.png``. Ctrl-C raises :class:`~outlearn.errors.Stopped`: "stopped at step N; last
checkpoint at M; rerun the same command to resume".
A run resumes from the latest checkpoint in ``cfg.out``; an interrupted-and-resumed run
ends with weights bit-identical to an uninterrupted one (same machine), whatever the number
of threads: each batch is cut into ``shards`` slices whose gradients are summed in a fixed
order (:mod:`outlearn.students.sharded`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from outlearn.atomic import (
    atomic_write_bytes,
    atomic_write_text,
    check_output,
    disk_full_error,
    is_disk_full,
)
from outlearn.config import Config, Seed, load_toml, parse_config
from outlearn.errors import (
    CheckpointError,
    ConfigError,
    HistoryFileError,
    Stopped,
    TrainingError,
)
from outlearn.registry import STUDENTS
from outlearn.report.figures import loss_figure
from outlearn.resources import check_memory, estimate_train
from outlearn.students import ad, adq, dpt, gru  # noqa: F401  (registers the students)
from outlearn.students.checkpoint import (
    check_compatible,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from outlearn.students.data import HistorySource, Labels, WindowSampler, check_frame_labels
from outlearn.students.device import check_device_name, resolve_device
from outlearn.students.sharded import (  # noqa: F401  (forward_batch, loss_fn: re-exported)
    Precision,
    ShardedStep,
    forward_batch,
    loss_fn,
)
from outlearn.students.threads import configure_threads
from outlearn.students.tokens import describe_obs


class StudentSpec(Config):
    """Which student: ``kind`` (a registered name: "ad", "adq", "dpt", "gru"), a ``preset``
    for models that have presets (AD, adq: "small", "paper"), and ``model`` keyword
    overrides."""

    kind: str = Field("ad", description="a registered student: 'ad', 'adq', 'dpt', 'gru' "
                      "(`outlearn explain students`)")
    preset: str = Field("small", description="named sizes for the kinds that have them (ad, "
                        "adq: 'small', the CPU default, or 'paper', AD's published model); "
                        "ignored by the others")
    model: dict[str, Any] = Field(default_factory=dict, description="the model's settings, "
                                  "over the preset's (`outlearn explain students/<kind>`); "
                                  "context_len follows data.context_len")


class DataConfig(Config):
    """What the student is trained on: windows of the history and their labels."""

    context_len: int = Field(100, ge=1, description="steps per training window (the model's "
                             "context); DPT: transitions in a context set")
    labels: Labels = Field(
        "actions", description="the target at each step: 'actions' (the teacher's action, "
        "AD), 'probs' (its action probabilities), 'optimal' (the task's optimal action, DPT's "
        "privileged label), 'gap' (the teacher's action in the same state gap_episodes later)")
    gap_episodes: int = Field(1, ge=1, description="labels = 'gap': how many episodes later "
                              "the label's action is taken (GLA's g)")
    batch_size: int = Field(32, ge=1, description="windows per optimiser step")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="share of the train split's "
                                "learners held out for the validation loss (0: none)")
    val_batches: int = Field(4, ge=1, description="batches of held-out learners per "
                             "validation loss")
    set_start: Literal["random", "first"] = Field(
        "random", description="DPT: start context sets anywhere, or at each learner's first step")
    permute_actions: bool = Field(
        False, description="DPT on bandits: relabel the arms at random in every example")


class OptimConfig(Config):
    """AdamW with a linear warm-up, then cosine decay to 0 at total_steps."""

    lr: float = Field(3e-4, gt=0, description="peak learning rate of AdamW")
    weight_decay: float = Field(0.01, ge=0, description="AdamW's decoupled weight decay")
    warmup_steps: int = Field(100, ge=0, description="steps of linear warm-up to lr (at most "
                              "total_steps)")
    total_steps: int = Field(2000, ge=1, description="optimiser steps in all; the learning rate "
                             "reaches 0 there")
    grad_clip: float = Field(1.0, gt=0, description="gradients are clipped to this global norm")

    @model_validator(mode="after")
    def _warmup_fits(self) -> OptimConfig:
        if self.warmup_steps > self.total_steps:
            raise ValueError(
                f"warmup_steps={self.warmup_steps} > total_steps={self.total_steps}: "
                "lower optim.warmup_steps"
            )
        return self


class TrainConfig(Config):
    """A training run. ``env``: the env name the history must come from (None: any)."""

    history: Path = Field(description="the HDF5 history file to train on (`outlearn collect` "
                          "writes it; relative to the config file's folder)")
    env: str | None = Field(None, description="the env the history must come from (refused "
                            "otherwise); unset: any")
    student: StudentSpec = Field(default_factory=StudentSpec,
                                 description="which student ([student] table)")
    data: DataConfig = Field(default_factory=DataConfig,
                             description="windows and labels ([data] table)")
    optim: OptimConfig = Field(default_factory=OptimConfig,
                               description="optimiser and schedule ([optim] table)")
    seed: Seed = Field(0, description="seed of the initial weights, the train/validation split "
                       "of learners and the order of the windows")
    out: Path = Field(Path("runs/train"), description="the run's folder: checkpoints, "
                      "metrics.jsonl, loss.png (the default resolves from the working "
                      "directory)")
    checkpoint_every: int = Field(500, ge=1, description="steps between checkpoints (a "
                                  "stopped run resumes from the last one)")
    val_every: int = Field(250, ge=1, description="steps between validation losses")
    threads: int | None = Field(
        None, ge=1, description="shards computed at once (unset: $OUTLEARN_TORCH_THREADS or "
        "every core this process may use); does not change the weights")
    shards: int = Field(
        2, ge=1, description="slices each batch is cut into for parallel gradients (must "
        "divide data.batch_size); enters the run's identity")
    precision: Precision = Field(
        "fp32", description="'fp32', or 'bf16' (linear layers under bfloat16 autocast)")
    device: str | None = Field(
        None, description="'cpu', 'cuda', 'cuda:N', 'mps', 'auto'; unset: $OUTLEARN_DEVICE or cpu")

    @model_validator(mode="after")
    def _shards_divide(self) -> TrainConfig:
        if self.data.batch_size % self.shards:
            raise ValueError(
                f"shards={self.shards} does not divide data.batch_size={self.data.batch_size}: "
                "pick shards that divides the batch (e.g. 1 or 2)")
        return self

    @field_validator("device")
    @classmethod
    def _device_name(cls, v: str | None) -> str | None:
        return check_device_name(v)

    def resume_json(self) -> str:
        """The fields that decide the weights (not out dir, threads, device, cadences)."""
        skip = {"out", "threads", "device", "checkpoint_every", "val_every"}
        d = self.model_dump(mode="json", exclude=skip)
        return json.dumps(d, sort_keys=True)

    def resume_hash(self) -> str:
        import hashlib

        return hashlib.sha256(self.resume_json().encode()).hexdigest()[:12]


# ---------------------------------------------------------------- building pieces
def model_config(spec: StudentSpec, context_len: int,
                 obs_shape: tuple[int, ...] = ()) -> Config:
    """The resolved model config of ``spec`` with the data's ``context_len`` and the shape
    of its observations (``()``: indices; a frame's shape: the student reads frames)."""
    cls = STUDENTS.get(spec.kind)
    kw = dict(spec.model)
    if kw.get("context_len", context_len) != context_len:
        raise ConfigError(
            f"student.model.context_len={kw['context_len']} differs from data.context_len="
            f"{context_len}: remove student.model.context_len (it follows data.context_len)"
        )
    kw["context_len"] = context_len
    cfg_cls = cls.config_class
    kw.update(_obs_settings(spec, cfg_cls, obs_shape))
    if hasattr(cfg_cls, "preset"):
        return cfg_cls.preset(spec.preset, **kw)
    return parse_config(cfg_cls, kw, f"student.model (kind {spec.kind!r})")


def _obs_settings(spec: StudentSpec, cfg_cls: type[Config], obs_shape: tuple[int, ...]
                  ) -> dict[str, Any]:
    """``obs_shape`` for the model config, from the history; refuses a student that
    cannot read the history's observations, with the fix."""
    want = list(obs_shape) or None
    if "obs_shape" not in cfg_cls.model_fields:
        if want:
            raise ConfigError(
                f"student kind {spec.kind!r} reads observation indices, but the history holds "
                f"{describe_obs(obs_shape)}: train a student that reads frames (kind 'ad', "
                "'adq' or 'gru') on it")
        return {}
    given = spec.model.get("obs_shape", want)
    if list(given or ()) != list(obs_shape):
        raise ConfigError(
            f"student.model.obs_shape={given} builds a student for "
            f"{describe_obs(given or ())}, but the history holds {describe_obs(obs_shape)}: "
            "remove student.model.obs_shape (it is set from the history)")
    return {"obs_shape": want}


def fit_context(kind: str, context_len: int, steps: int) -> int:
    """The context of a student of ``kind`` trained on histories of ``steps`` steps:
    ``context_len`` cut to what their windows allow (a kind trained on transitions, adq,
    reads one step past its window, so at most ``steps - 1``)."""
    ahead = 1 if getattr(STUDENTS.get(kind), "transitions", False) else 0
    return min(context_len, steps - ahead)


def make_model(kind: str, cfg: dict[str, Any], num_obs: int, num_actions: int) -> nn.Module:
    cls = STUDENTS.get(kind)
    if kind == "ad" and "positions" not in cfg:  # checkpoints from before relative positions
        cfg = {**cfg, "positions": "learned"}
    return cls(parse_config(cls.config_class, cfg, "model config"), num_obs, num_actions)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))


def to_tensors(batch: dict[str, np.ndarray], device: torch.device | None = None
               ) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}


class HistoryAdapter:
    """The real :class:`outlearn.histories.io.History` seen as a :class:`HistorySource`."""

    def __init__(self, path: Path, verify: bool | str = "auto"):
        from outlearn.histories.io import History

        self.h = History(path, verify=verify)
        self.path = path
        meta = self.h.meta
        self.env_name = meta.env_name
        self.num_obs, self.num_actions = int(meta.num_obs), int(meta.num_actions)
        self.episode_len = int(meta.episode_len)
        self.num_steps = int(self.h.num_steps)
        self.obs_shape = self.h.obs_shape
        self.obs_dtype = self.h.dataset("obs").dtype

    def learners(self, split: str) -> np.ndarray:
        return np.asarray(self.h.learners(split))

    def close(self) -> None:
        self.h.close()

    def window(self, learner: int, start: int, length: int) -> dict[str, np.ndarray]:
        return self.h.window(learner, start, length)


def check_history(src: Any, cfg: TrainConfig, ck: dict[str, Any] | None) -> None:
    """Refuse a history from another env, or of other sizes than the checkpoint's model."""
    if cfg.env is not None and src.env_name != cfg.env:
        raise HistoryFileError(
            f"history {cfg.history} comes from env {src.env_name!r} but the config says "
            f"env = {cfg.env!r}: point history at a file collected on {cfg.env!r} or fix env"
        )
    if ck is not None:
        have = {"num_obs": src.num_obs, "num_actions": src.num_actions}
        want = {k: ck["dims"][k] for k in have}
        if have != want:
            raise HistoryFileError(
                f"history {cfg.history} has {have} but the checkpoint's model was built for "
                f"{want}: use the history the run started with, or a new out dir"
            )


# ---------------------------------------------------------------- the loop
class _Run:
    """The mutable state of one training run (model, optimiser, scheduler, sampler)."""

    def __init__(self, cfg: TrainConfig, src: HistorySource):
        self.cfg = cfg
        self.kind = STUDENTS.get(cfg.student.kind)
        self.mcfg = model_config(cfg.student, cfg.data.context_len, src.obs_shape)
        self.sampler = WindowSampler(
            src, kind=self.kind.inputs, context_len=cfg.data.context_len,
            labels=cfg.data.labels, gap_episodes=cfg.data.gap_episodes,
            batch_size=cfg.data.batch_size, val_fraction=cfg.data.val_fraction, seed=cfg.seed,
            set_start=cfg.data.set_start, permute_actions=cfg.data.permute_actions,
            transitions=getattr(self.kind, "transitions", False),
        )
        torch.manual_seed(cfg.seed)
        self.dims = {"num_obs": src.num_obs, "num_actions": src.num_actions}
        self.device = resolve_device(cfg.device)
        self.model = self.kind(self.mcfg, src.num_obs, src.num_actions).to(self.device)
        o = cfg.optim
        # the trained parameters (a frozen target network, adq's, is not among them)
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                     lr=o.lr, weight_decay=o.weight_decay)
        self.stepper = ShardedStep(self.model, cfg.shards, configure_threads(cfg.threads),
                                   cfg.precision, self.device)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, o.warmup_steps, o.total_steps))
        self.step = 0
        self.history_sha256: str | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "step": self.step, "config_json": self.cfg.resume_json(),
            "config_hash": self.cfg.resume_hash(), "train_config": self.cfg.to_json(),
            "model_kind": self.cfg.student.kind, "model_config": self.mcfg.model_dump(),
            "dims": self.dims, "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "torch_rng": torch.get_rng_state(), "sampler_rng": self.sampler.state(),
            "history_sha256": self.history_sha256,
            **({"cuda_rng": torch.cuda.get_rng_state(self.device)}
               if self.device.type == "cuda" else {}),
        }

    def restore(self, ck: dict[str, Any]) -> None:
        if ck.get("model_config") != self.mcfg.model_dump():
            raise CheckpointError(
                f"the checkpoint in {self.cfg.out} holds a model built as "
                f"{ck.get('model_config')}, but this version builds {self.mcfg.model_dump()} "
                "from the same config: train into a new out dir")
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["torch_rng"])
        if self.device.type == "cuda" and "cuda_rng" in ck:
            torch.cuda.set_rng_state(ck["cuda_rng"], self.device)
        self.sampler.set_state(ck["sampler_rng"])
        self.step = int(ck["step"])

    def train_step(self) -> float:
        self.model.train()
        b = to_tensors(self.sampler.sample(), self.device)
        loss = self.stepper.backward(b)
        if not math.isfinite(loss):  # before the update: no weights from a diverged step
            raise TrainingError(
                f"the training loss is {loss} at step {self.step + 1} of {self.cfg.out}: the "
                f"run diverged. Lower optim.lr (now {self.cfg.optim.lr}) or raise "
                "optim.warmup_steps, and train into a new out dir (checkpoints written "
                "before this step are kept)")
        nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        self.step += 1
        after = getattr(self.model, "after_update", None)
        if after is not None:  # adq: copies its weights into its target network on schedule
            after(self.step)
        return loss

    @torch.no_grad()
    def val_loss(self) -> float | None:
        batches = self.sampler.val_batches(self.cfg.data.val_batches)
        if not batches:
            return None
        self.model.eval()
        losses = []
        for nb in batches:
            losses.append(self.stepper.loss(to_tensors(nb, self.device)))
        return float(np.mean(losses))


def train(cfg: TrainConfig, *, stop_after: int | None = None, quiet: bool = False) -> Path:
    """Train (or resume) and return the path of the last checkpoint written.

    ``stop_after``: stop (with a checkpoint) after this many steps of this call, as an
    interruption would; the next call resumes from there.
    """
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"stop_after={stop_after}: use None or a positive number of steps")
    check_output(cfg.out, "out", kind="dir")
    if Path(cfg.history).is_dir():
        raise HistoryFileError(f"history {cfg.history} is a directory: give the .h5 file "
                               "(check `history`)")
    if not Path(cfg.history).is_file():
        raise HistoryFileError(f"history file {cfg.history} does not exist: create it with "
                               "`outlearn collect <collect config>` (its `out`), or fix "
                               "`history`")
    src = HistoryAdapter(Path(cfg.history))
    try:
        check_memory(estimate_train(cfg, src))  # builds the model config: refuses a misfit
        check_frame_labels(src, STUDENTS.get(cfg.student.kind).inputs, cfg.data.labels)
        return _train(cfg, src, stop_after, quiet)
    finally:
        src.close()


def history_digest(path: str | Path) -> str:
    """sha256 (hex) of a history file's bytes: a checkpoint records the data it was
    trained on, and a resume refuses a file that changed since."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 * 2**20), b""):
            h.update(block)
    return h.hexdigest()


def check_same_history(ck: dict[str, Any], prev: Path, cfg: TrainConfig, digest: str) -> None:
    """Refuse to resume when the history changed since the checkpoint was written
    (checkpoints from before this check carry no digest and are not checked)."""
    then = ck.get("history_sha256")
    if then is not None and then != digest:
        raise CheckpointError(
            f"history {cfg.history} changed since the checkpoint {prev} was written (sha256 "
            f"{then[:12]}... then, {digest[:12]}... now): train into a new out dir, or "
            "restore the history the run started with")


def _upgraded(ck: dict[str, Any]) -> str | None:
    """The checkpoint's config as this version reads it (new options at their defaults)."""
    try:
        return TrainConfig.model_validate_json(ck["train_config"]).resume_json()
    except Exception:  # unreadable or no longer valid: compared field by field instead
        return None


def _train(cfg: TrainConfig, src: HistoryAdapter, stop_after: int | None, quiet: bool) -> Path:
    prev = latest_checkpoint(cfg.out)
    ck = load_checkpoint(prev) if prev is not None else None
    digest = history_digest(cfg.history)
    if ck is not None:
        assert prev is not None  # ck was loaded from it
        check_compatible(ck, prev, cfg.resume_json(), cfg.resume_hash(), _upgraded(ck))
        check_same_history(ck, prev, cfg, digest)
    check_history(src, cfg, ck)
    run = _Run(cfg, src)
    run.history_sha256 = digest
    if ck is not None:
        run.restore(ck)
    total = cfg.optim.total_steps
    if run.step >= total:
        return prev  # type: ignore[return-value]
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(out) from err
        raise
    atomic_write_text(out / "config.json", cfg.to_json())
    trim_metrics(out / METRICS, run.step)
    end = total if stop_after is None else min(total, run.step + stop_after)
    try:
        return _loop(run, end, quiet)
    finally:
        run.stepper.close()


METRICS = "metrics.jsonl"
LOSS_FIGURE = "loss.png"
"""Beside ``metrics.jsonl``: training and validation loss, redrawn when a training call ends
(finished, interrupted or failed)."""


def trim_metrics(path: Path, step: int) -> None:
    """Keep the records of ``metrics.jsonl`` up to ``step`` (the checkpoint a run resumes
    from): records an interrupted run wrote after it, and a torn last line, are dropped,
    so the resumed run's records are not duplicates."""
    if not path.exists():
        return
    raw = path.read_bytes()
    keep = []
    for line in raw.splitlines(keepends=True):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        at = rec.get("step") if isinstance(rec, dict) else None
        if line.endswith(b"\n") and isinstance(at, int) and at <= step:
            keep.append(line)
    new = b"".join(keep)
    if new != raw:
        atomic_write_bytes(path, new)


class _MetricsLog:
    """``metrics.jsonl`` opened for appending whole lines: a line whose write fails (a full
    disk) is cut off again, so the file never holds a torn record."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, rec: dict[str, Any]) -> None:
        data = (json.dumps(rec) + "\n").encode()
        size = os.fstat(self.fd).st_size
        try:
            done = 0
            while done < len(data):
                done += os.write(self.fd, data[done:])
        except OSError as err:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, size)
            if is_disk_full(err):
                raise disk_full_error(self.path) from err
            raise

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> _MetricsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _loop(run: _Run, end: int, quiet: bool) -> Path:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    cfg, d = run.cfg, run.cfg.data
    tokens = d.batch_size * (d.context_len + (1 if run.kind.inputs == "set" else 0))
    cols = [TextColumn("[bold]train {task.fields[kind]}"), BarColumn(),
            TextColumn("{task.completed}/{task.total} {task.fields[info]}"),
            TimeRemainingColumn()]
    last = None
    log = _MetricsLog(Path(cfg.out) / METRICS)
    try:
        with log, Progress(*cols, disable=quiet) as prog:
            last = _steps(run, end, log, prog, tokens)
    except KeyboardInterrupt:
        raise Stopped(stopped_message(run.step, cfg.out)) from None
    finally:
        with contextlib.suppress(Exception):  # a figure must never hide the real error
            loss_figure(Path(cfg.out) / METRICS, Path(cfg.out) / LOSS_FIGURE)
    return last  # type: ignore[return-value]


def stopped_message(step: int, out: Path) -> str:
    """What a Ctrl-C in training kept, and how to go on."""
    ck = latest_checkpoint(out)
    at = (f"last checkpoint at {int(_checkpoint_step(ck))}" if ck is not None
          else "no checkpoint yet (the next run starts over)")
    return f"stopped at step {step}; {at}; rerun the same command to resume"


def _checkpoint_step(path: Path) -> int:
    from outlearn.students.checkpoint import _NAME

    m = _NAME.match(path.name)
    return int(m.group(1)) if m else -1


def _steps(run: _Run, end: int, log: _MetricsLog, prog: Any, tokens: int) -> Path | None:
    cfg, last = run.cfg, None
    task = prog.add_task("train", total=cfg.optim.total_steps, completed=run.step,
                         kind=cfg.student.kind, info="")
    t0, n0 = time.perf_counter(), run.step
    while run.step < end:
        loss = run.train_step()
        rec: dict[str, Any] = {"step": run.step, "loss": loss,
                               "lr": run.sched.get_last_lr()[0]}
        if run.step % cfg.val_every == 0 or run.step == cfg.optim.total_steps:
            rec["val_loss"] = run.val_loss()
        tps = tokens * (run.step - n0) / max(1e-9, time.perf_counter() - t0)
        rec["tokens_per_s"] = tps
        log.write(rec)
        prog.update(task, completed=run.step, info=f"loss {loss:.3f} {tps:,.0f} tok/s")
        if run.step % cfg.checkpoint_every == 0 or run.step == end:
            last = save_checkpoint(checkpoint_path(cfg.out, run.step), run.payload())
    return last


def train_from_toml(path: str | Path) -> Path:
    """Load a :class:`TrainConfig` from TOML and :func:`train` it (the CLI's ``train``)."""
    return train(load_toml(TrainConfig, path, "train"))


def load_student(path: str | Path, device: str | None = None) -> tuple[nn.Module, TrainConfig]:
    """A trained student (eval mode, frozen, on ``device``: see :mod:`.device`) and its
    config, from a checkpoint file or an out dir (its latest checkpoint)."""
    ck = load_checkpoint(path)
    missing = [k for k in ("train_config", "model_kind", "model_config", "dims", "model")
               if k not in ck]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(missing)}: it was not written by `outlearn "
            "train` (or by a version that recorded them); retrain with this version")
    try:
        data = json.loads(ck["train_config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} has an unreadable train_config ({err}): "
                              "retrain with this version") from None
    cfg = parse_config(TrainConfig, data, f"checkpoint {path}")
    try:
        model = make_model(ck["model_kind"], ck["model_config"], **ck["dims"])
        model.load_state_dict(ck["model"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"checkpoint {path} does not match the {ck.get('model_kind')!r} model of this code "
            f"({err}): retrain with this version"
        ) from None
    model.eval().requires_grad_(False)
    return model.to(resolve_device(device)), cfg
