"""The papers' benchmarks, read from what a user has on disk (nothing is downloaded):

karpathy.py      COCO / Flickr30k retrieval: a Karpathy split JSON + an images folder
caption_table.py retrieval from a .csv / .jsonl of (image, caption) pairs
image_folder.py  classification: root/<class>/<image> (torchvision's ImageFolder)
tfds_source.py   classification: a prepared tfds dataset, via tfds.data_source
classification.py  an image folder or a tfds split, as evaluator options name it
class_names.py   class names and prompt templates: shipped ones, or a user's file
streaming.py     images decoded and embedded chunk by chunk, with a progress line
paper_evals.py   the config arguments imagenet= / coco= / flickr30k= of paper configs
"""
