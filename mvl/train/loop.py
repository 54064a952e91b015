"""The loop: data -> train_step -> metrics, checkpoints and evaluations.

Rerunning the same command on the same workdir resumes from the newest checkpoint:
parameters, optimizer, EMA teacher, step (and so every rng), the data iterator's
position and the loop's own counters (metric sums of the current logging interval, skip
counts), so a resumed run logs and ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import os

import jax
import numpy as np

from mvl import checkpoint, sharding, validate
from mvl.errors import UserError
from mvl.data import pipeline, tokenizer as tokenizer_lib
from mvl.train import ema, state as state_lib, teacher_architecture
from mvl.train.program import build_program


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
    """The config's tokenizer, or WORKDIR/tokenizer.model trained from train captions.
    A CLIP BPE vocabulary (.txt[.gz] / .json, imported CLIP text towers) is read as it
    is, plus the [MASK] id it appends (mvl/data/clip_bpe.py)."""
    from mvl.data import clip_bpe

    if cfg.data.tokenizer and clip_bpe.is_clip_bpe(cfg.data.tokenizer):
        return clip_bpe.ClipBpeTokenizer(cfg.data.tokenizer)
    path = cfg.data.tokenizer or os.path.join(workdir, "tokenizer.model")
    if cfg.data.tokenizer and not os.path.exists(path):
        raise UserError(
            f"config data.tokenizer: {path} does not exist; leave it empty to "
            "train one into the workdir, or run python -m mvl.data.tokenizer"
        )
    source = pipeline.source_for_config(cfg.data, "train", cfg.seed)
    return tokenizer_lib.ensure_tokenizer(
        path,
        lambda: tokenizer_lib.captions_from_source(
            source, cfg.data.tokenizer_captions, spread=cfg.data.source not in pipeline.SOURCES
        ),
        cfg.data.vocab_size,
    )


def tokenizer_identity(tokenizer) -> dict:
    """What a checkpoint records of its tokenizer: token ids only mean something with
    the same model file."""
    with open(tokenizer.model_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"vocab_size": tokenizer.vocab_size, "sha256": digest, "path": tokenizer.model_path}


def check_same_tokenizer(saved: dict | None, current: dict, where: str):
    if not saved:
        return
    if saved["vocab_size"] != current["vocab_size"] or saved["sha256"] != current["sha256"]:
        raise UserError(
            f"config data.tokenizer: {current['path']} (vocab {current['vocab_size']}, "
            f"sha256 {current['sha256'][:12]}) is not the tokenizer {where} was trained "
            f"with ({saved['path']}, vocab {saved['vocab_size']}, sha256 "
            f"{saved['sha256'][:12]}); its token ids would mean other words. Point "
            "data.tokenizer at that file, or use a fresh --workdir."
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
        image_size=cfg.data.image_size,
        max_skipped_in_a_row=cfg.data.max_skipped_in_a_row,
    )


class Trainer:
    """Everything a run builds once: mesh, tokenizer, model, state, data, checkpoints."""

    def __init__(self, cfg, workdir: str, devices=None):
        cfg = teacher_architecture.resolve(cfg)
        validate.validate(cfg, len(jax.devices() if devices is None else devices))
        self.cfg = cfg
        self.workdir = prepare_workdir(workdir)
        self.mesh = sharding.make_mesh(cfg.mesh, devices)
        self.tokenizer = load_tokenizer(cfg, self.workdir)
        self.vocab_size = self.tokenizer.vocab_size
        self.tokenizer_identity = tokenizer_identity(self.tokenizer)
        self.checkpointer = checkpoint.Checkpointer(
            os.path.join(self.workdir, "checkpoints"),
            max_to_keep=cfg.checkpoint.max_to_keep,
            best_metric=cfg.checkpoint.best_metric,
            best_mode=cfg.checkpoint.best_mode,
        )
        self._check_tokenizer_before_building()
        if cfg.teacher.kind == "frozen" and not cfg.teacher.checkpoint:
            raise UserError(
                "config teacher.kind='frozen' needs teacher.checkpoint: a run "
                "(e.g. of configs/clip.py) whose image tower is the teacher"
            )
        # The same model, state shardings and jitted step mvl.compile compiles ahead of time.
        program = build_program(cfg, self.mesh, self.vocab_size, self.tokenizer.special_ids)
        self.model, self.teacher_model = program.model, program.teacher_model
        self.optimizer, self.schedule = program.optimizer, program.schedule
        self.state_shardings = program.state_shardings
        self.state, _ = state_lib.initial_state(
            self.model,
            self.optimizer,
            cfg,
            self.mesh,
            jax.random.PRNGKey(cfg.seed),
            self.teacher_model,
            self.state_shardings,
        )
        self.data_iterator = iter(train_dataset(cfg, self.tokenizer, self.mesh))
        self.train_step = program.train_step

    def _check_tokenizer_before_building(self):
        """Resuming with another tokenizer is named before anything compiles (the
        newest checkpoint's record; restore checks the one it actually reads)."""
        latest = self.checkpointer.latest_step()
        if latest is None:
            return
        try:
            saved = self.checkpointer.json_item(latest, "run").get("tokenizer")
        except Exception:  # noqa: BLE001 -- a damaged checkpoint: restore sets it aside
            return
        where = f"checkpoint {self.checkpointer.directory}/{latest}"
        check_same_tokenizer(saved, self.tokenizer_identity, where)

    def restore(self) -> tuple[int, dict]:
        """Resumes from the workdir's newest readable checkpoint if there is one, else
        starts from `init.checkpoint`'s parameters if set; returns the step the run is at
        and the loop state saved with it ({} for a fresh run)."""
        abstract = jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
            self.state,
            self.state_shardings,
        )
        restored = self.checkpointer.restore_latest(abstract, self.data_iterator)
        if restored is None:
            self.start_fresh()
            return int(self.state.step), {}
        step, self.state, self.data_iterator, run = restored
        where = f"checkpoint {self.checkpointer.directory}/{step}"
        check_same_tokenizer(run.get("tokenizer"), self.tokenizer_identity, where)
        return int(self.state.step), run.get("loop", {})

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
        replicated = sharding.replicated(self.mesh)
        source = checkpoint.load_params(directory, replicated, key="teacher.checkpoint")
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
        saved = checkpoint.load_run_record(directory).get("tokenizer")
        check_same_tokenizer(saved, self.tokenizer_identity, f"init.checkpoint {directory}")
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

    def save(self, loop_state: dict | None = None, metrics: dict | None = None) -> bool:
        """Checkpoints the state, the data position and `loop_state` (JSON-able)."""
        run = {"tokenizer": self.tokenizer_identity, "loop": loop_state or {}}
        return self.checkpointer.save(
            int(self.state.step), self.state, self.data_iterator, self.cfg, run, metrics
        )


