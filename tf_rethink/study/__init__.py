"""Studies over many runs: the paper's numbers and tables, pruning as architecture search."""
