"""An in-context student trained by offline RL: AD's transformer with action values.

``adq`` is :class:`~outlearn.students.ad.ADTransformer` (the same tokens, windows,
positions, key/value cache) whose head reads Q-values over actions instead of logits, and
whose loss is a temporal-difference objective on the history's own transitions instead of
imitation. Everything else is AD's: the sampler, checkpoints and bit-exact resume,
threads and shards, precision, device, and acting online through
:class:`~outlearn.students.policy.StudentLearner` (with the cache).

The objective (:func:`td_terms`), at every step ``t`` of a training window: the model's
value ``Q(h_t, a_t)`` of the action the teacher took, with ``h_t`` the window up to step
``t``, regressed on

    y_t = r_t + gamma * (1 - terminated_t) * max_a Q_target(h_{t+1}, a)

(0.5 (Q - y)^2), plus a conservative (CQL(H), Kumar et al. 2020) term
``cql_alpha * (logsumexp_a Q(h_t, a) - Q(h_t, a_t))`` that pushes down the values of
actions the history does not show. ``Q_target`` is a frozen copy of the weights, copied
from the trained ones every ``target_every`` optimiser steps (DQN's target network).

* **The next state is the next token of the same stream.** A window holds
  ``context_len + 1`` steps; the trained network reads steps ``[0, C)`` and the target
  network steps ``[1, C + 1)``, so ``h_{t+1}`` is step ``t + 1`` with its context,
  the window slid by one step, exactly as the student's context slides when it acts.
  Both passes are plain causal passes over ``C`` tokens: the objective costs one
  gradient-free forward pass more than AD's (``benchmarks/train.py``).
* **Bootstrapping crosses truncations.** An episode cut by the step limit continues into
  the learner's next episode: the student's value is that of its stream, as it acts in
  context across resets (what it finds in one episode pays in the next). Only a
  terminated step (the task ended) stops the bootstrap.
* **Acting**: "greedy" is the argmax of Q; "sample" (the studies' default) is
  epsilon-greedy with ``epsilon`` (default 0.05, DQN's evaluation epsilon, Mnih et al.
  2015): a deterministic greedy policy in a deterministic task can repeat a loop forever
  when its context holds no reward yet; a small epsilon breaks it.

What was tried, and measured on ``tests/test_adq.py``'s chain (5 states, the goal 4 steps
right of the start ends the episode, 8-step episodes; 12 histories of 200 steps of a
uniform random walk that never reaches the goal in two episodes in a row, 21% of its
episodes; the test's model, 300 steps of batch 16 and context 16; the student greedy in
context, 16 streams of 80 steps; seeds are training seeds):

* **Target-network Q-learning with CQL is kept.** With ``cql_alpha`` 0 and 0.1, and a
  copy every 1, 5, 10, 20 or 50 steps, every seed (4 each) reached the goal in every
  episode, by the shortest path but for one 5-step episode in one seed (whose values at
  the first step of a stream, a token with no previous step, favour "left"); AD on the
  same history reached it in 23% of its episodes, moving right with probability 0.51.
* **The conservative term matters where the history lacks an action.** With a walk that
  always moves right from the start cell (``Q(start, left)`` never seen): ``cql_alpha`` 0
  left 2 of 6 seeds stuck at the start forever (greedy on the unseen action's
  extrapolated value) and one slower; 0.1 put every seed on the shortest path (the unseen
  value pushed to about -3); 0.3 and more bend the values towards the walk's own actions
  (0.3: 3 of 6 seeds wander, 6-6.5 steps an episode; 1.0 on the plain walk: the goal in
  about half the episodes). Hence the default 0.1. A teacher's histories of the studies
  are the gap case: a converging teacher stops taking most actions.
* **Target copies**: every 150 steps (two copies in 300 steps), one of two seeds never
  reached the goal and the other took 4.8-4.9 steps an episode, its values of "right"
  along the path off by 0.15-0.38 on average (0.02-0.09 with a copy every 1-20 steps);
  every 50 steps reached the optimum (off by 0.05-0.12). (In 100 steps no setting was
  reliable.) Values propagate about one step per copy, so the default copies every 10
  steps: 50 to 200 copies in the studies' 500 to 2,000 training steps, more than the
  longest path of a 9x9 Dark Room (16 steps). Polyak averaging and double Q-learning
  were not tried: double Q needs the trained network's values on the slid window, a
  third forward pass (about 1.7x AD's cost, over the 1.5x budget).
* **An advantage-weighted policy head** was not built: it needs these Q-values anyway and
  adds a second head and loss; the greedy Q policy already reached the optimum here.
* ``gamma`` 0.9: values look about 10 steps ahead, one Dark Room episode (demo: 10
  steps) or half of one (9x9: 20), so a goal found in the context counts from anywhere
  in the room, while the regression targets stay within 1 / (1 - gamma) = 10.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from outlearn.registry import STUDENTS
from outlearn.students.ad import ADConfig, ADTransformer


class ADQConfig(ADConfig):
    """AD's transformer plus the RL objective's settings (see the module docstring)."""

    gamma: float = Field(
        0.9, ge=0.0, lt=1.0, description="discount: values look about 1 / (1 - gamma) steps "
        "ahead (10: one or two Dark Room episodes)")
    target_every: int = Field(
        10, ge=1, description="optimiser steps between copies of the weights into the "
        "target network")
    cql_alpha: float = Field(
        0.1, ge=0.0, allow_inf_nan=False,
        description="weight of the conservative term (0: plain target-network Q-learning)")
    epsilon: float = Field(
        0.05, ge=0.0, le=1.0, description="random-action probability when acting in "
        "'sample' mode ('greedy': none)")


def td_terms(q: torch.Tensor, q_next: torch.Tensor, action: torch.Tensor,
             reward: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor,
             gamma: float, cql_alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked sum of the per-step losses, number of masked steps), in float32.

    ``q``: (B, T, A) values of the trained network at steps t; ``q_next`` (B, T, A): the
    target network's at steps t + 1 (no gradient flows into it); ``action`` (B, T) int,
    ``reward`` (B, T), ``terminated`` (B, T) bool, ``mask`` (B, T) bool: step t's. Per step:
    0.5 (Q(a_t) - y_t)^2 + cql_alpha (logsumexp Q - Q(a_t)), y_t = r_t + gamma (1 -
    terminated_t) max Q_next."""
    q, q_next = q.float(), q_next.detach().float()
    q_a = q.gather(-1, action.unsqueeze(-1)).squeeze(-1)
    y = reward.float() + gamma * (~terminated).float() * q_next.max(-1).values
    per = 0.5 * (q_a - y) ** 2
    if cql_alpha > 0:
        per = per + cql_alpha * (torch.logsumexp(q, -1) - q_a)
    m = mask.float()
    return (per * m).sum(), m.sum()


