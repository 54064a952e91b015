"""The loop: data -> train_step -> metrics, checkpoints and evaluations.

Rerunning the same command on the same workdir resumes from the newest checkpoint:
parameters, optimizer, step (and so every rng) and the data iterator's position.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from mvl import checkpoint, sharding, validate
from mvl.errors import UserError
from mvl.data import pipeline, tokenizer as tokenizer_lib
from mvl.models.model import build_model, build_teacher
from mvl.train import ema, optim, state as state_lib
from mvl.train.step import make_train_step


class WorkdirError(UserError, OSError):
    """The workdir cannot be created or written."""


def prepare_workdir(workdir: str) -> str:
    """Creates the workdir and proves it is writable before any compute is spent."""
    workdir = os.path.abspath(workdir)
    probe = os.path.join(workdir, f".write_probe_{jax.process_index()}")
    try:
        os.makedirs(workdir, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise WorkdirError(
            f"workdir {workdir} is not writable ({e.strerror}); choose another --workdir"
        ) from None
    return workdir


def load_tokenizer(cfg, workdir: str) -> tokenizer_lib.Tokenizer:
    """The config's tokenizer, or WORKDIR/tokenizer.model trained from train captions."""
    path = cfg.data.tokenizer or os.path.join(workdir, "tokenizer.model")
    if cfg.data.tokenizer and not os.path.exists(path):
        raise UserError(
            f"config data.tokenizer: {path} does not exist; leave it empty to "
            "train one into the workdir, or run python -m mvl.data.tokenizer"
        )
    source = pipeline.source_for_config(cfg.data, "train", cfg.seed)
    return tokenizer_lib.ensure_tokenizer(
        path,
        lambda: tokenizer_lib.captions_from_source(source, cfg.data.tokenizer_captions),
        cfg.data.vocab_size,
    )


def train_dataset(cfg, tokenizer, mesh):
    source = pipeline.source_for_config(cfg.data, "train", cfg.seed)
    return pipeline.make_dataset(
        source,
        tokenizer,
        batch_size=sharding.batch_size_per_process(cfg.batch_size, mesh),
        max_text_len=cfg.data.max_text_len,
        seed=cfg.seed,
        shuffle=True,
        repeat=True,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        augment=cfg.data.augment,
    )


