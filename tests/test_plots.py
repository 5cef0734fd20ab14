"""Figures a reader can take in at a glance (issue 19, item 5): one colour per method across every figure, dashed for a
configured setting and solid for a tuned one; Hovmöller colourbars below their own group of panels."""

import numpy as np

from enkf import plots


def test_one_colour_per_method_and_line_style_by_setting():
    labels = ["letkf (config)", "letkf (tuned)", "etkf (tuned)", "eakf (config)", "pertobs (tuned)", "obs_only",
              "nudging", "agent L96_1", "agent L96_1_s2", "best tuned filter: etkf (inflation 1.05)"]  # fmt: skip
    st = plots.styles(labels)
    assert st["letkf (config)"]["color"] == st["letkf (tuned)"]["color"] != st["etkf (tuned)"]["color"]
    assert st["letkf (config)"]["ls"] == "--" and st["letkf (tuned)"]["ls"] == "-"
    assert st["best tuned filter: etkf (inflation 1.05)"]["color"] == st["etkf (tuned)"]["color"]
    assert st["agent L96_1"]["color"] == "black" and st["agent L96_1_s2"]["color"] != "black"
    filters = {st[k]["color"] for k in ("letkf (tuned)", "etkf (tuned)", "eakf (config)", "pertobs (tuned)", "obs_only",
                                        "nudging")}  # fmt: skip
    assert len(filters) == 6
    # the same method keeps its colour in another figure, whatever else is drawn there
    assert plots.styles(["eakf (tuned)"])["eakf (tuned)"]["color"] == st["eakf (config)"]["color"]
    assert plots.styles(["agent spread", "agent RMSE"])["agent spread"]["ls"] == ":"


def test_hovmoller_groups_states_then_errors_with_one_colourbar_each(tmp_path, monkeypatch):
    import matplotlib.figure

    bars = []
    orig = matplotlib.figure.Figure.colorbar
    monkeypatch.setattr(matplotlib.figure.Figure, "colorbar",
                        lambda self, im, ax=None, **kw: bars.append((im, ax, kw)) or orig(self, im, ax=ax, **kw))  # fmt: skip
    f = {"truth": np.zeros((50, 8)), "error a": np.ones((50, 8)), "a": np.ones((50, 8)), "error b": -np.ones((50, 8))}
    p = plots.hovmoller(f, "t", tmp_path / "h.png")
    assert p.is_file()
    assert len(bars) == 2 and all(kw["location"] == "bottom" for _, _, kw in bars)
    titles = [[a.get_title() for a in ax] for _, ax, _ in bars]
    assert titles == [["truth", "a"], ["error a", "error b"]]