def _backbone(cfg: ADQConfig) -> ADConfig:
    return ADConfig(**cfg.model_dump(include=set(ADConfig.model_fields)))


@STUDENTS.register("adq")
class ADQTransformer(ADTransformer):
    """AD's transformer with Q-values over actions, trained by :func:`td_terms`.

    ``forward``, ``forward_stream``, ``init_cache`` and ``step`` are AD's and return
    Q-values (B, T, A) / (B, A). ``target`` is the target network (an
    :class:`ADTransformer` of the same size, frozen, always in eval mode); its weights are
    part of the state dict, so checkpoints carry it and a resumed run is bit-identical.
    """

    kind = "adq"
    config_class = ADQConfig
    transitions = True  # the sampler adds each window's successor step, rewards, ends

    def __init__(self, cfg: ADQConfig, num_obs: int, num_actions: int):
        super().__init__(cfg, num_obs, num_actions)
        self.cfg: ADQConfig = cfg
        self.target = ADTransformer(_backbone(cfg), num_obs, num_actions)
        self.target.requires_grad_(False)
        self.sync_target()
        self.target.eval()

    def train(self, mode: bool = True) -> ADQTransformer:
        super().train(mode)
        self.target.train(False)  # no dropout in the bootstrap targets
        return self

    @torch.no_grad()
    def sync_target(self) -> None:
        """Copy the trained weights into the target network."""
        for name, p in self.target.named_parameters():
            p.copy_(self.get_parameter(name))

    def after_update(self, step: int) -> None:
        """Called by the training loop after optimiser step ``step`` (1, 2, ...)."""
        if step % self.cfg.target_every == 0:
            self.sync_target()

    def forward_batch(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q of steps [0, C), target Q of steps [1, C + 1)) of a window of C + 1 steps."""
        x = [b[k] for k in ("obs", "prev_action", "prev_reward", "new_episode")]
        q = self(*(z[:, :-1] for z in x))
        with torch.no_grad():
            q_next = self.target(*(z[:, 1:] for z in x))
        return q, q_next

    def objective_terms(self, out: tuple[torch.Tensor, torch.Tensor],
                        b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        q, q_next = out
        return td_terms(q, q_next, b["target"][:, :-1], b["reward"][:, :-1],
                        b["terminated"][:, :-1], b["mask"][:, :-1], self.cfg.gamma,
                        self.cfg.cql_alpha)

    def action_probs(self, q: np.ndarray, mode: str) -> np.ndarray:
        """(B, A) action probabilities from Q-values (B, A): "greedy" a one-hot of the
        argmax, "sample" epsilon-greedy."""
        greedy = np.eye(self.num_actions, dtype=np.float32)[np.asarray(q).argmax(-1)]
        if mode == "greedy":
            return greedy
        eps = self.cfg.epsilon
        return (1.0 - eps) * greedy + np.float32(eps / self.num_actions)

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"gamma={c.gamma}, target_every={c.target_every}, cql_alpha={c.cql_alpha}, "
                f"epsilon={c.epsilon}")

