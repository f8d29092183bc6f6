"""benchmarks/margins.py: separate scales runs merged, margins over bicubic against each factor's control."""

import json

import pytest

from benchmarks import margins


def write(path, methods):
    path.write_text(json.dumps({"factors": [float(f) for f in methods], "methods": methods}))
    return path


@pytest.fixture
def runs(tmp_path):
    """Two scales runs with the same bicubic rows: the controls at their own factor, two student seeds at both."""
    bicubic = {"2": {"psnr": 33.0, "vmaf": 90.0}, "4": {"psnr": 27.0, "vmaf": 55.0}}
    controls = write(tmp_path / "controls.json", {  # timed with other work beside: only the timings differ
        "2": {"bicubic": {**bicubic["2"], "s_per_frame": 0.002}, "gvr x2": {"psnr": 32.8, "vmaf": 95.0}},
        "4": {"bicubic": bicubic["4"], "gvr x4": {"psnr": 27.3, "vmaf": 67.0}}})
    students = write(tmp_path / "students.json", {
        "2": {"bicubic": {**bicubic["2"], "s_per_frame": 0.0003},
              "s0": {"psnr": 32.9, "vmaf": 94.0}, "s1": {"psnr": 32.75, "vmaf": 95.0}},
        "4": {"bicubic": bicubic["4"], "s0": {"psnr": 27.4, "vmaf": 67.5}, "s1": {"psnr": 27.2, "vmaf": 66.9}}})
    return controls, students


def test_margins_against_each_factors_control(runs, tmp_path, capsys):
    found = margins.main([str(p) for p in runs] + ["--control", "2=gvr x2", "4=gvr x4", "--mean", "student=s0,s1",
                                                  "--methods", "student", "s0", "--out", str(tmp_path / "m")])
    assert list(found) == [2.0, 4.0] and list(found[2.0]) == ["student", "s0"]
    x2 = found[2.0]["student"]  # mean 32.825 / 94.5 against bicubic 33 / 90, the control's -0.2 / +5
    assert x2["psnr"] == pytest.approx({"margin": -0.175, "control": -0.2, "over": 0.025})
    assert x2["vmaf"] == pytest.approx({"margin": 4.5, "control": 5.0, "over": -0.5})
    assert found[4.0]["s0"]["psnr"]["over"] == pytest.approx(0.1)  # +0.4 against the control's +0.3
    text = (tmp_path / "m" / "margins.md").read_text()
    assert "| x2 | student | -0.17 (spread 0.15) | -0.20 | met | +4.50 (spread 1.00) | +5.00 | short by 0.50 |" in text
    assert "| x4 | s0 | +0.40 | +0.30 | met | +12.50 | +12.00 | met |" in text
    assert text == capsys.readouterr().out
    saved = json.loads((tmp_path / "m" / "margins.json").read_text())
    assert saved["controls"] == {"2": "gvr x2", "4": "gvr x4"} and saved["margins"]["4"]["s0"]["vmaf"]["over"] > 0


def test_runs_on_other_clips_are_refused(runs, tmp_path):
    controls, students = runs
    other = json.loads(students.read_text())
    other["methods"]["4"]["bicubic"] = {"psnr": 27.01, "vmaf": 55.0}
    write(students, other["methods"])
    with pytest.raises(SystemExit, match=r"x4: 'bicubic' has other scores in .*students.json than in .*controls.json "
                                         r"\(the clips differ\)"):
        margins.main([str(controls), str(students), "--control", "4=gvr x4"])


def test_bad_arguments_say_what_is_missing(runs, tmp_path):
    controls, students = runs
    with pytest.raises(SystemExit, match="x2.5: no results at this factor"):
        margins.main([str(controls), "--control", "2.5=gvr x2.5"])
    with pytest.raises(SystemExit, match="x2: no 'gvr x3' row in the results"):
        margins.main([str(controls), "--control", "2=gvr x3"])
    with pytest.raises(SystemExit, match="no results file .*nothing.json"):
        margins.main([str(tmp_path / "nothing.json"), "--control", "2=gvr x2"])
    with pytest.raises(SystemExit, match="--control: expected KEY=VALUE, got 'gvr x2'"):
        margins.main([str(controls), "--control", "gvr x2"])
    with pytest.raises(SystemExit, match="a factor must be a number"):
        margins.main([str(controls), "--control", "two=gvr x2"])
