"""util/machine: the CPU description from /proc/cpuinfo and oneDNN's verbose log, parsed."""
import pytest

from tf_rethink.util import machine

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile

processor\t: 1
model name\t: Other CPU
flags\t\t: fpu
"""

# Lines as TensorFlow's oneDNN 3.7.3 and PyTorch's 3.12 print them (shapes shortened).
LOG = """onednn_verbose,v1,info,oneDNN v3.7.3 (commit N/A),,,,
onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,prop_kind,memory_descriptors,attributes,auxiliary,problem_desc,exec_time
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core_amx,forward_training,src:bf16::blocked:acdb::f0 dst:bf16::blocked:acdb::f0,,alg:convolution_direct,mb64_ic64oc64_ih32oh32kh3sh1dh0ph1_iw32ow32kw3sw1dw0pw1,1.5
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core_amx,forward_training,src:bf16::blocked:acdb::f0,,alg:convolution_direct,mb64_ic64oc64,2.5
onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx512_core,backward_weights,src:f32::blocked:acdb::f0,,alg:convolution_direct,mb64_ic64oc64,4.0
onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_bwd_w:avx10_1_512_amx,backward_weights,src:bf16::blocked:acdb::f0,,alg:convolution_direct,mb64_ic64oc64,2.0
onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:abcd::f0 dst:f32::blocked:acdb::f0,,,64x3x32x32,0.25
onednn_verbose,v1,graph,info,template:operation,engine,partition_id,partition_kind
"""


def test_cpu_model_and_isa_from_cpuinfo(tmp_path):
  path = tmp_path / "cpuinfo"
  path.write_text(CPUINFO)
  assert machine.cpu_model(str(path)) == "Intel(R) Xeon(R) Processor"  # the first processor's
  isa = machine.isa(str(path))
  assert isa == {"avx2": True, "avx512f": True, "avx512_bf16": True, "avx512_vnni": False, "amx_bf16": True,
                 "amx_int8": False, "amx_tile": True}
  m = machine.describe(str(path))
  line = machine.format_machine(m)
  assert line.startswith("machine: Intel(R) Xeon(R) Processor, ")
  assert "ISA avx2+avx512f+avx512_bf16+amx_bf16+amx_tile (no avx512_vnni, amx_int8)" in line


def test_missing_cpuinfo_is_unknown_not_an_error(tmp_path):
  assert machine.isa(str(tmp_path / "none")) == {k: False for k in machine.ISA_FLAGS}
  assert machine.cpu_model(str(tmp_path / "none"))


def test_onednn_kernels_per_kind_pass_and_implementation():
  k = machine.onednn_kernels(LOG.splitlines(keepends=True))
  assert list(k) == ["convolution backward_weights", "convolution forward_training",
                     "reorder undef"]
  fwd = k["convolution forward_training"]
  assert fwd["calls"] == 2 and fwd["ms"] == pytest.approx(4.0) and fwd["amx"] is True
  assert fwd["impls"] == {"brg_conv_fwd:avx512_core_amx": {"calls": 2, "ms": 4.0}}
  bwd_w = k["convolution backward_weights"]
  assert bwd_w["amx"] == "partly" and bwd_w["ms"] == pytest.approx(6.0)
  assert k["reorder undef"]["amx"] is False
  assert machine.onednn_version(LOG.splitlines()) == "v3.7.3"
  summary = machine.summarize_kernels(k)
  assert "convolution forward_training: AMX (brg_conv_fwd:avx512_core_amx 4.0 ms)" in summary
  assert "reorder" not in summary


def test_non_verbose_lines_are_ignored():
  assert machine.onednn_kernels(["hello\n", "BENCH {}\n", "onednn_verbose,v1,info,x\n"]) == {}
  assert machine.onednn_version(["nothing"]) is None
