"""Running experiments: the command line (`main`), its settings (`config`), one experiment's
wiring (`experiment`), repeats over seeds (`repeats`), run records (`results`, `hparams`)."""
