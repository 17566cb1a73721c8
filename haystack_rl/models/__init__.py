"""The embedded default model ("tiny", built locally) and model-name resolution."""

from haystack_rl.models.tiny import default_cache_root, ensure_tiny_model, resolve_model

__all__ = ["default_cache_root", "ensure_tiny_model", "resolve_model"]
