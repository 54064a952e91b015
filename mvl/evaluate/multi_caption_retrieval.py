"""Image<->text recall@K when an image has several captions (COCO / Flickr30k: 5 each),
as the Karpathy-split protocol of CLIP, ALBEF and CLIP_benchmark counts it:

  image->text: an image scores a hit at K when ANY of its captions is among the K texts
               it ranks highest (the best-placed caption decides);
  text->image: each caption ranks every image; a hit when its own image is in its top K.

The [images, texts] similarity is never held whole: it is computed `block_size` rows at
a time, so COCO's 5k x 25k (and larger) fits on a host. A rank is how many candidates
score strictly higher than the best true one, so ties favour the true match (as
mvl/evaluate/retrieval.py does for 1:1 pairs).
"""

from __future__ import annotations

import numpy as np

from mvl.runtime.errors import UserError


def check_caption_images(caption_image: np.ndarray, images: int) -> np.ndarray:
    """`caption_image` (the image index of each caption) as int64, every image captioned."""
    caption_image = np.asarray(caption_image)
    if caption_image.ndim != 1 or caption_image.dtype.kind not in "iu":
        raise UserError(f"caption_image must be a 1-D int array, got {caption_image.dtype}")
    if len(caption_image) and (caption_image.min() < 0 or caption_image.max() >= images):
        raise UserError(
            f"caption_image has an image index outside 0..{images - 1} "
            f"({caption_image.min()}..{caption_image.max()})"
        )
    uncaptioned = np.setdiff1d(np.arange(images), caption_image)
    if len(uncaptioned):
        raise UserError(f"image {uncaptioned[0]} has no caption ({len(uncaptioned)} such images)")
    return caption_image.astype(np.int64)


def image_to_text_ranks(image_emb, text_emb, caption_image, block_size=1024) -> np.ndarray:
    """int [images]: for each image, how many texts outscore its best caption."""
    ranks = []
    for start in range(0, len(image_emb), block_size):
        rows = np.arange(start, min(start + block_size, len(image_emb)))
        similarity = image_emb[rows] @ text_emb.T  # [block, texts]
        own = caption_image[None, :] == rows[:, None]
        best_own = np.where(own, similarity, -np.inf).max(axis=1)
        ranks.append((similarity > best_own[:, None]).sum(axis=1))
    return np.concatenate(ranks)


def text_to_image_ranks(image_emb, text_emb, caption_image, block_size=1024) -> np.ndarray:
    """int [texts]: for each caption, how many images outscore its own image."""
    ranks = []
    for start in range(0, len(text_emb), block_size):
        rows = np.arange(start, min(start + block_size, len(text_emb)))
        similarity = text_emb[rows] @ image_emb.T  # [block, images]
        own = similarity[np.arange(len(rows)), caption_image[rows]]
        ranks.append((similarity > own[:, None]).sum(axis=1))
    return np.concatenate(ranks)


def multi_caption_recall(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    caption_image: np.ndarray,
    ks=(1, 5, 10),
    block_size: int = 1024,
) -> dict[str, float]:
    """{"image_to_text/r@K", "text_to_image/r@K"} for embeddings [images, D], [texts, D]
    and `caption_image` [texts]: the index of each text's image."""
    image_emb = np.asarray(image_emb, np.float32)
    text_emb = np.asarray(text_emb, np.float32)
    if len(caption_image) != len(text_emb):
        raise UserError(f"{len(text_emb)} text embeddings but {len(caption_image)} caption_image")
    caption_image = check_caption_images(caption_image, len(image_emb))
    by_image = image_to_text_ranks(image_emb, text_emb, caption_image, block_size)
    by_text = text_to_image_ranks(image_emb, text_emb, caption_image, block_size)
    metrics = {}
    for k in ks:
        metrics[f"image_to_text/r@{k}"] = float((by_image < k).mean())
        metrics[f"text_to_image/r@{k}"] = float((by_text < k).mean())
    return metrics


def reranked_multi_caption_recall(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    caption_image: np.ndarray,
    itm_score,
    k: int,
    ks=(1, 5, 10),
) -> dict[str, float]:
    """The same recalls after ITM re-ranking (ALBEF / MaskVLM): each image's top-k
    captions and each caption's top-k images by embedding similarity re-scored by
    `itm_score(image rows, text rows) -> scores` and placed first, in that order
    (mvl/evaluate/itm_rerank.py). The full score matrices are held (images x texts,
    twice: about 2 GB for COCO's 5k x 25k)."""
    from mvl.evaluate.itm_rerank import reranked

    caption_image = check_caption_images(caption_image, len(image_emb))
    similarity = np.asarray(image_emb, np.float32) @ np.asarray(text_emb, np.float32).T
    by_image_scores = reranked(similarity, itm_score, k)  # [images, texts]
    by_text_scores = reranked(similarity.T, lambda t, i: itm_score(i, t), k)  # [texts, images]
    own = caption_image[None, :] == np.arange(len(image_emb))[:, None]
    best_own = np.where(own, by_image_scores, -np.inf).max(axis=1)
    by_image = (by_image_scores > best_own[:, None]).sum(axis=1)
    own_image = by_text_scores[np.arange(len(caption_image)), caption_image]
    by_text = (by_text_scores > own_image[:, None]).sum(axis=1)
    metrics = {}
    for k_ in ks:
        metrics[f"image_to_text/r@{k_}"] = float((by_image < k_).mean())
        metrics[f"text_to_image/r@{k_}"] = float((by_text < k_).mean())
    return metrics
