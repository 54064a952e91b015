"""Token ids every mvl tokenizer reserves, so masking and pooling can rely on them."""

PAD = 0
UNK = 1
BOS = 2
EOS = 3
MASK = 4  # "[MASK]"
CLS = 5  # "[CLS]": the first token of every sequence, pooled by the text tower
NUM_RESERVED = 6
