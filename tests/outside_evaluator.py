"""An evaluator written outside mvl (as a user's project would): declared in a config
as evals.<name> = dict(type="tests.outside_evaluator:RowsSeen", ...)."""

from typing import ClassVar

from mvl.evaluate.evaluator import Evaluator, fail


class RowsSeen(Evaluator):
    """How many held-out rows the run evaluates on, times `scale`, and whether the
    state it is given has parameters (a metric a test can predict exactly)."""

    defaults: ClassVar[dict] = dict(scale=1.0)

    @classmethod
    def validate(cls, where, section):
        if section["scale"] <= 0:
            fail(where, "scale", section["scale"], "must be > 0")

    def run(self, state):
        return {
            "rows_seen/count": self.section.scale * len(self.context.data["image"]),
            "rows_seen/has_params": float(bool(state.params)),
        }
