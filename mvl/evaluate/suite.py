"""The evaluations a run reports, as the config declares them (`config.evals`):
every `evals.<name>` is built from its registered type (mvl/evaluate/registry.py)
with the run's shared EvalContext (mvl/evaluate/context.py), runs every
`every_steps` (None: `eval.every_steps`; 0: only at the end) and at the end, and
adds its metrics to one flat dict (each metric beside its chance level).
"""

from __future__ import annotations

from mvl.evaluate import registry
from mvl.evaluate.context import EvalContext


class EvalSuite:
    def __init__(self, model, cfg, tokenizer, mesh, teacher_model=None, only=None):
        """`only`: names of declared evaluators to build (None: all of them)."""
        self.cfg = cfg
        self.context = EvalContext(model, cfg, tokenizer, mesh, teacher_model)
        self.evaluators = {}
        for name, section in cfg.evals.items():
            if only is None or name in only:
                self.evaluators[name] = registry.get(section.type)(name, section, self.context)

    @property
    def data(self) -> dict:
        return self.context.data

    def due(self, step: int) -> list[str]:
        """The evaluators whose cadence falls on `step` (before the end)."""
        return [
            name
            for name in self.evaluators
            if (every := registry.cadence(self.cfg.evals[name], self.cfg.eval.every_steps))
            and step % every == 0
        ]

    def run(self, state, names=None) -> dict[str, float]:
        """The metrics of the evaluators `names` (None: every one) on `state`."""
        self.context.begin()
        metrics = {}
        for name in self._chosen(names):
            metrics.update(self.evaluators[name].run(state))
        return metrics

    def pictures(self, state, names=None) -> dict:
        pictures = {}
        for name in self._chosen(names):
            pictures.update(self.evaluators[name].pictures(state))
        return pictures

    def texts(self, state, names=None) -> dict:
        texts = {}
        for name in self._chosen(names):
            texts.update(self.evaluators[name].texts(state))
        return texts

    def _chosen(self, names):
        return list(self.evaluators) if names is None else list(names)
