"""Target: what a masked input is scored against, in one place.

Each target is a pure function of the batch, the masks and the teacher: pixels
(pixels.py), a teacher's patch features (teacher.py), the original token ids
(tokens.py) and a teacher's codeword distribution (codebook.py).
"""

from mvl.targets.codebook import codeword_logits, codeword_targets  # noqa: F401
from mvl.targets.pixels import (  # noqa: F401
    patchify,
    pixel_targets,
    pixels_from_targets,
    unpatchify,
)
from mvl.targets.teacher import teacher_patch_features  # noqa: F401
from mvl.targets.tokens import token_targets  # noqa: F401
