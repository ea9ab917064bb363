"""Exporting pruned models: verified Keras and inference SavedModels (BatchNorm folded), TFLite.

```python
from tf_rethink import export
export.export_and_verify(model, "out/keras_savedmodel", sample)   # trainable, reloaded and checked
export.export_serving(model, "out/serving", sample)               # BN folded, frozen, checked
```
"""
from tf_rethink.export.saved_model import (export_and_verify, export_serving, export_tflite,
                                           float32_copy, gzip_size, load)

__all__ = ["export_and_verify", "export_serving", "export_tflite", "float32_copy", "gzip_size",
           "load"]
