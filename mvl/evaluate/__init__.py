"""Evaluation, as the config declares it (`config.evals.<name> = dict(type=...)`):

  registry.py       evaluator types by name; declare / validate a section
  evaluator.py      what an evaluator is (options, validate, run, pictures)
  evaluators/       mvl's own: retrieval, zeroshot, probe, held_out_losses,
                    pair_matching, reconstructions; on the papers' benchmarks read from
                    disk: retrieval_benchmark (COCO / Flickr30k Karpathy splits),
                    zeroshot_benchmark / imagenet_zeroshot, linear_probe_benchmark
  benchmarks/       the benchmarks' sources (Karpathy JSON, image folders, tfds) and
                    class names / templates (data in class_names/)
  suite.py          runs the declared evaluators when due; context.py: what they share
  labels.py         the label tasks a held-out source offers (class names, prompts)
  model_parts.py    which passes a model can run (embed, ITM, single stream)
  retrieval.py, zeroshot.py, linear_probe.py, knn.py, pair_matching.py, itm_rerank.py,
  multi_caption_retrieval.py, benchmark_zeroshot.py, logistic_regression.py:
                    the metrics, as pure functions
  embeddings.py, padding.py, losses.py, reconstruction.py: the model on the mesh
  __main__.py       python -m mvl.evaluate --checkpoint WORKDIR [--eval NAME]
  throughput.py     python -m mvl.evaluate.throughput: benchmark time per 10k images
"""
