"""`python -m haystack_rl.cli`: the `haystack-rl` command (what `torchrun -m haystack_rl.cli train ...` runs)."""

from haystack_rl.cli import main

main()
