"""Packing documents into sequences of at most `seq_len` expanded tokens: the packers and the cutting-stock LP."""
