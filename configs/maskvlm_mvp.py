"""Composition: MaskVLM + frozen-CLIP feature targets (MVP's target on MaskVLM's mask).

Mask: MaskVLM's (image 60% in blocks, replaced; text 30% BERT). Encoder: MaskVLM's towers
and cross-modal encoders. Target: pixels and token ids as in MaskVLM, plus a frozen CLIP
image tower's per-patch features of the hidden patches. Head: MaskVLM's heads + a linear
feature head (cosine). The masked-image encoding is computed once and shared by MIM and
the feature objective. No paper trains this; MVP and MaskCLIP argue that feature targets
beat pixel targets, which this config lets you test inside MaskVLM.

Run (CPU demo; the teacher is a CLIP run):
  python -m mvl.main --config configs/clip.py:demo --workdir /tmp/mvl_clip
  python -m mvl.main --config configs/maskvlm_mvp.py:demo --workdir /tmp/mvl_maskvlm_mvp \\
      --config.teacher.checkpoint=/tmp/mvl_clip

What it should reach: MaskVLM's demo metrics or better, and a falling feature loss.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    c = mvl_config.config_beside(__file__, "maskvlm.py", arg)
    c.objectives.features = dict(weight=1.0, loss="cosine", head="linear")
    c.teacher.kind = "frozen"
    c.lock()
    return c
