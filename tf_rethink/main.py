"""`python -m tf_rethink.main`: the experiment command line (defined in `tf_rethink.run.main`)."""
from tf_rethink.run.main import cli

if __name__ == "__main__":
  cli()
