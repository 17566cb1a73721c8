"""The environments shipped with haystack_rl, one module per environment (installed as `haystack_rl_envs`)."""
