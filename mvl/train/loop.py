"""A run: the Trainer (mesh, tokenizer, model, state, data, checkpoints) and
`train_and_evaluate`, which starts it up phase by phase and hands it to TrainLoop
(mvl/train/train_loop.py: data -> train_step -> metrics, checkpoints and evaluations).

Rerunning the same command on the same workdir resumes from the newest checkpoint:
parameters, optimizer, EMA teacher, step (and so every rng), the data iterator's
position and the loop's own counters (metric sums of the current logging interval, skip
counts), so a resumed run logs and ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import os

import jax

from mvl import validate
from mvl.runtime import checkpoint, run_identity, sharding
from mvl.runtime.errors import UserError
from mvl.train import ema, teacher_architecture
from mvl.train import startup as startup_lib
from mvl.train import state as state_lib
from mvl.train.datasets import train_dataset
from mvl.train.program import build_program
from mvl.train.run_tokenizer import check_same_tokenizer, load_tokenizer, tokenizer_identity
from mvl.train.workdir import prepare_workdir


class Trainer:
    """Everything a run builds once: mesh, tokenizer, model, state, data, checkpoints."""

    def __init__(self, cfg, workdir: str, devices=None, startup=startup_lib.QUIET):
        cfg = teacher_architecture.resolve(cfg)
        run_on = jax.devices() if devices is None else devices
        validate.validate(cfg, len(run_on), platform=run_on[0].platform)
        self.cfg = cfg
        self.workdir = prepare_workdir(workdir)
        self.mesh = sharding.make_mesh(cfg.mesh, devices)
        self.rules = sharding.rules(cfg.mesh)
        with startup.phase("tokenizer") as note:
            self.tokenizer = load_tokenizer(cfg, self.workdir)
            note(f"{self.tokenizer.model_path}, vocab {self.tokenizer.vocab_size}")
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
        with startup.phase("model init"):
            # The same model, state shardings and jitted step mvl.compile compiles ahead
            # of time.
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
        with startup.phase("data"):
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

    def compile(self, batch):
        """Compiles the train step for `batch`'s shapes now (a start-up phase of its own,
        not hidden in the first step); the step then runs the compiled program."""
        with sharding.activate(self.mesh, self.rules):
            self.train_step = self.train_step.lower(self.state, batch).compile()

    def step(self, batch):
        with sharding.activate(self.mesh, self.rules):
            self.state, metrics = self.train_step(self.state, batch)
        return metrics

    def save(self, loop_state: dict | None = None, metrics: dict | None = None) -> bool:
        """Checkpoints the state, the data position and `loop_state` (JSON-able)."""
        run = {"tokenizer": self.tokenizer_identity, "loop": loop_state or {}}
        return self.checkpointer.save(
            int(self.state.step), self.state, self.data_iterator, self.cfg, run, metrics
        )


def train_and_evaluate(
    cfg, workdir: str, allow_config_change: bool = False, command_started: float | None = None
) -> dict[str, float]:
    """Trains `cfg.total_steps` steps (resuming if possible); returns the final evaluation,
    or {} when SIGTERM stopped it (after saving a checkpoint to resume from). Ctrl-C
    raises Interrupted (after saving, once training has started); a failed save or a
    failed evaluation under eval.on_failure='stop' raises RunFailed."""
    from mvl.evaluate.suite import EvalSuite
    from mvl.train import preemption, reporting  # clu / tensorflow: only when training
    from mvl.train.train_loop import TrainLoop

    if cfg.eval.on_failure not in ("continue", "stop"):
        raise UserError(f"config eval.on_failure={cfg.eval.on_failure!r}: use 'continue' or 'stop'")
    startup = startup_lib.StartupPhases(command_started)
    stop = preemption.StopRequests(lambda: startup.current)
    try:
        identity = run_identity.RunIdentity(cfg, prepare_workdir(workdir), allow_config_change)
        identity.check()  # before anything is built: a refused rerun costs nothing
        trainer = Trainer(cfg, workdir, startup=startup)
        cfg = trainer.cfg  # with the frozen teacher's architecture filled in
        with startup.phase("restore") as note:
            start, loop_state = trainer.restore()
            note(f"resumed from {trainer.checkpointer.directory}/{start}" if start else "fresh run")
        if start:
            stop.last_checkpoint = f"{trainer.checkpointer.directory}/{start}"
        reporter = reporting.Reporter(trainer.workdir, cfg.total_steps, cfg.log_every_steps)
        with startup.phase("eval data"):
            evals = EvalSuite(
                trainer.model, cfg, trainer.tokenizer, trainer.mesh, trainer.teacher_model
            )
        first_batch = None
        if start < cfg.total_steps:
            with startup.phase("first batch"):
                first_batch = trainer.next_batch()
            with startup.phase("compile"):
                trainer.compile(first_batch)
        identity.keep()
        stop.training_started()
        loop = TrainLoop(trainer, cfg, reporter, evals, loop_state)
        return loop.run(start, stop, first_batch)
    finally:
        stop.close()
