"""MVP: masked image modeling with a frozen CLIP image tower as the target (Wei et al., ECCV 2022).

Mask: BEiT's block-wise masking of ~40% of the patches [?] (random rectangles of at
      least `mask.image.min_block_patches` patches: 16 as in BEiT on the 14x14 paper grid,
      4 on the demo's 8x8 grid), hidden patches replaced by a learned mask token.
Encoder: ViT (the student). Target: the frozen teacher's per-patch features of the full
      image; the teacher is the image tower of a CLIP run (`teacher.checkpoint`), kept in
      TrainState.teacher: never in the optimizer state, never differentiated.
Head: a linear feature head; cosine distance [?] (`objectives.features.loss=mse` also).

Run (CPU demo): first a CLIP teacher, then MVP on top of it:
  python -m mvl.main --config configs/clip.py:demo --workdir /tmp/mvl_clip
  python -m mvl.main --config configs/mvp.py:demo --workdir /tmp/mvl_mvp \\
      --config.teacher.checkpoint=/tmp/mvl_clip
Paper size (ViT-B/16 student and teacher at 224 px so the token grids align):
  python -m mvl.main --config configs/mvp.py:paper --workdir ... --config.teacher.checkpoint=...

What it should reach: MVP has no text tower here, so the evaluation reports the held-out
feature loss (`held_out/features/loss`) and a linear probe and kNN on the student's
frozen features (`probe/...`). Paper: ADE20K 52.4 mIoU (+6.8 over BEiT) and
IN-1k fine-tuning 84.4 [?] after 300 ImageNet epochs with an OpenAI CLIP-B/16 teacher;
not reproduced here. Public CLIP weights as the teacher: import them with
`python -m mvl.convert open_clip|hf ... --out DIR` (README, "Start from CLIP weights"),
then --config.teacher.checkpoint=DIR; the teacher's architecture is read from DIR.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    paper = "paper" in args
    c = mvl_config.base_config("paper" if paper else "demo")
    c.mask.image.update(
        kind="beit", ratio=0.4, min_block_patches=16 if paper else 4, block_aspect=0.3, drop=False
    )
    c.objectives.features = dict(weight=1.0, loss="cosine", head="linear")
    c.teacher.kind = "frozen"
    c.eval.held_out_losses = True
    c.eval.probe.enabled = True  # linear probe + kNN on frozen image features
    return c
