import datetime as dt

import pytest

from pipeline.cloudglue.models import Job


def test_a_listed_job_tolerates_what_the_api_may_send_and_keeps_it_all():
    obj = {
        "job_id": "j1",
        "status": "archived",
        "created_at": 1764288000000.5,
        "brand_new_field": {"x": 1},
    }
    job = Job.from_api(obj)
    assert (job.status, job.is_completed) == ("archived", False)
    assert job.created_date == dt.date(2025, 11, 28)
    assert job.raw == obj
    assert Job.from_api({"job_id": "j2", "status": 3, "created_at": "soon"}).created_at is None


def test_job_without_id_is_a_clear_error():
    with pytest.raises(ValueError, match="job_id"):
        Job.from_api({"status": "completed"})
