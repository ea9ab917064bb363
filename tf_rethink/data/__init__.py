"""Datasets of the paper (CIFAR-10/100, ImageNet) and the shipped offline default (Fashion-MNIST
subset), as batched tf.data pipelines with the paper's augmentation and normalization.

```python
from tf_rethink import data
ds = data.pipeline("embedded", "train", batch_size=64, seed=1)   # (float32 NHWC, int32)
data.num_examples("cifar10", "test", data_dir="~/tensorflow_datasets")
data.info("cifar10").input_shape                                  # (32, 32, 3)
```
"""
from tf_rethink.data.datasets import DATASETS
from tf_rethink.data.datasets import DatasetInfo
from tf_rethink.data.datasets import info
from tf_rethink.data.pipeline import num_examples
from tf_rethink.data.pipeline import pipeline

__all__ = ["DATASETS", "DatasetInfo", "info", "num_examples", "pipeline"]
