"""Evaluators against cases with a known answer."""

import jax
import numpy as np
import pytest

from mvl.evaluate import knn, linear_probe, retrieval


def separable(n: int, classes: int, dim: int, seed: int):
    """Clusters around `classes` random directions, well apart: linearly separable."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 5
    labels = rng.integers(0, classes, n)
    return centres[labels] + rng.normal(size=(n, dim)), labels


def test_linear_probe_separates_a_separable_set_and_is_at_chance_on_noise():
    x, y = separable(600, 5, 16, seed=0)
    assert linear_probe.linear_probe_accuracy(x[:300], y[:300], x[300:], y[300:], 5) == 1.0
    rng = np.random.default_rng(1)
    noise, labels = rng.normal(size=(2000, 16)), rng.integers(0, 5, 2000)
    chance = linear_probe.linear_probe_accuracy(
        noise[:1000], labels[:1000], noise[1000:], labels[1000:], 5
    )
    assert abs(chance - 0.2) < 0.05


def test_knn_on_clusters_and_on_noise():
    x, y = separable(600, 4, 8, seed=2)
    assert knn.knn_accuracy(x[:300], y[:300], x[300:], y[300:], 4) == 1.0
    rng = np.random.default_rng(3)
    noise, labels = rng.normal(size=(2000, 8)), rng.integers(0, 4, 2000)
    chance = knn.knn_accuracy(noise[:1000], labels[:1000], noise[1000:], labels[1000:], 4)
    assert abs(chance - 0.25) < 0.05
    # scored in blocks of test rows: any block size gives the same count
    whole = knn.knn_accuracy(
        noise[:1000], labels[:1000], noise[1000:], labels[1000:], 4, 7, 0.1, 10**6
    )
    for block_size in (1, 33, 1000):
        blocked = knn.knn_accuracy(
            noise[:1000], labels[:1000], noise[1000:], labels[1000:], 4, 7, 0.1, block_size
        )
        assert blocked == whole


def test_knn_votes_by_weighted_similarity():
    # one test point; neighbours: two of class 0 at similarity 0.6, one of class 1 at 1.0
    train = np.array([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]])
    labels = np.array([1, 0, 0])
    test = np.array([[1.0, 0.0]])
    # exp(1 / T) vs 2 exp(0.6 / T): class 1 wins at T = 0.07, class 0 at T = 1
    assert knn.knn_accuracy(train, labels, test, np.array([1]), 2, k=3, temperature=0.07) == 1.0
    assert knn.knn_accuracy(train, labels, test, np.array([0]), 2, k=3, temperature=1.0) == 1.0


def test_retrieval_recall_is_one_for_perfect_and_about_k_over_n_for_random_embeddings():
    rng = np.random.default_rng(4)
    emb = rng.normal(size=(500, 64))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    perfect = retrieval.retrieval_metrics(emb, emb)
    assert perfect["retrieval/image_to_text/r@1"] == 1.0
    assert perfect["retrieval/text_to_image/r@1"] == 1.0
    other = rng.normal(size=(500, 64))
    random = retrieval.retrieval_metrics(emb, other / np.linalg.norm(other, axis=1, keepdims=True))
    assert random["retrieval/image_to_text/r@10"] < 0.05  # chance: 10 / 500 = 0.02


def test_the_suite_probes_an_image_only_method(tiny_config, tmp_path):
    """MAE embeds no text: the probes are its evaluation, beside their chance level."""
    from mvl.evaluate.suite import EvalSuite
    from mvl.train.loop import Trainer

    trainer = Trainer(tiny_config("mae", **{"evals.probe.steps": "50"}), str(tmp_path))
    suite = EvalSuite(trainer.model, trainer.cfg, trainer.tokenizer, trainer.mesh)
    metrics = suite.run(trainer.state)
    for task, classes in (("shape", 6), ("colour", 8)):
        assert metrics[f"probe/{task}/chance"] == 1 / classes
        for kind in ("linear", "knn"):
            assert 0.0 <= metrics[f"probe/{task}/{kind}_accuracy"] <= 1.0
    # Colour is in every pixel: even an untrained tower's features beat chance on it.
    assert metrics["probe/colour/linear_accuracy"] > 2 / 8


def test_evaluate_command_reads_a_run_without_touching_it(tiny_config, tmp_path):
    """python -m mvl.evaluate on a run's folder: the checkpoint's own config, the same
    numbers as the suite on the live state, and overrides switching evaluations on."""
    import json
    import os

    from mvl.evaluate import __main__ as evaluate_cli
    from mvl.evaluate.suite import EvalSuite
    from mvl.train.loop import Trainer

    trainer = Trainer(tiny_config("clip"), str(tmp_path / "run"))
    for _ in range(2):
        trainer.step(trainer.next_batch())
    assert trainer.save()
    trainer.checkpointer.wait()
    expected = EvalSuite(trainer.model, trainer.cfg, trainer.tokenizer, trainer.mesh).run(
        trainer.state
    )
    before = sorted(os.listdir(tmp_path / "run" / "checkpoints"))
    out = tmp_path / "metrics.json"
    argv = ["--checkpoint", str(tmp_path / "run"), "--json", str(out)]
    assert evaluate_cli.main(argv + ["--config.evals.probe.type=probe"]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["step"] == 2
    for name, value in expected.items():
        assert metrics[name] == value, name
    assert (
        "probe/shape/linear_accuracy" in metrics and "probe/shape/linear_accuracy" not in expected
    )
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == before

    # --eval NAME runs that evaluator alone, with the same numbers.
    assert evaluate_cli.main(argv + ["--eval", "zeroshot"]) == 0
    alone = json.loads(out.read_text())
    assert alone == {k: v for k, v in metrics.items() if k.startswith("zeroshot/") or k == "step"}
    assert len(alone) == 5


def test_itm_reranking_puts_the_true_pair_first_when_it_is_in_the_top_k():
    """An ITM head that knows the answer: R@1 after re-ranking the top k equals the
    embeddings' R@k; a head that knows nothing keeps R@K for K >= k."""
    from mvl.evaluate import itm_rerank

    rng = np.random.default_rng(5)
    images = rng.normal(size=(300, 32))
    texts = images + 1.5 * rng.normal(size=(300, 32))  # noisy pairs: R@1 well below 1
    plain = retrieval.retrieval_metrics(images, texts)
    oracle = itm_rerank.reranked_retrieval_metrics(
        images, texts, lambda i, t: (i == t).astype(float), k=8
    )
    for direction in ("image_to_text", "text_to_image"):
        assert plain[f"retrieval/{direction}/r@1"] < 0.9
        recall_at_8 = retrieval.recall_at_k(
            images @ texts.T if direction == "image_to_text" else texts @ images.T, ks=(8,)
        )["r@8"]
        assert oracle[f"retrieval_itm/{direction}/r@1"] == recall_at_8
    blind = itm_rerank.reranked_retrieval_metrics(images, texts, lambda i, t: 0 * i, k=5)
    assert blind["retrieval_itm/image_to_text/r@10"] == plain["retrieval/image_to_text/r@10"]


