"""The ablation table writer (`gvr.analysis.ablations`): seed summaries, the verdict rule, the files."""

import json

import numpy as np
import pytest
from PIL import Image

from gvr.analysis.ablations import Claim, ablation_result, format_markdown, judge, overall, summarise_arm, write_outputs


def _arm(psnr, grid=None, seeds=(0, 1)):
    scores = {"psnr": psnr} if grid is None else {"psnr": psnr, "grid": grid}
    return summarise_arm(scores, seeds)


def test_an_arm_is_the_mean_and_range_over_its_seeds():
    arm = summarise_arm({"psnr": [30.0, 31.0, 32.5], "vmaf": [80, 82, 81]}, [0, 1, 2])
    assert arm["psnr"] == pytest.approx(31.1666667) and arm["spread"]["psnr"] == pytest.approx(2.5)
    assert arm["vmaf"] == pytest.approx(81.0) and arm["spread"]["vmaf"] == pytest.approx(2.0)
    assert arm["seeds"] == [0, 1, 2] and arm["per_seed"]["psnr"] == [30.0, 31.0, 32.5]
    with pytest.raises(ValueError, match="2 seeds"):
        summarise_arm({"psnr": [1.0, 2.0, 3.0]}, [0, 1])


@pytest.mark.parametrize("a, b, kind, expected", [
    ([31.0, 31.2], [30.0, 30.1], "better", "reproduced"),        # d = 1.05 > spread 0.2
    ([30.0, 30.1], [31.0, 31.2], "better", "not reproduced"),    # d = -1.05 < -0.2
    ([30.0, 30.4], [30.1, 30.2], "better", "inconclusive"),      # d = 0.05 inside 0.4
    ([30.0, 30.4], [30.1, 30.2], "no_worse", "reproduced"),      # not measurably worse
    ([30.03, 30.03], [30.0, 30.0], "better", "inconclusive"),    # no seed range, but below PSNR's 0.05 dB
    ([29.0, 29.1], [30.1, 30.2], "no_worse", "not reproduced"),  # worse by more than the spread
])
def test_the_verdict_rule(a, b, kind, expected):
    arms = {"a": _arm(a), "b": _arm(b)}
    verdict = judge(arms, Claim("psnr", "a", "b", kind))
    assert verdict["verdict"] == expected
    assert verdict["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    assert verdict["threshold"] == pytest.approx(max(np.ptp(a), np.ptp(b), 0.05))


def test_lower_is_better_metrics_flip_the_sign_and_one_seed_is_never_conclusive():
    arms = {"a": _arm([30.0, 30.0], grid=[0.10, 0.11]), "b": _arm([30.0, 30.0], grid=[0.30, 0.31])}
    verdict = judge(arms, Claim("grid", "a", "b"))
    assert verdict["diff"] == pytest.approx(0.2) and verdict["verdict"] == "reproduced"
    assert judge(arms, Claim("grid", "a", "b"), quick=True)["verdict"] == "inconclusive"  # a harness check only
    single = {"a": _arm([35.0], seeds=[0]), "b": _arm([20.0], seeds=[0])}
    assert judge(single, Claim("psnr", "a", "b"))["verdict"] == "inconclusive"
    with pytest.raises(ValueError, match="no arm c"):
        judge(arms, Claim("psnr", "a", "c"))
    with pytest.raises(ValueError, match="no 'vmaf'"):
        judge(arms, Claim("vmaf", "a", "b"))


def test_an_ablation_is_reproduced_only_when_every_claim_is():
    r, n, i = ({"verdict": v} for v in ("reproduced", "not reproduced", "inconclusive"))
    assert overall([r, r]) == "reproduced"
    assert overall([r, i]) == "inconclusive" and overall([r, i, n]) == "not reproduced" and overall([]) == "inconclusive"


def test_the_files(tmp_path):
    arms = {"uniform": _arm([30.0, 30.2]), "detail-aware": _arm([31.0, 31.1])}
    results = {"quick": False, "ablations": {"timesteps": ablation_result(
        arms, [Claim("psnr", "detail-aware", "uniform")], paper="DOVER 68.94 / 69.64", regime="anchored, sigma 0.5")}}
    written = write_outputs(results, tmp_path)
    assert sorted(p.name for p in written) == ["results.json", "table.md", "timesteps.png"]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["quick"] is False
    entry = data["ablations"]["timesteps"]
    assert entry["verdict"] == "reproduced" and entry["arms"]["uniform"]["seeds"] == [0, 1]
    assert entry["arms"]["detail-aware"]["psnr"] == pytest.approx(31.05)
    table = (tmp_path / "table.md").read_text()
    assert table == format_markdown(results)
    assert "| detail-aware | 2 | 31.05 ± 0.05 |" in table and "QUICK run" not in table and "DOVER 68.94" in table
    assert "detail-aware better than uniform on PSNR: reproduced (difference +0.95, threshold 0.2)" in table
    with Image.open(tmp_path / "timesteps.png") as image:
        assert image.size == (720, 440)
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels != 255).any(axis=2).mean() > 0.05  # bars drawn, not a blank sheet
    quick = {"quick": True, "ablations": {"timesteps": ablation_result(arms, [Claim("psnr", "detail-aware", "uniform")],
                                                                       quick=True)}}
    assert quick["ablations"]["timesteps"]["verdict"] == "inconclusive" and "QUICK run" in format_markdown(quick)
