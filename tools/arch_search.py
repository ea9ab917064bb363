r"""Pruning as architecture search (paper section 5): pruned vs uniform vs guided architectures,
each trained from scratch (Scratch-E) over seeds; accuracy vs parameters as CSV + PNG.

  python tools/arch_search.py --flagfile=flags/arch_search/smoke.cfg
  python tools/arch_search.py --flagfile=flags/arch_search/vgg16_cifar10_slimming.cfg
  python tools/arch_search.py --flagfile=flags/arch_search/vgg19_cifar100_transferred.cfg

Takes every flag of `python -m tf_rethink.main` (model, dataset, --method = the source method,
--seeds, epochs, ...) plus the ones below; see tf_rethink/arch_search.py for the workdir layout.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from tf_rethink.run import main as main_lib  # noqa: E402  (defines the experiment flags)
from tf_rethink.util.errors import UsageError  # noqa: E402

flags.DEFINE_list("arch_ratios", ["0.3", "0.5", "0.7"], "Prune ratios of the source method "
                  "(Network Slimming: global channel ratio; magnitude: weight sparsity).")
flags.DEFINE_list("arch_kinds", ["pruned", "uniform", "guided"], "Architecture families: pruned, "
                  "uniform, guided, transferred.")
flags.DEFINE_string("transfer_from", None, "patterns.json of another arch_search run (kind "
                    "'transferred': its stage patterns applied to this model/dataset).")
flags.DEFINE_enum("arch_metric", "best", ["best", "final"], "Accuracy plotted: best or final "
                  "epoch's test accuracy.")
FLAGS = flags.FLAGS


def _search(config):
  from tf_rethink.study import arch_search  # pylint: disable=import-outside-toplevel
  try:
    ratios = [float(r) for r in FLAGS.arch_ratios]
  except ValueError:
    raise UsageError(f"--arch_ratios={FLAGS.arch_ratios} must be numbers, e.g. 0.3,0.5") from None
  arch_search.Search(config, ratios, FLAGS.arch_kinds, FLAGS.transfer_from).run(FLAGS.arch_metric)


if __name__ == "__main__":
  app.run(main_lib.entry(_search), flags_parser=main_lib.parse_flags)
