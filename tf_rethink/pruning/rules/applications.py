"""Rules for the custom layers of keras.applications (tf_keras and Keras 3 versions alike).

* ConvNeXt `LayerScale` (x * gamma, gamma per channel, `projection_dim` = the channel count):
  gamma and projection_dim follow the channels; 1 FLOP per element (an elementwise product).
* ConvNeXt `StochasticDepth`: the identity in inference (drop path in training): free.
* InceptionResNetV2 `CustomScaleLayer` (inputs[0] + inputs[1] * scale): a merge of its inputs,
  like `Add`; 2 FLOPs per element.
"""
from tf_rethink.pruning.rules.base import Cost, Ctx, Cut, Free, Pointwise, elementwise_cost, take
from tf_rethink.pruning.rules.book import RULES
from tf_rethink.pruning.rules.elementwise import MergeRule


class LayerScaleRule(Pointwise):
  def cut(self, c: Ctx) -> Cut:
    ins = c.ins[0]
    return Cut(out=ins, config={"projection_dim": len(ins)},
               weights=lambda w: [take(v, ins) for v in w])

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    return elementwise_cost(c)


class ScaledSumRule(MergeRule):
  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    return elementwise_cost(c, 2)


_APPS = ("tf_keras.src.applications", "keras.src.applications")
RULES.register(LayerScaleRule(), *[f"{api}:{pkg}.convnext.LayerScale"
                                   for api, pkg in zip(("tf_keras", "keras3"), _APPS)])
RULES.register(Free(), *[f"{api}:{pkg}.convnext.StochasticDepth"
                         for api, pkg in zip(("tf_keras", "keras3"), _APPS)])
RULES.register(ScaledSumRule(), *[f"{api}:{pkg}.inception_resnet_v2.CustomScaleLayer"
                                  for api, pkg in zip(("tf_keras", "keras3"), _APPS)])