def train_and_evaluate(cfg, workdir: str) -> dict[str, float]:
    """Trains `cfg.total_steps` steps (resuming if possible); returns the final evaluation,
    or {} when SIGTERM / SIGINT stopped it (after saving a checkpoint to resume from)."""
    from mvl.evaluate.suite import EvalSuite
    from mvl.train import preemption, reporting  # clu / tensorflow: only when training

    trainer = Trainer(cfg, workdir)
    cfg = trainer.cfg  # with the frozen teacher's architecture filled in
    start, loop_state = trainer.restore()
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
        loop = TrainLoop(trainer, cfg, reporter, evals, loop_state)
        return loop.run(start, stop)
    finally:
        stop.close()


class TrainLoop:
    """Steps, logs, evaluates and checkpoints; its own counters go into each checkpoint."""

    def __init__(self, trainer, cfg, reporter, evals, saved: dict):
        from mvl.train import faults, reporting

        self.trainer, self.cfg, self.reporter, self.evals = trainer, cfg, reporter, evals
        self.averager = reporting.MetricAverager.from_state(saved.get("averager", {}))
        self.health = StepHealth(cfg.optim.max_skipped_in_a_row, saved.get("health", {}))
        self.faults = faults.Faults.from_environment()
        self.reported: dict[str, float] = {}  # what this step reported (ranks checkpoints)

    def run(self, start: int, stop) -> dict[str, float]:
        cfg, trainer = self.cfg, self.trainer
        every_eval = cfg.eval.every_steps
        for step in range(start + 1, cfg.total_steps + 1):
            self.reported = {}
            batch = self.faults.poison(step, trainer.next_batch())
            metrics = trainer.step(batch)
            self.averager.add(metrics)
            self.health.check(step, metrics, trainer)
            self.reporter.step_done(step)
            if step % cfg.log_every_steps == 0 or step == cfg.total_steps:
                self.report(step, self.train_metrics(), "train")
            evaluated = every_eval and step % every_eval == 0 and step < cfg.total_steps
            if evaluated:
                self.report(step, self.evals.run(trainer.state), "eval")
            if step % cfg.checkpoint.every_steps == 0 or (evaluated and self.ranks_by_eval):
                self.save(step)
            self.faults.after_step(step)
            if stop.should_stop(step) and step < cfg.total_steps:
                return self.stop_after(step, stop.received)
        return self.finish()

    @property
    def ranks_by_eval(self) -> bool:
        return self.cfg.checkpoint.best_metric.startswith("eval/")

    def train_metrics(self) -> dict[str, float]:
        self.health.settle(self.trainer)
        return {**self.averager.compute_and_reset(), **self.health.totals()}

    def report(self, step: int, values: dict[str, float], prefix: str):
        self.reporter.scalars(step, values, prefix=prefix)
        self.reported.update({f"{prefix}/{k}": v for k, v in values.items()})
        best = self.cfg.checkpoint.best_metric
        if best.startswith(prefix + "/") and best not in self.reported:
            raise UserError(
                f"config checkpoint.best_metric={best!r} is not among the reported "
                f"{prefix} metrics: {', '.join(sorted(self.reported))}"
            )

    def loop_state(self) -> dict:
        self.health.settle(self.trainer)
        return {"averager": self.averager.state(), "health": self.health.state()}

    def save(self, step: int) -> bool:
        best = self.cfg.checkpoint.best_metric
        metrics = self.reported if best in self.reported else None
        saved = self.trainer.save(self.loop_state(), metrics)
        self.faults.after_save(step, saved)
        return saved

    def finish(self) -> dict[str, float]:
        cfg, trainer, reporter = self.cfg, self.trainer, self.reporter
        self.health.settle(trainer)
        final = self.evals.run(trainer.state)
        self.report(cfg.total_steps, final, "eval")
        self.save(cfg.total_steps)  # the final state, whatever the interval
        reporter.json("eval_final.json", final)
        write_reconstructions(trainer, cfg, self.evals.data, reporter)
        reporter.flush()
        trainer.checkpointer.wait()
        trainer.checkpointer.close()
        return final

    def stop_after(self, step: int, reason: str) -> dict:
        trainer = self.trainer
        self.save(step)
        self.reporter.flush()
        trainer.checkpointer.wait()
        trainer.checkpointer.close()
        print(
            f"stopped after step {step} ({reason}); checkpoint saved in "
            f"{trainer.checkpointer.directory}: rerun the same command to resume",
            flush=True,
        )
        return {}


