"""What a run tells its user: averaged metrics in TensorBoard (clu), progress lines, images.

clu (and the tensorflow it pulls in for event files) is imported here, lazily from the
loop, never at `import mvl`.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from clu import metric_writers, metrics, periodic_actions
from PIL import Image


class MetricAverager:
    """Averages each step metric over a logging interval with clu's Average, on device
    (no host sync until `compute`)."""

    def __init__(self):
        self._averages: dict[str, metrics.Average] = {}

    def state(self) -> dict[str, list]:
        """The running sums as JSON (for checkpoints): float32 totals are exact as
        Python floats, so a restored averager continues bit for bit."""
        return {name: [float(avg.total), int(avg.count)] for name, avg in self._averages.items()}

    @classmethod
    def from_state(cls, saved: dict[str, list]) -> "MetricAverager":
        averager = cls()
        averager._averages = {
            name: metrics.Average(
                total=jnp.asarray(total, jnp.float32), count=jnp.asarray(count, jnp.int32)
            )
            for name, (total, count) in saved.items()
        }
        return averager

    def add(self, step_metrics: dict):
        for name, value in step_metrics.items():
            update = metrics.Average.from_model_output(value)
            self._averages[name] = (
                self._averages[name].merge(update) if name in self._averages else update
            )

    def compute_and_reset(self) -> dict[str, float]:
        result = {name: float(avg.compute()) for name, avg in self._averages.items()}
        self._averages = {}
        return result


class Reporter:
    """TensorBoard scalars and images via clu, a progress line with steps/s and ETA."""

    def __init__(self, workdir: str, total_steps: int, log_every: int):
        is_chief = jax.process_index() == 0
        self.workdir, self.total_steps = workdir, total_steps
        self.writer = metric_writers.create_default_writer(
            os.path.join(workdir, "tensorboard"), just_logging=not is_chief
        )
        self.progress = periodic_actions.ReportProgress(
            num_train_steps=total_steps, writer=self.writer, every_steps=log_every, every_secs=None
        )
        self._last_time, self._last_step = None, None

    def step_done(self, step: int):
        self.progress(step)

    def first_step(self, step: int, step_metrics: dict, seconds: float):
        """A progress line after the first step a process runs, from that step alone
        (the averages of the logging interval and TensorBoard are left as they are, so
        a resumed run logs exactly what an uninterrupted one does)."""
        values = {k: float(v) for k, v in step_metrics.items() if k.endswith("loss")}
        body = " ".join(f"{k}={v:.4g}" for k, v in sorted(values.items()))
        print(
            f"[train {step}/{self.total_steps}] {body} | first step {seconds:.1f}s; "
            "averages every log_every_steps",
            flush=True,
        )
        self._last_time, self._last_step = time.time(), step

    def scalars(self, step: int, values: dict[str, float], prefix: str = "train"):
        self.writer.write_scalars(step, {f"{prefix}/{k}": v for k, v in values.items()})
        print(self._line(step, values, prefix), flush=True)

    def image(self, step: int, name: str, picture: np.ndarray):
        """Writes a uint8 picture to TensorBoard and as WORKDIR/<name>_<step>.png."""
        self.writer.write_images(step, {name: picture[None]})
        if jax.process_index() == 0:
            Image.fromarray(picture).save(os.path.join(self.workdir, f"{name}_{step:06d}.png"))

    def text(self, step: int, name: str, text: str):
        """Writes markdown text to TensorBoard's text tab and WORKDIR/<name>_<step>.md."""
        self.writer.write_texts(step, {name: text})
        if jax.process_index() == 0:
            with open(os.path.join(self.workdir, f"{name}_{step:06d}.md"), "w") as f:
                f.write(text + "\n")
            print(f"[eval {step}] {name}:\n{text}", flush=True)

    def json(self, filename: str, values: dict):
        if jax.process_index() == 0:
            with open(os.path.join(self.workdir, filename), "w") as f:
                json.dump(values, f, indent=1, sort_keys=True)

    def flush(self):
        self.writer.flush()

    def _line(self, step, values, prefix):
        now = time.time()
        speed = ""
        if prefix == "train" and self._last_time is not None and step > self._last_step:
            rate = (step - self._last_step) / (now - self._last_time)
            eta = (self.total_steps - step) / rate
            speed = f" | {rate:.2f} steps/s | ETA {int(eta // 60)}m{int(eta % 60):02d}s"
        if prefix == "train":
            self._last_time, self._last_step = now, step
        shown = {
            k: v
            for k, v in values.items()
            if k.endswith("loss") or "r@1" in k or "accuracy" in k and "itc" not in k
        }
        body = " ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items()))
        return f"[{prefix} {step}/{self.total_steps}] {body}{speed}"
