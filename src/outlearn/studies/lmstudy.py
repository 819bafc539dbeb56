"""The ``selfdistill-lm`` study: character LMs refitted on their own samples (claim 13).

Registered with ``selfdistill-categorical`` in :mod:`outlearn.studies.selfdistill`; the
models and the loop are in :mod:`outlearn.selfdistill`.

Settings: every temperature in ``temperatures`` with self data only, and at T=1 a
``fresh`` fraction of real data and (optionally) accumulation of all past data. Each
runs for ``seeds`` seeds with an n-gram model, and with a small transformer when enabled.
The verdict asks three things of each model, each decided by CIs over seeds:
T<1 lowers the predictive entropy, T>1 raises it, and at T=1 fresh or accumulated real
data end with a lower held-out cross-entropy than self data alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from pydantic import Field

from outlearn.config import Config
from outlearn.report.section import Outcome, Section
from outlearn.selfdistill.charlm import TransformerLM
from outlearn.selfdistill.figures import ci, curves_figure
from outlearn.selfdistill.lmloop import CharLM, LMLoopSpec, run_lm_loop
from outlearn.selfdistill.ngram import NGramLM
from outlearn.selfdistill.sampling import Sampler
from outlearn.selfdistill.text import Corpus, load_corpus

METRICS = {"heldout_bits": "held-out bits/char", "entropy_bits": "entropy bits/char",
           "distinct": "distinct n-grams"}


class TransformerSpec(Config):
    """The small character transformer and its (smaller) loop."""

    enabled: bool = Field(True, description="run the transformer's loops (false: the n-gram "
                          "model only)")
    context: int = Field(32, ge=2, description="characters of context")
    d: int = Field(48, ge=4, description="model width (embedding size)")
    layers: int = Field(2, ge=1, description="transformer blocks")
    heads: int = Field(4, ge=1, description="attention heads per block")
    steps: int = Field(100, ge=1, description="training steps per generation (each generation "
                       "is trained from scratch)")
    batch: int = Field(32, ge=1, description="windows per training step")
    lr: float = Field(3e-3, gt=0, description="learning rate")
    generations: int = Field(2, ge=1, description="refits on its own samples")
    streams: int = Field(16, ge=1, description="sampled streams per generation's corpus")
    length: int = Field(400, ge=8, description="characters per stream")
    seeds: int = Field(1, ge=1, description="independent loops (1 gives no CI: the verdict "
                       "then reads inconclusive)")


class LMStudyConfig(Config):
    """The language-model self-distillation study (n-gram, and a small transformer)."""

    temperatures: list[float] = Field(default_factory=lambda: [0.8, 1.0, 1.25],
                                      description="sampling temperatures, one self-data-only "
                                      "loop each")
    generations: int = Field(5, ge=1, description="refits of the n-gram model on its own "
                             "samples")
    streams: int = Field(32, ge=1, description="sampled streams per generation's corpus")
    length: int = Field(2000, ge=8, description="characters per stream")
    fresh: float = Field(0.2, ge=0, le=1, description="share of real text in each corpus of the "
                         "T=1 'fresh' loop (0: that loop is not run)")
    accumulate: bool = Field(True, description="also run the T=1 loop that fits on every "
                             "corpus so far, the real text included")
    order: int = Field(4, ge=1, le=6, description="n of the character n-gram model")
    beta: float = Field(1.0, gt=0, description="the n-gram model's smoothing weight towards the "
                        "next lower order")
    ngram: int = Field(4, ge=1, description="n of the distinct-n-gram metric")
    seeds: int = Field(3, ge=1, description="independent n-gram loops (CIs are over them)")
    heldout_chars: int = Field(0, ge=0, description="0: all of the held-out text")
    threads: int = Field(1, ge=1, le=8, description="torch threads of the transformer")
    transformer: TransformerSpec = Field(default_factory=TransformerSpec,
                                         description="the small character transformer "
                                         "([transformer] table)")


def settings(cfg: LMStudyConfig) -> dict[str, tuple[float, float, bool]]:
    """name -> (temperature, fresh, accumulate)."""
    out = {f"T={t:g}": (t, 0.0, False) for t in cfg.temperatures}
    if cfg.fresh > 0:
        out[f"T=1, fresh {cfg.fresh:g}"] = (1.0, cfg.fresh, False)
    if cfg.accumulate:
        out["T=1, accumulate"] = (1.0, 0.0, True)
    return out


def _loop(make: Callable[[int, int], CharLM], corpus: Corpus, setting: str, gens: int,
          streams: int, length: int, seeds: int,
          cfg: LMStudyConfig) -> dict[str, np.ndarray]:
    """One setting (a key of :func:`settings`) over seeds: metric -> (G + 1, seeds)."""
    t, fresh, acc = settings(cfg)[setting]
    spec = LMLoopSpec(Sampler(t), gens, streams, length, fresh, acc, cfg.ngram)
    runs = [run_lm_loop(partial(make, s), corpus, spec, seed=s) for s in range(seeds)]
    return {m: np.stack([r[m] for r in runs], axis=1) for m in METRICS}


def run_ngram(cfg: LMStudyConfig, corpus: Corpus, setting: str) -> dict[str, np.ndarray]:
    """The n-gram model's loops in one setting."""
    make = lambda _s, _g: NGramLM(corpus.size, corpus.pad, cfg.order, cfg.beta)
    return _loop(make, corpus, setting, cfg.generations, cfg.streams, cfg.length, cfg.seeds,
                 cfg)


