"""What users would run instead of litdata, ported faithfully so that the benchmark comparisons are honest.

- llava: LLaVA-1.5's per-record `preprocess_v1` (tokenize the conversation, then each round, then mask).
- hf_map: the same tokenize-and-mask job as a batched `datasets.Dataset.map` (LLaMA-Factory / TRL style).
- packing: Megatron-LM / LLaMA-Factory greedy knapsack, first-fit decreasing, and no packing.
"""
