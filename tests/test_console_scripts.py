"""The console scripts declared in setup.cfg resolve to the package's commands and run."""
import configparser
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _scripts() -> dict:
  """name -> "module:function" from setup.cfg's console_scripts."""
  parser = configparser.ConfigParser()
  parser.read(os.path.join(ROOT, "setup.cfg"))
  lines = parser["options.entry_points"]["console_scripts"].strip().splitlines()
  return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def _run(name: str, args, cwd):
  """Runs console script `name` as installed (when it is on PATH) or as pip's wrapper does."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  installed = shutil.which(name)
  if installed:
    command = [installed, *args]
  else:
    module, function = _scripts()[name].split(":")
    command = [sys.executable, "-c", f"import sys; from {module} import {function}; "
               f"sys.argv[0] = {name!r}; sys.exit({function}())", *args]
  return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_entry_points_resolve_to_the_commands():
  """Imported in a child process: the commands define absl flags, which other tools' tests
  define too in this one."""
  scripts = _scripts()
  assert set(scripts) == {"tf-rethink", "tf-rethink-tables"}
  assert scripts["tf-rethink"] == "tf_rethink.run.main:cli"
  check = "; ".join(f"import {t.split(':')[0]} as m{i}; assert callable(m{i}.{t.split(':')[1]})"
                    for i, t in enumerate(scripts.values()))
  proc = subprocess.run([sys.executable, "-c", check + "; print('resolved')"], capture_output=True,
                        text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
  assert proc.returncode == 0 and "resolved" in proc.stdout, proc.stderr[-2000:]


def test_tf_rethink_runs_a_dry_run(tmp_path):
  proc = _run("tf-rethink", ["--method=l1_norm", "--model=vgg16", "--dry_run",
                             f"--workdir={tmp_path}"], str(tmp_path))
  assert proc.returncode == 0, proc.stderr[-2000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["full"]["params"] > summary["pruned"]["params"] > 0
  bad = _run("tf-rethink", ["--augment=autoaugment"], str(tmp_path))
  assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--augment" in bad.stderr


def test_tf_rethink_tables_renders_and_refuses_bad_flags(tmp_path):
  out = tmp_path / "tables.md"
  proc = _run("tf-rethink-tables", [f"--runs={tmp_path}", f"--flags_dir={ROOT}/flags",
                                    "--tables=l1_norm", f"--out={out}"], str(tmp_path))
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "### Table L1" in out.read_text() and "wrote" in proc.stdout
  bad = _run("tf-rethink-tables", ["--tables=nope"], str(tmp_path))
  assert bad.returncode == 2 and bad.stderr.strip().startswith("error: unknown --tables")
  assert bad.stderr.count("\n") == 1
