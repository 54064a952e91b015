"""MVP: masked image modeling with a frozen CLIP image tower as the target (Wei et al., ECCV 2022).

Mask: BEiT's block-wise masking of ~40% of the patches [?] (random rectangles of at
      least `mask.image.min_block_patches` patches: 16 as in BEiT on the 14x14 paper grid,
      4 on the demo's 8x8 grid), hidden patches replaced by a learned mask token.
Encoder: ViT (the student). Target: the frozen teacher's per-patch features of the full
      image; the teacher is the image tower of a CLIP run (`teacher.checkpoint`), kept in
      TrainState.teacher: never in the optimizer state, never differentiated. Which
      features: the tower's output after its final LayerNorm (open_clip's `ln_post`,
      applied to every token) at each patch, [CLS] dropped, without CLIP's projection
      into the joint embedding space [?] (the paper says the CLIP image encoder's
      features; mvl/targets/teacher.py; not a key).
Head: a linear feature head; cosine distance [?] (`objectives.features.loss=mse` also).

Run (CPU demo): first a CLIP teacher, then MVP on top of it:
  python -m mvl.main --config configs/clip.py:demo --workdir /tmp/mvl_clip
  python -m mvl.main --config configs/mvp.py:demo --workdir /tmp/mvl_mvp \\
      --config.teacher.checkpoint=/tmp/mvl_clip
Paper recipe (ViT-B/16 student, CLIP ViT-B/16 teacher, ImageNet-1k as data.source):
  python -m mvl.main --config configs/mvp.py:paper --workdir ... --config.teacher.checkpoint=...

Config argument: demo | paper (nothing else).

`:paper` recipe, per value ([PAPER] the MVP paper, [CODE] BEiT's code, whose recipe
MVP follows, [?] a guess; docs/methods.md):
  batch_size 2048 [PAPER]; 300 epochs of ImageNet-1k's 1,281,167 images [PAPER];
      10 warmup epochs, cosine to 0 [CODE: BEiT]
  optim: peak lr 1.5e-3 [CODE: BEiT], AdamW b1 0.9, b2 0.98 [?] (BEiT: 0.999),
      eps 1e-8 [CODE: BEiT], weight_decay 0.05 [CODE: BEiT] on kernels (BEiT spares
      biases, norms, [CLS] and positions; mvl also the mask token) [?]
  student: ViT-B/16 at 224 px [PAPER]; drop path 0.1 and layer scale 0.1 [CODE: BEiT]
  mask: BEiT's block-wise masking of ~40% (75 of 196 patches) [?], blocks of >= 16
      patches, aspect 0.3-3.3 [CODE: BEiT]; hidden patches replaced by a mask token
  target: the frozen CLIP ViT-B/16 image tower's patch features [PAPER], taken after
      its final LayerNorm on every patch token, no projection [?]; its
      architecture is read from teacher.checkpoint at start (the teacher.image keys
      here describe OpenAI's ViT-B/16 for tools that build it without a checkpoint)
  head: linear, cosine distance [?]
  augmentation: random resized crop (area 8-100%, aspect 3/4-4/3) and horizontal flip
      [CODE: BEiT]; BEiT's colour jitter (0.4) is not implemented in mvl [?]
  pixel normalisation: ImageNet's mean / std [?]

What it should reach: MVP has no text tower here, so the evaluation reports the held-out
feature loss (`held_out/features/loss`) and a linear probe and kNN on the student's
frozen features (`probe/...`). Paper: ADE20K 52.4 mIoU (+6.8 over BEiT) and
IN-1k fine-tuning 84.4 [?] after 300 ImageNet epochs with an OpenAI CLIP-B/16 teacher;
not reproduced here. Public CLIP weights as the teacher: import them with
`python -m mvl.weights open_clip|hf ... --out DIR` (README, "Start from CLIP weights"),
then --config.teacher.checkpoint=DIR; the teacher's architecture is read from DIR.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    paper = args.size == "paper"
    c = mvl_config.base_config(args.size)
    c.mask.image.update(
        kind="beit", ratio=0.4, min_block_patches=16 if paper else 4, block_aspect=0.3, drop=False
    )
    c.objectives.features = dict(weight=1.0, loss="cosine", head="linear")
    mvl_config.add_teacher(c, "frozen")
    mvl_config.add_eval(c, "held_out_losses")
    mvl_config.add_eval(c, "probe")  # linear probe + kNN on frozen image features
    if paper:
        paper_recipe(c)
    return c


def paper_recipe(c):
    """MVP ViT-B/16's recipe (BEiT's schedule; tags in the module docstring)."""
    c.batch_size = 2048
    mvl_config.schedule_in_epochs(c, epochs=300, num_examples=1_281_167, warmup_epochs=10)
    c.optim.update(
        lr=1.5e-3,
        end_lr_factor=0.0,
        b1=0.9,
        b2=0.98,
        eps=1e-8,
        weight_decay=0.05,
        weight_decay_applies_to="kernels",
    )
    c.data.update(
        image_size=224,
        augment=False,
        crop="random_resized",
        crop_scale=(0.08, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        flip=True,
    )
    c.model.image.update(
        patch_size=16,
        width=768,
        depth=12,
        num_heads=12,
        mlp_dim=3072,
        drop_path=0.1,
        layer_scale=0.1,
        pixel_mean=(0.485, 0.456, 0.406),
        pixel_std=(0.229, 0.224, 0.225),
    )
    clip_teacher(c)


def clip_teacher(c):
    """teacher.image as OpenAI's CLIP ViT-B/16 image tower (replaced at run start by
    teacher.checkpoint's own architecture)."""
    c.teacher.image.update(
        image_size=224,
        patch_size=16,
        width=768,
        depth=12,
        num_heads=12,
        mlp_dim=3072,
        pre_norm=True,
        drop_path=0.0,
        layer_scale=0.0,
        pixel_mean=(0.48145466, 0.4578275, 0.40821073),
        pixel_std=(0.26862954, 0.26130258, 0.27577711),
    )
    c.teacher.update(act="quick_gelu", ln_eps=1e-5)