class StepHealth:
    """Counts skipped steps (non-finite loss or gradient) and skipped samples (broken
    data), reading each step's flags one step behind: the host dispatches the next step
    before it waits for the previous one. `settle` catches up (before a log or a save).
    """

    def __init__(self, limit: int, saved: dict):
        self.limit = limit
        self.in_a_row = saved.get("in_a_row", 0)
        self.steps_skipped = saved.get("steps_skipped", 0)
        self.samples_skipped = saved.get("samples_skipped", 0)
        self.pending = None

    def check(self, step: int, metrics: dict, trainer):
        previous = self.pending
        self.pending = (step, metrics["skipped"], metrics.get("data/skipped_samples", 0))
        if previous is not None:
            self._count(*previous, trainer)

    def settle(self, trainer):
        if self.pending is not None:
            previous, self.pending = self.pending, None
            self._count(*previous, trainer)

    def _count(self, step: int, skipped, samples, trainer):
        self.samples_skipped += int(samples)
        skipped = bool(float(skipped))
        self.steps_skipped += skipped
        self.in_a_row = self.in_a_row + 1 if skipped else 0
        if self.in_a_row >= self.limit:
            last = trainer.checkpointer.latest_step()
            where = f"{trainer.checkpointer.directory}/{last}" if last is not None else "none yet"
            raise UserError(
                f"non-finite loss or gradient in {self.in_a_row} steps in a row, the last at "
                f"step {step} (optim.max_skipped_in_a_row={self.limit}); last "
                f"checkpoint: {where}. Lower optim.lr, "
                "raise optim.warmup_steps or check the data, then rerun to resume from it."
            )

    def totals(self) -> dict[str, float]:
        return {
            "skipped_steps_total": float(self.steps_skipped),
            "data/skipped_samples_total": float(self.samples_skipped),
        }

    def state(self) -> dict:
        assert self.pending is None, "settle() before saving"
        return {
            "in_a_row": self.in_a_row,
            "steps_skipped": self.steps_skipped,
            "samples_skipped": self.samples_skipped,
        }


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