def run_transformer(cfg: LMStudyConfig, corpus: Corpus, setting: str) -> dict[str, np.ndarray]:
    """The character transformer's loops in one setting."""
    tf = cfg.transformer
    make = lambda s, g: TransformerLM(
        corpus.size, corpus.pad, tf.context, tf.d, tf.layers, tf.heads, tf.steps, tf.batch,
        tf.lr, seed=1000 * s + g, threads=cfg.threads)
    return _loop(make, corpus, setting, tf.generations, tf.streams, tf.length, tf.seeds, cfg)


def _verdict(res: dict[str, dict[str, np.ndarray]]) -> tuple[str, str, Outcome]:
    checks, words = [], []
    for name, r in res.items():
        if "," in name:
            continue
        t = float(name[2:])
        start, end = ci(r["entropy_bits"][0]), ci(r["entropy_bits"][-1])
        if t < 1:
            checks.append(end.high < start.low)
            words.append(f"{name}: entropy {start.value:.3g} -> {end.value:.3g}")
        elif t > 1:
            checks.append(end.low > start.high)
            words.append(f"{name}: entropy {start.value:.3g} -> {end.value:.3g}")
    if "T=1" in res:
        plain = ci(res["T=1"]["heldout_bits"][-1])
        for name in [n for n in res if n.startswith("T=1,")]:
            held = ci(res[name]["heldout_bits"][-1])
            checks.append(held.high < plain.low)
            words.append(f"held-out bits at G: {name} {held.value:.3g} vs T=1 {plain.value:.3g}")
    if not checks:
        return ("not tested", "no temperature other than 1 and no real-data option was run",
                Outcome.INCONCLUSIVE)
    seeds = next(iter(res.values()))["entropy_bits"].shape[1]
    if seeds < 2:  # a point is not evidence: the direction is reported, not a verdict
        direction = "in the claimed direction" if all(checks) else "not in the claimed direction"
        return (f"inconclusive (one seed, {direction})",
                "; ".join(words) + "; one seed gives no CI: run with seeds >= 2 to decide",
                Outcome.INCONCLUSIVE)
    if all(checks):
        return "confirmed", "; ".join(words), Outcome.CONFIRMED
    return "not confirmed", "; ".join(words), Outcome.REFUTED


def lm_section(key: str, model: str, res: dict[str, dict[str, np.ndarray]], setting: str,
               fig_dir) -> Section:
    """The table (metrics at generation 0 and G, CIs over seeds), figure and verdict."""
    rows = []
    for name, r in res.items():
        row: dict = {"setting": name}
        for m, label in METRICS.items():
            row[f"{label} @0"] = ci(r[m][0])
            row[f"{label} @G"] = ci(r[m][-1])
        rows.append(row)
    panels = {label: {n: r[m] for n, r in res.items()} for m, label in METRICS.items()}
    fig = curves_figure(fig_dir / f"{key}.png", panels, "generation", "value")
    verdict, reason, outcome = _verdict(res)
    return Section(key, f"Self-distillation of a {model}",
                   "Refitted on its own samples, a language model at T<1 loses entropy and "
                   "diversity, at T>1 gains entropy; fresh or accumulated real data hold its "
                   "fit to real text.", setting, list(rows[0]), rows, verdict, reason, [fig],
                   outcome=outcome)


def run_lm_study(cfg: LMStudyConfig, ctx) -> list[Section]:
    """Stages: the n-gram loops, then the transformer loops, one stage per setting."""
    corpus = load_corpus(max_heldout=cfg.heldout_chars or None)
    # each setting a stage (side by side with --workers; each setting's seeds are its own,
    # so the results do not depend on the order)
    ngram_inputs = cfg.model_dump(exclude={"transformer"})
    ngram = ctx.stage_each("lm-ngram", settings(cfg), lambda n: [ngram_inputs, n],
                           lambda n, _d: run_ngram(cfg, corpus, n))
    text = (f"pydoc topics ({len(corpus.train):,} train / {len(corpus.heldout):,} held-out "
            f"chars); each generation {{streams}} x {{length}} sampled chars; {{seeds}} seeds")
    sections = [lm_section("sd-lm-ngram", f"character {cfg.order}-gram model", ngram,
                           text.format(streams=cfg.streams, length=cfg.length,
                                       seeds=cfg.seeds) + f"; {cfg.generations} generations.",
                           ctx.run_dir)]
    tf = cfg.transformer
    if tf.enabled:
        res = ctx.stage_each("lm-transformer", settings(cfg), lambda n: [cfg, n],
                             lambda n, _d: run_transformer(cfg, corpus, n))
        sections.append(lm_section(
            "sd-lm-transformer", f"character transformer ({tf.layers} layers, d={tf.d})", res,
            text.format(streams=tf.streams, length=tf.length, seeds=tf.seeds)
            + f"; {tf.generations} generations of {tf.steps} training steps.", ctx.run_dir))
    return sections
