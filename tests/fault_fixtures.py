"""Fixtures of the fault tests (tests/test_faults_*.py), which load them with
``pytest_plugins = ["fault_fixtures"]``.

Per test module, shared by its tests: a private Redis (``broker``), a fresh PostgreSQL database at
the schema head (``database_url``), the settings of every process the module starts (``conf``:
FAULT_CONF, then the module's own ``conf_overrides`` fixture), the same as Settings for the test's
own writes (``settings``) and as a worker's environment (``env``, with FAST_ENV: a chunk decoded
in one batch), an engine on the database (``engine``) and ``module_fleet``, processes that live as
long as the module, with ``logs`` printing theirs after each test.

Per test: ``workers`` (start(name, **env overrides); killed at the end of the test and their logs
printed, which pytest shows when the test fails) and ``pg_proxy``, a way to PostgreSQL the test can
cut. Everything is the test's own: nothing touches the shared Redis or PostgreSQL beyond creating
and dropping a database.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers_worker import (
    FAST_ENV,
    PG_PORT,
    Fleet,
    PgProxy,
    PrivateRedis,
    copygen_env,
    fresh_database,
    require_service,
    slow_checkpoint,
)

FAULT_CONF: dict[str, Any] = {
    "chunk_size": 3,
    # Limits and leases far above any chunk however slow the machine (on CI a first chunk once took
    # over 60 s while two workers, two beats and a kernel build shared 2 cores), since a chunk that
    # outlives its lease may rightly be claimed again by a second delivery. A lease lapses where a
    # test makes it lapse (helpers_worker.lapse_lease); the broker never redelivers within a test
    # (what comes back, SQL sends back).
    "lease_seconds": 900, "visibility_timeout": 3600, "task_soft_time_limit": 600, "task_time_limit": 700,
}


@pytest.fixture(scope="module")
def conf_overrides() -> dict[str, Any]:
    """A module's own settings on top of FAULT_CONF: override this fixture in the module."""
    return {}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    redis = PrivateRedis(tmp_path_factory.mktemp("redis")).start()
    yield redis
    redis.kill()


@pytest.fixture(scope="module")
def database_url(request):
    require_service("PostgreSQL", PG_PORT)
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with fresh_database(f"copygen_{module}") as url:
        yield url


@pytest.fixture(scope="module")
def conf(broker, database_url, conf_overrides, tmp_path_factory) -> dict[str, Any]:
    return {"database_url": database_url, "broker_url": broker.url,
            "checkpoint": slow_checkpoint(tmp_path_factory.getbasetemp()), **FAULT_CONF, **conf_overrides}


@pytest.fixture(scope="module")
def settings(conf):
    from copygen.settings import Settings

    return Settings(**conf)


@pytest.fixture(scope="module")
def env(conf) -> dict[str, str]:
    return {**copygen_env(**conf), **FAST_ENV}


@pytest.fixture(scope="module")
def engine(conf):
    from db.engine import make_engine

    made = make_engine(conf["database_url"])
    yield made
    made.dispose()


@pytest.fixture
def workers(env, tmp_path):
    """start(name, **env_overrides): a worker of this test, ready; all are killed at its end."""
    fleet = Fleet(env, tmp_path)
    yield fleet.worker
    fleet.kill_all()
    fleet.print_logs()


@pytest.fixture(scope="module")
def module_fleet(env, tmp_path_factory):
    """A Fleet whose processes live until the end of the module (then warm shutdown)."""
    fleet = Fleet(env, tmp_path_factory.mktemp("processes"))
    yield fleet
    fleet.stop_all(timeout=30)


@pytest.fixture
def logs(module_fleet):
    yield
    module_fleet.print_logs()


@pytest.fixture
def pg_proxy():
    """A PgProxy to 127.0.0.1:5432; `pg_proxy.url(settings.database_url)` goes through it."""
    proxy = PgProxy().start()
    yield proxy
    proxy.close()
