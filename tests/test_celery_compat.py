"""The canary for worker/celery_compat.py: the private attributes it relies on are still there in
the installed Celery and kombu, and a missing one turns its change off with a warning."""

import logging

import celery
import kombu
import pytest
from celery.worker.request import Request

from worker import celery_compat
from worker.app import app


@pytest.fixture
def fresh_check():
    celery_compat.check.cache_clear()
    yield
    celery_compat.check.cache_clear()


def test_the_installed_celery_and_kombu_are_the_ones_it_was_written_for(fresh_check):
    assert celery.__version__.startswith(celery_compat.TESTED["celery"] + ".")
    assert kombu.__version__.startswith(celery_compat.TESTED["kombu"] + ".")
    assert {change: celery_compat.missing(change) for change in celery_compat.NEEDS} == {"consumer": []}
    assert celery_compat.check() == {"consumer": True}


def test_the_app_uses_it_and_kombus_own_transport():
    assert app.conf.worker_consumer == "worker.celery_compat:Consumer"
    assert app.conf.broker_transport is None  # from the URL: kombu's own Redis transport
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is False


def test_a_missing_attribute_turns_the_change_off_with_a_warning(fresh_check, monkeypatch, caplog):
    monkeypatch.delattr(Request, "acknowledged")
    with caplog.at_level(logging.WARNING, logger="gleaner.celery_compat"):
        assert celery_compat.consumer_class() == celery_compat.DEFAULT_CONSUMER  # Celery's own
    assert "Request.acknowledged" in caplog.text and "consumer change is off" in caplog.text
