"""Adapters that feed compiled litdata shards to training frameworks (see adapters/megatron)."""
