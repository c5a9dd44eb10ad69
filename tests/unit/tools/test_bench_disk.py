"""`lendseg bench` refuses up front, in one line, when the disk cannot hold the size asked."""

from pathlib import Path

import pytest

from dagster_project.tools import bench


def test_sizes_are_read_in_duckdb_units() -> None:
    assert bench.size_bytes("20GB") == 20 * 10**9
    assert bench.size_bytes("512 MiB") == 512 * 2**20
    assert bench.size_bytes("1.5TB") == 1.5 * 10**12
    with pytest.raises(ValueError, match="not a size"):
        bench.size_bytes("lots")


def test_need_grows_with_the_book_and_the_spill_is_capped() -> None:
    small = bench.disk_needed(100_000, 24, "20GB")
    assert small == 2 * 100_000 * 24 * bench.DISK_BYTES_PER_CLIENT_MONTH  # spill as much again, under the cap
    big = bench.disk_needed(1_000_000, 24, "20GB")
    assert big == 24 * 10**9 + 20 * 10**9  # the cap bounds the spill


def test_refuses_in_one_line_when_free_disk_is_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.shutil, "disk_usage", lambda _: type("U", (), {"free": 10 * 10**9})())
    bench.check_disk(100_000, 24, tmp_path, "20GB")  # 4.8 GB needed: fits
    with pytest.raises(bench.BenchRefused) as err:
        bench.check_disk(1_000_000, 24, tmp_path, "20GB")
    msg = str(err.value)
    assert (
        "\n" not in msg
        and "44.0 GB" in msg
        and "10.0 GB are free" in msg
        and "LENDSEG_DUCKDB_MAX_TEMP_SIZE=20GB" in msg
    )


def test_a_failed_run_leaves_its_logs_where_the_report_goes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "logs" / "run1.log").write_text("step dbt_client_dimensions failed")
    (data / "dbt_target" / "abc").mkdir(parents=True)
    (data / "dbt_target" / "abc" / "dbt.log").write_text("Out of Memory Error")
    kept = bench.keep_failed_logs(data, tmp_path / "out")
    assert sorted(p.name for p in kept.iterdir()) == ["abc-dbt.log", "logs-run1.log"]
    assert (kept / "abc-dbt.log").read_text() == "Out of Memory Error"
