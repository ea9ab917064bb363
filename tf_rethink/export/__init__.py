"""Exporting pruned models: verified Keras and inference SavedModels (BatchNorm folded), and TFLite
float32 / float16 / full-int8 from the inference SavedModel (`export.tflite`).

```python
from tf_rethink import export
export.export_and_verify(model, "out/keras_savedmodel", sample)   # trainable, reloaded and checked
export.export_serving(model, "out/serving", sample)               # BN folded, frozen, checked
from tf_rethink.export import tflite
rows = tflite.report("/tmp/tf_rethink")   # every export/serving/<name> as TFLite, measured
print(tflite.table(rows))
```
"""
from tf_rethink.export.saved_model import (export_and_verify, export_serving, float32_copy,
                                           gzip_size, load)

__all__ = ["export_and_verify", "export_serving", "float32_copy", "gzip_size", "load"]
