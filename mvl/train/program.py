"""The compiled train step's ingredients, built the same way for a run and for an
ahead-of-time compile: model, optimizer, schedule, teacher, the state's shapes and
shardings, and the jitted `train_step` with its shardings and donation.

`mvl.main` (Trainer) fills the abstract state with real parameters and feeds real
batches; `mvl.compile` lowers the same jitted function with the abstract state and
`mvl.data.batch_spec` for a topology it does not have.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax

from mvl.models.model import build_model, build_teacher
from mvl.runtime import sharding
from mvl.train import optim
from mvl.train import state as state_lib
from mvl.train.step import make_train_step


@dataclasses.dataclass
class Program:
    model: Any
    teacher_model: Any
    optimizer: Any
    schedule: Callable
    abstract_state: Any  # TrainState of ShapeDtypeStructs with shardings
    state_shardings: Any
    train_step: Any  # jitted: (state, batch) -> (state, metrics); donates the state


def build_program(cfg, mesh, vocab_size: int, special) -> Program:
    """`vocab_size` and `special` are the tokenizer's (its `vocab_size`, `special_ids`)."""
    model = build_model(cfg, vocab_size, special)
    optimizer = optim.make_optimizer(cfg.optim, cfg.total_steps)
    schedule = optim.learning_rate_schedule(cfg.optim, cfg.total_steps)
    teacher_model = build_teacher(cfg)
    abstract, shardings = state_lib.abstract_state(model, optimizer, cfg, mesh, teacher_model)
    train_step = jax.jit(
        make_train_step(model, cfg, optimizer, schedule, teacher_model),
        in_shardings=(shardings, sharding.batch_sharding(mesh)),
        out_shardings=(shardings, sharding.replicated(mesh)),
        donate_argnums=0,
    )
    return Program(model, teacher_model, optimizer, schedule, abstract, shardings, train_step)
