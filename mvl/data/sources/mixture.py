"""A weighted mixture of sources as one random-access source (data.source="mixture").

grain's MapDataset.mix interleaves the components' indices deterministically in
proportion to the weights; each component is repeated as often as its share needs, so
a small source with a large weight is seen several times per epoch. One epoch of the
mixture has as many samples as all components together. The pipeline then shuffles
the mixture's indices globally, like any source's, so the proportions hold within every
global batch on average and the batches do not depend on the process count.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import grain


def _tagged(component: int, index: int) -> tuple[int, int]:
    return component, index


class MixtureSource:
    def __init__(self, components: Sequence[Any], weights: Sequence[float], names: Sequence[str]):
        if not components or len(components) != len(weights):
            raise ValueError("a mixture needs one weight per component")
        self.components, self.names = list(components), list(names)
        total_weight = float(sum(weights))
        self.proportions = [w / total_weight for w in weights]
        self.length = sum(len(c) for c in components)
        parts = []
        for k, (component, share) in enumerate(zip(components, self.proportions)):
            repeats = math.ceil((self.length * share + 1) / len(component)) + 1
            indices = grain.MapDataset.range(len(component)).map(functools.partial(_tagged, k))
            parts.append(indices.repeat(repeats))
        self._order = grain.MapDataset.mix(parts, self.proportions)[: self.length]
        label_sets = [set(getattr(c, "labels", ())) for c in components]
        self.labels = tuple(sorted(set.intersection(*label_sets)))

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {p:.3g}" for n, p in zip(self.names, self.proportions))
        return f"MixtureSource({parts}; {self.length} per epoch)"

    def locate(self, index: int) -> tuple[int, int]:
        index = int(index)
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self!r}")
        return self._order[index]

    def __getitem__(self, index: int) -> dict[str, Any]:
        component, local = self.locate(index)
        return self.components[component][local]

    def caption(self, index: int) -> str:
        component, local = self.locate(index)
        source = self.components[component]
        get = getattr(source, "caption", None)
        return get(local) if get else source[local]["caption"]

    def describe(self, index: int) -> str:
        component, local = self.locate(index)
        describe = getattr(self.components[component], "describe", None)
        where = describe(local) if describe else f"sample {local}"
        return f"mixture part {self.names[component]}: {where}"
