"""The machine a benchmark ran on, and which oneDNN kernels ran (TensorFlow-free, Linux).

Rules implemented:
  * the CPU model is /proc/cpuinfo's first `model name`; the ISA flags reported are the ones that
    decide which CPU kernels oneDNN can pick (`ISA_FLAGS`: AVX2, AVX-512, its bf16 / VNNI
    extensions, AMX),
    each True or False as /proc/cpuinfo's `flags` line lists it;
  * the load is /proc/loadavg's 1/5/15-minute averages at the moment of asking (other processes
    compete for the same cores: a ratio from one interleaved run stays comparable, an absolute
    img/s does not);
  * `onednn_kernels` reads a log written with ONEDNN_VERBOSE=1 (oneDNN 3.x, TensorFlow's and
    PyTorch's builds): every `primitive,exec` line is one primitive execution; it groups them by
    (primitive kind, pass, implementation) and sums their times (the last field, ms). A pass is
    oneDNN's prop_kind (forward_training, forward_inference, backward_data, backward_weights,
    backward); an implementation runs on AMX iff its name contains `amx` (e.g.
    `brg_conv_fwd:avx512_core_amx`), otherwise it is AVX-512 / AVX2 / reference code as named.
"""
import collections
import os
import platform
from typing import Dict, Iterable, List, Optional

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile")


def _cpuinfo(path="/proc/cpuinfo") -> Dict[str, str]:
  """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
  fields = {}
  try:
    with open(path) as f:
      for line in f:
        if not line.strip():
          if fields:
            break
          continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
  except OSError:
    pass
  return fields


def cpu_model(path="/proc/cpuinfo") -> str:
  """/proc/cpuinfo's `model name` (else platform.processor(), else 'unknown CPU')."""
  return _cpuinfo(path).get("model name") or platform.processor() or "unknown CPU"


def isa(path="/proc/cpuinfo") -> Dict[str, bool]:
  """{flag: present} for each of ISA_FLAGS, from /proc/cpuinfo's `flags`."""
  flags = set(_cpuinfo(path).get("flags", "").split())
  return {name: name in flags for name in ISA_FLAGS}


def load_average() -> Optional[List[float]]:
  """The 1, 5 and 15-minute load averages now (None where the OS does not say)."""
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return None


def format_load(values) -> str:
  """'a/b/c' of the 1, 5 and 15-minute load averages ('unknown' for None)."""
  return "/".join(f"{x:.2f}" for x in values) if values else "unknown"


def describe(path="/proc/cpuinfo") -> dict:
  """CPU model, logical cores, ISA flags, memory (GiB) and load: a JSON-able dict."""
  mem = None
  try:
    with open("/proc/meminfo") as f:
      mem = round(int(next(l.split()[1] for l in f if l.startswith("MemTotal"))) / 2**20, 1)
  except (OSError, StopIteration, ValueError):
    pass
  return {"cpu": cpu_model(path), "cores": os.cpu_count(), "isa": isa(path), "memory_gib": mem,
          "load_average": load_average(), "python": platform.python_version()}


def format_machine(m: dict, label: str = "machine: ") -> str:
  """One line: 'machine: <cpu>, N cores, ISA avx512f+amx_bf16 (no ...), M GiB; load a/b/c'."""
  have = [k for k, v in m["isa"].items() if v]
  lack = [k for k, v in m["isa"].items() if not v]
  isa_text = "+".join(have) or "none of " + ", ".join(ISA_FLAGS)
  if have and lack:
    isa_text += f" (no {', '.join(lack)})"
  load = format_load(m.get("load_average"))
  mem = f", {m['memory_gib']} GiB" if m.get("memory_gib") else ""
  return (f"{label}{m['cpu']}, {m['cores']} logical cores, ISA {isa_text}{mem}; "
          f"load average (1/5/15 min) {load}")


def _exec_fields(line: str) -> Optional[List[str]]:
  """[kind, implementation, pass, ..., time] of a `primitive,exec` verbose line, else None."""
  if not line.startswith(("onednn_verbose", "dnnl_verbose")):
    return None
  parts = line.rstrip("\n").split(",")
  try:
    i = parts.index("exec")
  except ValueError:
    return None
  if i + 4 >= len(parts) or parts[i - 1] not in ("primitive", parts[0]):
    return None  # e.g. a graph-API line
  return parts[i + 2:]  # after 'exec', the engine ('cpu')


def onednn_kernels(lines: Iterable[str]) -> Dict[str, dict]:
  """{'<kind> <pass>': {'impls': {impl: {'calls', 'ms'}}, 'calls', 'ms', 'amx'}} of a verbose log.

  `amx` is True when every call of that kind and pass ran an AMX implementation, False when none
  did and 'partly' otherwise. Reorders (layout conversions) have no pass; they count as 'undef'."""
  acc = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0.0]))
  for line in lines:
    fields = _exec_fields(line)
    if not fields or len(fields) < 3:
      continue
    kind, impl, prop = fields[0], fields[1] or "?", fields[2] or "undef"
    try:
      ms = float(fields[-1])
    except ValueError:
      ms = 0.0
    cell = acc[f"{kind} {prop}"][impl]
    cell[0] += 1
    cell[1] += ms
  out = {}
  for key, impls in acc.items():
    calls = sum(c for c, _ in impls.values())
    amx_calls = sum(c for impl, (c, _) in impls.items() if "amx" in impl)
    out[key] = {"impls": {impl: {"calls": c, "ms": round(ms, 3)} for impl, (c, ms) in impls.items()},
                "calls": calls, "ms": round(sum(ms for _, ms in impls.values()), 3),
                "amx": True if amx_calls == calls else False if amx_calls == 0 else "partly"}
  return dict(sorted(out.items()))


def onednn_version(lines: Iterable[str]) -> Optional[str]:
  """'v3.7.3' from the log's `info,oneDNN v3.7.3 (commit ...)` line, else None."""
  for line in lines:
    if "info,oneDNN v" in line:
      return line.split("oneDNN ")[1].split()[0]
  return None


def summarize_kernels(kernels: Dict[str, dict], kinds=("convolution", "inner_product", "matmul")
                      ) -> str:
  """'convolution forward_training: AMX (brg_conv_fwd:avx512_core_amx 12.3 ms); ...' for `kinds`."""
  parts = []
  for key, k in kernels.items():
    if key.split()[0] not in kinds:
      continue
    amx = {True: "AMX", False: "no AMX", "partly": "partly AMX"}[k["amx"]]
    impls = ", ".join(f"{name} {v['ms']:.1f} ms" for name, v in
                      sorted(k["impls"].items(), key=lambda kv: -kv[1]["ms"]))
    parts.append(f"{key}: {amx} ({impls})")
  return "; ".join(parts) or "no oneDNN primitive of these kinds ran"
