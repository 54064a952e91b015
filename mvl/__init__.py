"""mvl: masked vision-language pretraining in JAX/Flax.

Every method is a choice of Mask, Encoder, Target and Head (see README.md);
one pure train_step (mvl/train/step.py) runs the objectives a config enables.
Importing mvl is cheap: nothing here imports tensorflow.
"""
