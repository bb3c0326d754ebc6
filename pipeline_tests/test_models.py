import datetime as dt

import pytest

from pipeline.cloudglue.models import Job


def test_job_keeps_unknown_fields_and_records_tolerated_issues():
    job = Job.from_api(
        {
            "job_id": "j1",
            "status": "archived",
            "created_at": 1764288000000.5,
            "brand_new_field": {"x": 1},
            "data": {"segment_entities": [{"start_time": 0, "end_time": 1, "segment_id": "s"}]},
        }
    )
    assert job.extra == {"brand_new_field": {"x": 1}}
    assert job.segment_entities[0].extra == {"segment_id": "s"}
    assert job.created_date == dt.date(2025, 11, 28)
    assert any("unknown status" in i for i in job.issues)
    assert any("float" in i for i in job.issues)


def test_job_without_id_is_a_clear_error():
    with pytest.raises(ValueError, match="job_id"):
        Job.from_api({"status": "completed"})
