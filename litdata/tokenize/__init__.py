"""Tokenizing rendered text: loading a tokenizer folder, ids with offsets, one class per token."""