def test_the_suite_reranks_retrieval_with_the_itm_head(tiny_config, tmp_path):
    from mvl.evaluate.suite import EvalSuite
    from mvl.train.loop import Trainer

    trainer = Trainer(
        tiny_config("maskvlm", **{"evals.retrieval.itm_rerank_k": "4"}), str(tmp_path)
    )
    suite = EvalSuite(trainer.model, trainer.cfg, trainer.tokenizer, trainer.mesh)
    metrics = suite.run(trainer.state)
    for direction in ("image_to_text", "text_to_image"):
        # Only the top 4 change order: recall at 5 and 10 is the embeddings' own.
        for k in (5, 10):
            assert (
                metrics[f"retrieval_itm/{direction}/r@{k}"]
                == metrics[f"retrieval/{direction}/r@{k}"]
            )
        assert 0.0 <= metrics[f"retrieval_itm/{direction}/r@1"] <= 1.0


def test_average_precision_is_one_for_perfect_scores_and_chance_for_uninformative_ones():
    from mvl.evaluate import pair_matching

    classes = np.repeat(np.arange(10), 5)
    perfect = np.eye(10)[classes]  # items of a class share one direction
    assert pair_matching.pair_matching_metrics(perfect, classes)["average_precision"] == 1.0
    rng = np.random.default_rng(6)
    random = pair_matching.pair_matching_metrics(rng.normal(size=(50, 16)), classes)
    assert abs(random["average_precision"] - random["chance"]) < 0.05
    constant = pair_matching.average_precision(np.zeros(100), np.arange(100) < 10)
    assert constant == pytest.approx(0.1, abs=0.06)  # ties earn chance, not a perfect score


def test_the_suite_reports_pair_matching_under_each_modality(tiny_config, tmp_path):
    from mvl.evaluate.suite import EvalSuite
    from mvl.train.loop import Trainer

    trainer = Trainer(tiny_config("mlim"), str(tmp_path))
    suite = EvalSuite(trainer.model, trainer.cfg, trainer.tokenizer, trainer.mesh)
    metrics = suite.run(trainer.state)
    assert 0 < metrics["pair_matching/chance"] < 0.2
    for mode in ("both", "text_only", "image_only"):
        assert 0.0 < metrics[f"pair_matching/{mode}/average_precision"] <= 1.0


def test_cls_attention_is_uniform_when_queries_are_zero(tiny_config):
    import flax

    from mvl.evaluate import attention_maps
    from mvl.models.model import build_model

    cfg = tiny_config("clip")
    from mvl.data.special_tokens import SENTENCEPIECE
    from mvl.train.state import init_params

    model = build_model(cfg, 128, SENTENCEPIECE)
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    params = init_params(model, cfg, jax.random.PRNGKey(0))
    flat = flax.traverse_util.flatten_dict(flax.linen.meta.unbox(params))

    def with_query(value):
        def pick(key, array):
            is_query = key[0] == "image" and "self_attn" in key and "query" in key
            return value(array) if is_query else array

        tree = {key: pick(key, array) for key, array in flat.items()}
        maps = attention_maps.cls_attention(
            model, flax.traverse_util.unflatten_dict(tree), images, cfg.model.image.num_heads
        )
        assert maps.shape == (2, 4, 4) and np.all(maps.sum((1, 2)) < 1.0)
        return maps

    # A query bias gives [CLS] (constant at init) a direction: some patches win.
    rng = np.random.default_rng(1)
    assert with_query(lambda a: rng.normal(size=a.shape).astype(a.dtype) * 3).std() > 1e-3
    # Zero queries: every logit is 0, so 16 patches + [CLS] share attention equally.
    np.testing.assert_allclose(with_query(np.zeros_like), 1 / 17, rtol=1e-5)
