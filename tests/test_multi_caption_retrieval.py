"""Retrieval with several captions per image (the Karpathy / CLIP_benchmark protocol)."""

import numpy as np
import pytest

from mvl.evaluate.multi_caption_retrieval import multi_caption_recall
from mvl.runtime.errors import UserError

IMAGES = np.eye(3, dtype=np.float32)  # image i points along axis i
# Three captions per image; image 0's first two captions point at other images, only
# its third ([0.8, 0.6, 0]) is close to it.
# fmt: off
TEXTS = np.array(
    [
        [0, 1, 0], [0, 0, 1], [0.8, 0.6, 0],  # image 0
        [0, 1, 0], [0.6, 0.8, 0], [1, 0, 0],  # image 1
        [0, 0, 1], [1, 0, 0], [0, 1, 0],  # image 2
    ],
    np.float32,
)
# fmt: on
CAPTION_IMAGE = np.repeat(np.arange(3), 3)


@pytest.mark.parametrize("block_size", [1, 2, 1024])
def test_a_later_caption_makes_the_hit_and_blocks_change_nothing(block_size):
    metrics = multi_caption_recall(
        IMAGES, TEXTS, CAPTION_IMAGE, ks=(1, 2, 3), block_size=block_size
    )
    # Image 0: its best caption (the 3rd, 0.8) is beaten by two texts scoring 1 -> rank 2;
    # images 1 and 2 have a caption scoring 1 that nothing beats -> rank 0.
    assert metrics["image_to_text/r@1"] == pytest.approx(2 / 3)
    assert metrics["image_to_text/r@2"] == pytest.approx(2 / 3)
    assert metrics["image_to_text/r@3"] == 1.0
    # Captions whose own image is first: texts 2, 3, 4, 6; every other has one image above.
    assert metrics["text_to_image/r@1"] == pytest.approx(4 / 9)
    assert metrics["text_to_image/r@2"] == 1.0


def test_only_the_first_caption_would_miss():
    """The same image with only its first caption: rank 4, no hit at 3."""
    keep = [0, 3, 4, 5, 6, 7, 8]
    metrics = multi_caption_recall(IMAGES, TEXTS[keep], CAPTION_IMAGE[keep], ks=(3,))
    assert metrics["image_to_text/r@3"] == pytest.approx(2 / 3)


def test_equals_a_top_k_reference_on_random_embeddings():
    """Against the CLIP_benchmark definition written plainly: full matrix, top-K sets."""
    rng = np.random.default_rng(0)
    images, per_image, dim = 40, 5, 16
    image_emb = rng.normal(size=(images, dim)).astype(np.float32)
    text_emb = rng.normal(size=(images * per_image, dim)).astype(np.float32)
    caption_image = rng.permutation(np.repeat(np.arange(images), per_image))
    similarity = image_emb @ text_emb.T
    got = multi_caption_recall(image_emb, text_emb, caption_image, ks=(1, 5, 10), block_size=7)
    for k in (1, 5, 10):
        top_texts = np.argsort(-similarity, axis=1)[:, :k]
        i2t = np.mean([np.any(caption_image[top_texts[i]] == i) for i in range(images)])
        top_images = np.argsort(-similarity.T, axis=1)[:, :k]
        t2i = np.mean([caption_image[t] in top_images[t] for t in range(len(text_emb))])
        assert got[f"image_to_text/r@{k}"] == pytest.approx(i2t)
        assert got[f"text_to_image/r@{k}"] == pytest.approx(t2i)


@pytest.mark.parametrize(
    "caption_image, message",
    [
        (np.array([0, 0, 0, 1, 1, 1, 1, 1, 1]), "image 2 has no caption"),
        (np.array([0, 0, 0, 1, 1, 1, 2, 2, 3]), "outside 0..2"),
        (np.array([0, 1, 2]), "9 text embeddings but 3"),
    ],
)
def test_bad_caption_indices_are_one_line(caption_image, message):
    with pytest.raises(UserError, match=message):
        multi_caption_recall(IMAGES, TEXTS, caption_image)


def test_itm_reranking_lifts_a_true_caption_found_in_the_top_k():
    """A perfect ITM head (1 for a true pair, 0 otherwise) re-ranking the top 3."""
    from mvl.evaluate.multi_caption_retrieval import reranked_multi_caption_recall

    def perfect(images, texts):
        return (CAPTION_IMAGE[texts] == images).astype(float)

    # Image 0's top 3 by similarity (texts 5, 7, then its own 2) -> its own goes first;
    # every image ends with a true caption first. Each caption's top 3 = all images.
    top3 = reranked_multi_caption_recall(IMAGES, TEXTS, CAPTION_IMAGE, perfect, 3, ks=(1,))
    assert top3 == {"image_to_text/r@1": 1.0, "text_to_image/r@1": 1.0}
    # With k=1 a caption's only re-scored image is its top one: right for texts 2, 3, 4,
    # 6 (as without re-ranking); a wrong one scored 0 still goes first for the others.
    top1 = reranked_multi_caption_recall(IMAGES, TEXTS, CAPTION_IMAGE, perfect, 1, ks=(1,))
    assert top1["text_to_image/r@1"] == pytest.approx(4 / 9)
