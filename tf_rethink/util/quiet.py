"""Imports TensorFlow without the C++ start-up chatter (oneDNN, CUDA probing) on stderr.

Those lines are written before TensorFlow's logging is initialized, so TF_CPP_MIN_LOG_LEVEL cannot
silence them; the command line redirects file descriptor 2 while TensorFlow loads and initializes
its devices. Python exceptions raised during the import still propagate normally.
"""
import os


def import_tensorflow():
  """Imports TensorFlow and lists its devices with stderr silenced; returns the module."""
  saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(null, 2)
  try:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.config.list_logical_devices()
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(null)
  return tf