class Trainer:
    """Everything a run builds once: mesh, tokenizer, model, state, data, checkpoints."""

    def __init__(self, cfg, workdir: str, devices=None):
        validate.validate(cfg, len(jax.devices() if devices is None else devices))
        self.cfg = cfg
        self.workdir = prepare_workdir(workdir)
        self.mesh = sharding.make_mesh(cfg.mesh, devices)
        self.tokenizer = load_tokenizer(cfg, self.workdir)
        self.vocab_size = self.tokenizer.vocab_size
        self.model = build_model(cfg, self.vocab_size)
        self.optimizer = optim.make_optimizer(cfg.optim, cfg.total_steps)
        self.schedule = optim.learning_rate_schedule(cfg.optim, cfg.total_steps)
        self.teacher_model = build_teacher(cfg)
        if cfg.teacher.kind == "frozen" and not cfg.teacher.checkpoint:
            raise UserError(
                "config teacher.kind='frozen' needs teacher.checkpoint: a run "
                "(e.g. of configs/clip.py) whose image tower is the teacher"
            )
        self.state, self.state_shardings = state_lib.initial_state(
            self.model,
            self.optimizer,
            cfg,
            self.mesh,
            jax.random.PRNGKey(cfg.seed),
            self.teacher_model,
        )
        self.data_iterator = iter(train_dataset(cfg, self.tokenizer, self.mesh))
        self.checkpointer = checkpoint.Checkpointer(
            os.path.join(self.workdir, "checkpoints"), max_to_keep=cfg.checkpoint.max_to_keep
        )
        self.train_step = jax.jit(
            make_train_step(
                self.model, cfg, self.optimizer, self.schedule, self.vocab_size, self.teacher_model
            ),
            in_shardings=(self.state_shardings, sharding.batch_sharding(self.mesh)),
            out_shardings=(self.state_shardings, sharding.replicated(self.mesh)),
            donate_argnums=0,
        )

    def restore(self) -> int:
        """Resumes from the workdir's newest checkpoint if there is one, else starts from
        `init.checkpoint`'s parameters if set; returns the step the run is at."""
        abstract = jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
            self.state,
            self.state_shardings,
        )
        restored = self.checkpointer.restore_latest(abstract, self.data_iterator)
        if restored is not None:
            self.state, self.data_iterator = restored
        else:
            self.start_fresh()
        return int(self.state.step)

    def start_fresh(self):
        """A new run: parameters from `init.checkpoint`, then the teacher, if any."""
        if self.cfg.init.checkpoint:
            self.initialise_from(self.cfg.init.checkpoint, self.cfg.init.strict)
        if self.cfg.teacher.kind == "ema":
            self._set_teacher(self._student_copy_for_teacher())
        if self.cfg.teacher.kind == "frozen":
            self._set_teacher(self._frozen_teacher(self.cfg.teacher.checkpoint))

    def _student_copy_for_teacher(self):
        """The mean teacher starts as the student's image tower: a copy, not the same
        buffers, since the step donates the state and one buffer donated twice (as params
        and as teacher) crashes XLA."""
        student = ema.same_entries(self.state.params["image"], self.state.teacher)
        return jax.tree.map(lambda x: x.copy(), student)

    def _frozen_teacher(self, directory: str):
        """The image tower of another run (e.g. of configs/clip.py), matched strictly."""
        source = checkpoint.load_params(directory, sharding.replicated(self.mesh))
        if "image" not in source:
            raise UserError(f"config teacher.checkpoint {directory} has no image tower")
        teacher, _ = checkpoint.merge_params(
            self.state.teacher, source["image"], True, f"config teacher.checkpoint {directory}"
        )
        return teacher

    def _set_teacher(self, teacher):
        self.state = self.state.replace(
            teacher=jax.device_put(teacher, self.state_shardings.teacher)
        )

    def initialise_from(self, directory: str, strict: bool):
        """Parameters from another run (e.g. FLIP's unmasked tuning starts from a FLIP
        run); the optimizer, step and data order start fresh."""
        source = checkpoint.load_params(directory, sharding.replicated(self.mesh))
        params, taken = checkpoint.merge_params(
            self.state.params, source, strict, f"config init.checkpoint {directory}"
        )
        params = jax.device_put(params, self.state_shardings.params)
        self.state = self.state.replace(params=params)
        print(f"initialised {taken} parameter arrays from {directory}", flush=True)

    def next_batch(self):
        return sharding.global_batch(next(self.data_iterator), self.mesh)

    def step(self, batch):
        with sharding.activate(self.mesh):
            self.state, metrics = self.train_step(self.state, batch)
        return metrics

    def save(self) -> bool:
        return self.checkpointer.save(
            int(self.state.step), self.state, self.data_iterator, self.cfg
        )


def train_and_evaluate(cfg, workdir: str) -> dict[str, float]:
    """Trains `cfg.total_steps` steps (resuming if possible); returns the final evaluation,
    or {} when SIGTERM / SIGINT stopped it (after saving a checkpoint to resume from)."""
    from mvl.evaluate.suite import EvalSuite
    from mvl.train import preemption, reporting  # clu / tensorflow: only when training

    trainer = Trainer(cfg, workdir)
    start = trainer.restore()
    reporter = reporting.Reporter(trainer.workdir, cfg.total_steps, cfg.log_every_steps)
    if start:
        print(f"resumed from {trainer.checkpointer.directory}/{start}", flush=True)
    evals = EvalSuite(
        trainer.model,
        cfg,
        trainer.tokenizer,
        trainer.mesh,
        jax.process_index(),
        jax.process_count(),
        trainer.teacher_model,
    )
    stop = preemption.StopRequests()
    try:
        return _train_loop(trainer, cfg, start, reporter, evals, stop)
    finally:
        stop.close()


