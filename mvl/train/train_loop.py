"""The steps of a run once it has started: data -> train_step -> metrics, checkpoints
and evaluations, with the loop's own counters saved in every checkpoint so a resumed
run logs and ends exactly as an uninterrupted one (mvl/train/loop.py builds the run).
"""

from __future__ import annotations

import os
import sys
import time
import traceback

import jax

from mvl.objectives.distill import CollapseWarning
from mvl.runtime.errors import RunFailed, UserError


class TrainLoop:
    """Steps, logs, checkpoints and evaluates; its own counters go into each checkpoint.

    A checkpoint is saved before every evaluation, so a failed evaluation costs no
    training (with an eval/ `checkpoint.best_metric` it is saved just after, carrying
    the metrics that rank it, and saved all the same when the evaluation fails). A
    failed evaluation is one line on stderr, its traceback goes to
    WORKDIR/eval_failures.log, and `eval.on_failure` says whether training goes on.
    """

    def __init__(self, trainer, cfg, reporter, evals, saved: dict):
        from mvl.train import faults, objective_grad_norms, preemption, reporting

        self.trainer, self.cfg, self.reporter, self.evals = trainer, cfg, reporter, evals
        self.averager = reporting.MetricAverager.from_state(saved.get("averager", {}))
        self.health = StepHealth(cfg.optim.max_skipped_in_a_row, saved.get("health", {}))
        self.faults = faults.Faults.from_environment()
        self.reported: dict[str, float] = {}  # what this step reported (ranks checkpoints)
        self.stop = preemption.StopRequests(listen=False)  # until run() is given one
        self.collapse = CollapseWarning.from_config(cfg)  # MaskCLIP's teacher codewords
        self.objective_norms = objective_grad_norms.ObjectiveGradNorms(trainer, cfg)

    def run(self, start: int, stop, first_batch=None) -> dict[str, float]:
        from mvl.objectives import stages

        cfg, trainer = self.cfg, self.trainer
        self.stop = stop
        stages.announce(cfg, start, resumed=start > 0)
        for step in range(start + 1, cfg.total_steps + 1):
            if step > start + 1:
                stages.announce(cfg, step - 1)  # state.step of this step
            self.reported = {}
            batch = first_batch if step == start + 1 and first_batch is not None else None
            batch = self.faults.poison(step, trainer.next_batch() if batch is None else batch)
            began = time.time()
            # before the step: it donates the state (config objective_grad_norm_every)
            norms = self.objective_norms.maybe(step, trainer.state, batch)
            metrics = trainer.step(batch)
            self.averager.add({**metrics, **norms})
            self.health.check(step, metrics, trainer)
            self.reporter.step_done(step)
            if step == start + 1:
                self.reporter.first_step(step, metrics, time.time() - began)
            if step % cfg.log_every_steps == 0 or step == cfg.total_steps:
                self.report(step, self.train_metrics(), "train")
            trainer.checkpointer.check_for_errors()  # a failed background save stops here
            due = self.evals.due(step) if step < cfg.total_steps else []
            evaluating = bool(due)
            if step % cfg.checkpoint.every_steps == 0 or evaluating:
                if not (evaluating and self.ranks_by_eval):
                    self.save(step)  # before evaluating: a failed evaluation costs nothing
            if evaluating:
                self.evaluate(step, names=due)
                if self.ranks_by_eval:
                    self.save(step)  # carries the metrics that rank it
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
        if prefix == "train":
            self.collapse.check(step, values)
        self.reported.update({f"{prefix}/{k}": v for k, v in values.items()})
        best = self.cfg.checkpoint.best_metric
        if best.startswith(prefix + "/") and best not in self.reported:
            raise UserError(
                f"config checkpoint.best_metric={best!r} is not among the reported "
                f"{prefix} metrics: {', '.join(sorted(self.reported))}"
            )

    def evaluate(self, step: int, final: bool = False, names=None) -> dict[str, float] | None:
        """The metrics of the declared evaluators `names` (None: all, as at the end), or
        None when it failed (told and logged; under eval.on_failure='stop', or for the
        final one, RunFailed after saving). Their pictures go to TensorBoard and PNGs."""
        if not self.ranks_by_eval:
            # The checkpoint saved just before is on disk before evaluating: even a
            # crash that takes the process (out of host memory) costs no training, and
            # Ctrl-C may end the evaluation at once.
            self.trainer.checkpointer.wait()
            self.stop.all_saved_during = f"the evaluation at step {step}"
        try:
            self.faults.before_eval(step)
            values = self.evals.run(self.trainer.state, names)
            for name, picture in self.evals.pictures(self.trainer.state, names).items():
                self.reporter.image(step, name, picture)
            for name, text in self.evals.texts(self.trainer.state, names).items():
                self.reporter.text(step, name, text)
        except Exception as e:  # noqa: BLE001 -- any evaluation bug must not cost training
            self.stop.all_saved_during = None
            self._evaluation_failed(step, e, final)
            return None
        self.stop.all_saved_during = None
        self.report(step, values, "eval")
        return values

    def _evaluation_failed(self, step: int, error: Exception, final: bool):
        log = os.path.join(self.trainer.workdir, "eval_failures.log")
        if jax.process_index() == 0:
            with open(log, "a") as f:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
                f.write(f"--- evaluation at step {step}, {stamp}\n")
                f.write("".join(traceback.format_exception(error)))
        what = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        told = f"evaluation at step {step} failed ({what}); traceback in {log}"
        stop = final or self.cfg.eval.on_failure == "stop"
        if not stop:
            print(
                f"mvl: warning: {told}; training goes on (eval.on_failure='continue')",
                file=sys.stderr,
                flush=True,
            )
            return
        self.save(step)  # no-op when saved before evaluating
        self._close()
        where = f"{self.trainer.checkpointer.directory}/{step}"
        if final:
            raise RunFailed(
                f"final {told}; the final checkpoint {where} is saved: fix the cause and "
                "rerun the same command to evaluate it again"
            )
        raise RunFailed(
            f"{told}; checkpoint {where} is saved (eval.on_failure='stop'): fix the cause "
            "and rerun the same command to resume"
        )

    def loop_state(self) -> dict:
        self.health.settle(self.trainer)
        return {"averager": self.averager.state(), "health": self.health.state()}

    def save(self, step: int) -> bool:
        best = self.cfg.checkpoint.best_metric
        metrics = self.reported if best in self.reported else None
        saved = self.trainer.save(self.loop_state(), metrics)
        if saved:
            self.stop.last_checkpoint = f"{self.trainer.checkpointer.directory}/{step}"
        self.faults.after_save(step, saved)
        return saved

    def _close(self):
        self.reporter.flush()
        self.trainer.checkpointer.wait()
        self.trainer.checkpointer.close()

    def finish(self) -> dict[str, float]:
        cfg, trainer = self.cfg, self.trainer
        self.health.settle(trainer)
        if not self.ranks_by_eval:
            self.save(cfg.total_steps)  # the final state, before its evaluation
        final = self.evaluate(cfg.total_steps, final=True)
        if self.ranks_by_eval:
            self.save(cfg.total_steps)
        self.reporter.json("eval_final.json", final)
        self._close()
        return final

    def stop_after(self, step: int, reason: str) -> dict:
        from mvl.runtime.errors import Interrupted

        self.save(step)
        self._close()
        where = self.trainer.checkpointer.directory
        if reason == "SIGINT":
            raise Interrupted(
                f"Ctrl-C: stopped after step {step}; checkpoint saved in {where}: rerun "
                "the same command to resume"
            )
        print(
            f"stopped after step {step} ({reason}); checkpoint saved in "
            f"{where}: rerun the same command to resume",
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
