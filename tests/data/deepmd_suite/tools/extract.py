"""Extract expected values from DeePMD-kit test sources by executing only the
literal-assignment statements of setUp()/test bodies (parsed with ast)."""
import ast
import json
import types

import numpy as np

SRC = "/tmp/src"


class StubDP:
    def __init__(self, sel_type=None):
        self._sel = sel_type

    def get_sel_type(self):
        if self._sel is None:
            raise RuntimeError("no sel_type")
        return self._sel


def load_module(fname):
    return ast.parse(open(f"{SRC}/{fname}").read())


def find_class(mod, name):
    for n in mod.body:
        if isinstance(n, ast.ClassDef) and n.name == name:
            return n
    return None


def find_method(mod, cls, meth):
    """Resolve method through bases defined in the same module (left-to-right DFS)."""
    c = find_class(mod, cls)
    if c is None:
        return None, None
    for n in c.body:
        if isinstance(n, ast.FunctionDef) and n.name == meth:
            return n, cls
    for b in c.bases:
        if isinstance(b, ast.Name):
            r, owner = find_method(mod, b.id, meth)
            if r is not None:
                return r, owner
    return None, None


def run_body(fn, self_obj, stop_at_failure=False):
    ns = {"np": np, "self": self_obj, "default_places": 10}
    failed = []
    for stmt in fn.body:
        if isinstance(stmt, ast.Expr) and isinstance(getattr(stmt, "value", None), ast.Constant):
            continue  # docstring
        code = compile(ast.Module(body=[stmt], type_ignores=[]), "<stmt>", "exec")
        try:
            exec(code, ns)
        except Exception as e:  # noqa: BLE001
            failed.append((ast.unparse(stmt)[:80], repr(e)[:80]))
            if stop_at_failure:
                break
    return ns, failed


def setup_attrs(fname, cls, sel_type=None):
    mod = load_module(fname)
    fn, owner = find_method(mod, cls, "setUp")
    self_obj = types.SimpleNamespace(dp=StubDP(sel_type))
    _, failed = run_body(fn, self_obj)
    d = {k: v for k, v in vars(self_obj).items() if k != "dp"}
    return d, owner, failed


def method_locals(fname, cls, meth, sel_type=None):
    mod = load_module(fname)
    fn, owner = find_method(mod, cls, meth)
    self_obj = types.SimpleNamespace(dp=StubDP(sel_type))
    ns, failed = run_body(fn, self_obj, stop_at_failure=True)
    return {k: v for k, v in ns.items() if k not in ("np", "self")}, owner, failed


if __name__ == "__main__":
    import sys
    d, owner, failed = setup_attrs(sys.argv[1], sys.argv[2])
    print(owner, failed)
    for k, v in d.items():
        print(k, np.shape(v), type(v).__name__)
