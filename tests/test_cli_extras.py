"""A plain install (no server extras): the CLI loads, and `tenku serve` says what to install instead of a traceback."""

import subprocess
import sys

# Import of the server's packages fails in the child, as if `pip install tenku` had left them out.
HIDE = """
import importlib.abc, importlib.util, sys
HIDDEN = {"fastapi", "uvicorn", "multipart", "starlette"}
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in HIDDEN:
            raise ModuleNotFoundError(name, name=name)
_find = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a, **k: None if name.split('.')[0] in HIDDEN else _find(name, *a, **k)
sys.meta_path.insert(0, Hide())
from tenku.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run(*argv):
    return subprocess.run([sys.executable, "-c", HIDE, *argv], capture_output=True, text=True, timeout=120)


def test_serve_without_extras_exits_2_with_install_hint():
    r = run("serve")
    assert r.returncode == 2
    assert r.stderr.strip() == ("tenku serve needs the server extras: pip install 'tenku[serve]' (or scripts/setup.sh,"
                                " which installs it); missing: fastapi, uvicorn, multipart")


def test_cli_help_without_extras():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    for command in ("generate", "world", "worldbench", "train", "cache", "serve"):
        assert command in r.stdout


def test_generate_parses_without_importing_the_feature_modules():
    """Start-up time of the README's command (issue 16): `tenku generate` needs none of the other sub-commands."""
    code = """
import sys
from tenku.cli import FEATURES, main
try:
    main(["generate", "--help"])
except SystemExit:
    print(sorted(set(FEATURES) & set(sys.modules)))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("[]"), r.stderr
