"""The width-scaling rule of `--width_multiplier` (TensorFlow-free: the PyTorch twins of
`tools/torch_models.py` use it too). `tf_rethink.models` re-exports both functions."""


def scale_width(w, m):
  """The contract's width scaling rule: max(1, int(round(w * m)))."""
  return max(1, int(round(w * m)))


def scale_widths(widths, m):
  """Scales every int of a (possibly nested) width list; 'M' entries stay."""
  out = []
  for w in widths:
    if isinstance(w, str):
      out.append(w)
    elif isinstance(w, (list, tuple)):
      out.append(type(w)(scale_width(v, m) for v in w))
    else:
      out.append(scale_width(w, m))
  return out
