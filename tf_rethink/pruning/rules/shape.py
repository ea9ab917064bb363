"""Layers that move or regroup values without mixing channels: pooling, padding, cropping,
resizing, concatenation, flatten, reshape, permute.

FLOPs (convention A): Max/AveragePooling k^2 per output element (the reference's pooling
modules); a global pool H W per output element (the reference's AvgPool2d(8)/(7) modules pool
the whole map); UpSampling 12 per output element (the reference's Upsample hook); padding,
cropping, concatenation, flatten and reshapes 0.

Channel maps (channels last):
* concatenation on the last axis: input k's channel i is output channel offset_k + i;
* Flatten: position p, channel i -> feature p C + i (a Dense after it drops those rows);
* Reshape that keeps the last axis, or only adds / drops unit dimensions around it: the channels
  pass (the SE block's (C,) -> (1, 1, C)); one that folds trailing axes into the last (like a
  Flatten): position p, channel i -> p C + i; any other reshape needs all channels;
* Permute keeping the last axis last passes the channels; other permutations need all of them.
"""
from tf_rethink.pruning.rules.base import Cost, Ctx, Cut, Free, Pointwise, Rule, channels, prod
from tf_rethink.pruning.rules.book import RULES


def _channels_last(c: Ctx) -> None:
  fmt = c.config.get("data_format")
  if fmt not in (None, "channels_last") and not c.inputs_full():
    c.refuse(f"is {fmt}; surgery follows channels-last layers only")


class PoolRule(Pointwise):
  def cut(self, c: Ctx) -> Cut:
    _channels_last(c)
    return Cut(out=c.ins[0])

  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    return Cost(flops=prod(c.layer.pool_size) * prod(c.out_shape[1:]))


class GlobalPoolRule(PoolRule):
  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    return Cost(flops=prod(c.in_shapes[0][1:]))


class ChannelsLastFree(Free):
  def cut(self, c: Ctx) -> Cut:
    _channels_last(c)
    return Cut(out=c.ins[0])


class UpSamplingRule(ChannelsLastFree):
  def cost(self, c: Ctx, sparse: bool = False) -> Cost:
    del sparse
    return Cost(flops=12 * prod(c.out_shape[1:]))


class ConcatenateRule(Rule):
  def cut(self, c: Ctx) -> Cut:
    rank = len(c.out_shape)
    if c.layer.axis % rank != rank - 1:
      if not c.inputs_full():
        c.refuse(f"concatenates axis {c.layer.axis}; only channel concatenation is followed")
      return Cut(out=c.full_out)
    out, offset = [], 0
    for ins, shape in zip(c.ins, c.in_shapes):
      out.extend(offset + i for i in ins)
      offset += channels(shape)
    return Cut(out=tuple(out))


def _fold_positions(ins, channels_in: int, positions: int):
  return tuple(p * channels_in + i for p in range(positions) for i in ins)


class FlattenRule(Rule):
  def cut(self, c: Ctx) -> Cut:
    _channels_last(c)
    shape = c.in_shapes[0]
    return Cut(out=_fold_positions(c.ins[0], channels(shape), prod(shape[1:-1])))


class ReshapeRule(Rule):
  def cut(self, c: Ctx) -> Cut:
    src = [int(d) for d in c.in_shapes[0][1:]]
    dst = [int(d) for d in c.out_shape[1:]]
    ins = c.ins[0]
    if c.inputs_full():
      return Cut(out=c.full_out)
    if src[-1] == dst[-1]:   # the channel axis stays last: the other axes are regrouped
      return Cut(out=ins, config={"target_shape": tuple(dst[:-1]) + (len(ins),)})
    # Trailing axes folded into the channel axis: dst[-1] = prod(src[k:]) for some k.
    for k in range(len(src) - 1, -1, -1):
      if prod(src[k:]) == dst[-1] and src[:k] == dst[:-1]:
        out = _fold_positions(ins, src[-1], prod(src[k:-1]))
        return Cut(out=out, config={"target_shape": tuple(dst[:-1]) + (len(out),)})
    c.refuse(f"mixes channels with other axes ({src} -> {dst}); leave its inputs unpruned")


class PermuteRule(Rule):
  def cut(self, c: Ctx) -> Cut:
    dims = tuple(c.layer.dims)
    if dims[-1] == len(dims):
      return Cut(out=c.ins[0])
    if not c.inputs_full():
      c.refuse(f"moves the channel axis (dims {dims}); leave its inputs unpruned")
    return Cut(out=c.full_out)


RULES.register(PoolRule(), "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
               "AveragePooling2D", "AveragePooling3D")
RULES.register(GlobalPoolRule(), "GlobalAveragePooling1D", "GlobalAveragePooling2D",
               "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
               "GlobalMaxPooling3D")
RULES.register(ChannelsLastFree(), "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
               "Cropping1D", "Cropping2D", "Cropping3D")
RULES.register(UpSamplingRule(), "UpSampling1D", "UpSampling2D", "UpSampling3D")
RULES.register(ConcatenateRule(), "Concatenate")
RULES.register(FlattenRule(), "Flatten")
RULES.register(ReshapeRule(), "Reshape")
RULES.register(PermuteRule(), "Permute")