def _train_loop(trainer, cfg, start, reporter, evals, stop) -> dict[str, float]:
    from mvl.train import reporting

    averager = reporting.MetricAverager()
    skips = SkipCounter(cfg.optim.max_skipped_in_a_row)
    for step in range(start + 1, cfg.total_steps + 1):
        metrics = trainer.step(trainer.next_batch())
        averager.add(metrics)
        skips.check(step, metrics["skipped"], trainer)
        reporter.step_done(step)
        if step % cfg.log_every_steps == 0 or step == cfg.total_steps:
            reporter.scalars(step, averager.compute_and_reset())
        if cfg.eval.every_steps and step % cfg.eval.every_steps == 0 and step < cfg.total_steps:
            reporter.scalars(step, evals.run(trainer.state), prefix="eval")
        if step % cfg.checkpoint.every_steps == 0:
            trainer.save()
        if stop.should_stop(step) and step < cfg.total_steps:
            return _stop_after(trainer, reporter, step, stop.received)
    skips.flush(trainer)
    trainer.save()  # the final state, whatever the interval
    final = evals.run(trainer.state)
    reporter.scalars(cfg.total_steps, final, prefix="eval")
    reporter.json("eval_final.json", final)
    write_reconstructions(trainer, cfg, evals.data, reporter)
    reporter.flush()
    trainer.checkpointer.wait()
    trainer.checkpointer.close()
    return final


class SkipCounter:
    """Counts steps skipped for a non-finite loss or gradient, one step behind (reading
    the previous step's flag lets the host dispatch the next step first)."""

    def __init__(self, limit: int):
        self.limit, self.in_a_row, self.pending = limit, 0, None

    def check(self, step: int, skipped, trainer):
        previous, self.pending = self.pending, (step, skipped)
        if previous is None:
            return
        previous_step, flag = previous
        self.in_a_row = self.in_a_row + 1 if float(flag) else 0
        if self.in_a_row >= self.limit:
            last = trainer.checkpointer.latest_step()
            where = f"{trainer.checkpointer.directory}/{last}" if last is not None else "none yet"
            raise UserError(
                f"non-finite loss or gradient in {self.in_a_row} steps in a row, the last at "
                f"step {previous_step} (optim.max_skipped_in_a_row={self.limit}); last "
                f"checkpoint: {where}. Lower optim.lr, "
                "raise optim.warmup_steps or check the data, then rerun to resume from it."
            )

    def flush(self, trainer):
        """Checks the last step too (at the end of the loop)."""
        if self.pending is not None:
            self.check(self.pending[0] + 1, 0.0, trainer)


def _stop_after(trainer, reporter, step: int, reason: str) -> dict:
    trainer.save()
    reporter.flush()
    trainer.checkpointer.wait()
    trainer.checkpointer.close()
    print(
        f"stopped after step {step} ({reason}); checkpoint saved in "
        f"{trainer.checkpointer.directory}: rerun the same command to resume",
        flush=True,
    )
    return {}


def write_reconstructions(trainer, cfg, eval_data, reporter):
    """The PNG grid of original / masked / reconstructed images (when pixels are a target)."""
    from mvl.evaluate import reconstruction

    if not reconstruction.pixel_objective(cfg) or not cfg.eval.num_reconstructions:
        return
    count = cfg.eval.num_reconstructions
    batch = {k: np.asarray(v[:count]) for k, v in eval_data.items() if k in ("image", "text")}
    reconstruct = reconstruction.make_reconstruct_fn(trainer.model, cfg, trainer.vocab_size)
    with sharding.activate(trainer.mesh):
        hidden, images = reconstruct(trainer.state.params, batch, jax.random.PRNGKey(cfg.seed))
    picture = reconstruction.grid_image(
        batch["image"], np.asarray(hidden), np.asarray(images), cfg.model.image.patch_size
    )
    reporter.image(cfg.total_steps, "reconstructions", picture)
