"""tf_rethink: "Rethinking the Value of Network Pruning" (Liu et al., ICLR 2019) in Keras.

Importing the package selects the Keras 2 API (`tf_keras`) for TensorFlow before TensorFlow is
imported, because tensorflow-model-optimization only works with tf_keras models. Every module of
the package imports Keras as `import tf_keras as keras`.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
