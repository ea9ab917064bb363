"""The package's structure: no import circles, one graph reader, methods found by discovery."""
import ast
import os
import re
import subprocess
import sys
import textwrap

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tf_rethink")
ROOT = os.path.dirname(PACKAGE)


def _modules():
  mods = {}
  for root, _, files in os.walk(PACKAGE):
    for f in files:
      if f.endswith(".py"):
        path = os.path.join(root, f)
        name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        mods[name[:-9] if name.endswith(".__init__") else name] = path
  return mods


def _edges(mods):
  edges = {}
  for m, path in mods.items():
    targets = set()
    with open(path) as f:
      tree = ast.parse(f.read())
    for node in ast.walk(tree):
      if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tf_rethink"):
        for alias in node.names:
          t = f"{node.module}.{alias.name}"
          targets.add(t if t in mods else node.module)
    edges[m] = {t for t in targets if t in mods and t not in (m, "tf_rethink")}
  return edges


def test_no_import_circles():
  edges = _edges(_modules())
  state, cycles = {}, []

  def visit(u, stack):
    state[u] = 1
    stack.append(u)
    for v in sorted(edges[u]):
      if state.get(v) == 1:
        cycles.append(stack[stack.index(v):] + [v])
      elif not state.get(v):
        visit(v, stack)
    stack.pop()
    state[u] = 2
  for m in sorted(edges):
    if not state.get(m):
      visit(m, [])
  assert not cycles, cycles[:5]
  # The check sees edges (it would catch a circle): the engine's layers import downwards.
  assert "tf_rethink.pruning.rules.base" in edges["tf_rethink.pruning.rules.conv"]


def test_only_the_graph_adapters_read_keras_node_internals():
  internals = re.compile(r"_inbound_nodes|_outbound_nodes|_keras_history|_nodes_by_depth|"
                         r"_network_nodes|keras_inputs|inbound_layers|clone_model")
  readers = sorted(os.path.relpath(p, ROOT) for p in _modules().values()
                   if internals.search(open(p).read()))
  assert readers == [os.path.join("tf_rethink", "pruning", "graph", "keras2.py"),
                     os.path.join("tf_rethink", "pruning", "graph", "keras3.py")]


def test_a_new_method_is_one_file(tmp_path):
  """A module dropped into pruning/methods registers itself: nothing else is edited."""
  code = textwrap.dedent('''
      import os, shutil, sys, tf_rethink
      import tf_rethink.pruning.methods as methods
      path = os.path.join(os.path.dirname(methods.__file__), "zz_every_other.py")
      with open(path, "w") as f:
        f.write("from tf_rethink.pruning.methods.base import Pruner\\n"
                "from tf_rethink.pruning.methods.registry import METHODS\\n"
                "from tf_rethink.pruning.plan import Plan\\n"
                "@METHODS.register('zz_every_other')\\n"
                "class EveryOther(Pruner):\\n"
                "  name = 'zz_every_other'\\n"
                "  citation = 'a test'\\n"
                "  def select(self, model, data=None, *, model_name=''):\\n"
                "    return Plan(model=model_name, keep={'c': (0, 2)}, method=self.name)\\n")
      try:
        import importlib
        importlib.reload(methods)
        print(methods.METHODS.get("zz_every_other").name)
      finally:
        os.remove(path)
      ''')
  env = dict(os.environ, PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=env, cwd=str(tmp_path))
  assert out.returncode == 0, out.stderr[-1500:]
  assert out.stdout.split()[-1] == "zz_every_other"
