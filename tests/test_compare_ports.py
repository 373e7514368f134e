"""benchmarks/compare_ports.py's ratios: the paired one follows the rounds, not the medians."""
from benchmarks.compare_ports import add_ratios


def _row(name: str, walls: list[float]) -> dict:
    median = sorted(walls)[len(walls) // 2]
    return {"name": name, "res": 256, "batch": 1, "tunables": False, "images_per_s": 1 / median,
            "cpu_s_per_image": median, "peak_rss_mib": 600.0, "walls": walls}


def test_the_paired_ratio_is_the_median_of_each_rounds_own_ratio():
    # The machine slows down for the last four rounds, and for ours alone in the first two: ours is 5 %
    # faster in seven rounds of nine, but the two medians come from different sides of the slowdown.
    base = [0.50] * 5 + [0.80] * 4
    ours = [0.95 * b for b in base]
    ours[0] = ours[1] = 0.95 * 0.80
    rows = [_row("ours_plan", ours), _row("ours_baseline_plan", base), _row("ada", [1.0] * 9)]
    add_ratios(rows)
    r = rows[0]
    assert abs(r["vs_baseline_paired"] - 1 / 0.95) < 1e-9
    assert r["vs_baseline_plan"] < 1  # the ratio of medians says slower
    assert rows[1]["vs_baseline_paired"] == 1.0
    assert rows[2]["vs_baseline_paired"] == 0.5  # ada: twice as slow as the baseline in five rounds of nine
