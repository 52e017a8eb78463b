"""bench/calibrate: the unit is fixed work (same checksum every time) and figures convert by its CPU."""

from bench import calibrate


def test_unit_is_fixed_work():
    assert calibrate.unit() == calibrate.unit()


def test_measure_reports_the_best_of_its_runs_and_converts_by_it():
    cal = calibrate.measure(runs=3)
    assert cal["version"] == calibrate.VERSION and cal["runs"] == 3
    assert 0 < cal["spread_ms"]["min"] == cal["unit_cpu_ms"] <= cal["spread_ms"]["median"] <= cal["spread_ms"]["max"]
    assert calibrate.in_units(cal["unit_cpu_ms"] * 2.5, cal) == 2.5
