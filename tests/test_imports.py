"""The package's imports run one way (issue 19, item 1): no import circle among enkf/, models/ and configs/, and
none of them imports the training script. The graph is read from the source (module-level and function-level
`import`/`from ... import` statements), so a lazy import inside a function counts too."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("enkf", "models", "configs")


def _graph() -> dict[str, set[str]]:
    mods = {f"{p}.{f.stem}" if f.stem != "__init__" else p: f for p in PACKAGES for f in (ROOT / p).glob("*.py")}
    g = {}
    for name, f in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(mods)  # from enkf import io
                deps |= subs if len(subs) == len(node.names) else subs | {node.module}
        g[name] = {d for d in deps if d in mods and d != name} | ({"ppo_lstm_enkf"} & deps)
    return g


def test_no_module_imports_the_training_script():
    bad = [m for m, deps in _graph().items() if "ppo_lstm_enkf" in deps]
    assert not bad, f"modules importing the training script: {bad}"


def test_the_import_graph_has_no_cycle():
    g = _graph()
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for d in sorted(g.get(m, ())):
            if d == "ppo_lstm_enkf":
                continue
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path, m, d]))
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [])
    assert len(g) > 15  # the walk saw the packages


def test_the_walk_finds_a_circle_when_there_is_one(monkeypatch):
    """The check itself can fail: a circle planted in the graph is reported."""
    real = _graph()
    planted = {**real, "enkf.tuned": real["enkf.tuned"] | {"enkf.evaluate"}}
    monkeypatch.setattr(sys.modules[__name__], "_graph", lambda: planted)
    try:
        test_the_import_graph_has_no_cycle()
    except AssertionError as e:
        assert "import circle" in str(e) and "enkf.evaluate" in str(e)
    else:
        raise AssertionError("the planted circle was not found")


def test_modules_stay_small_and_the_da_cycle_lives_in_one_place():
    """No file of enkf/ over 450 lines; the DA cycle is defined in enkf.cycle only, and data generation, the sweep,
    the tuning, the benchmark suite and the environment take it from there."""
    sizes = {f.name: len(f.read_text().splitlines()) for f in (ROOT / "enkf").glob("*.py")}
    assert max(sizes.values()) <= 450, sizes
    shared = {"make_forecaster", "obs_setup", "simulate_truth", "held_out_truth", "assimilate", "cycle", "rmse"}
    for f in (ROOT / "enkf").glob("*.py"):
        defined = {n.name for n in ast.parse(f.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert f.stem == "cycle" or not (defined & shared), (f.name, defined & shared)
    g = _graph()
    for m in ("enkf.data", "enkf.sweep", "enkf.tuned", "enkf.evaluate", "enkf.env"):
        assert "enkf.cycle" in g[m], m
