"""/healthz: 200 when the database and Redis answer, 503 naming what failed, no login."""

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
UNREACHABLE_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/ied"


def test_healthy_when_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_names_redis_when_it_does_not_answer(make_app):
    make_app()  # the first app empties the tables afterwards
    app = make_app(REDIS_URL=UNREACHABLE_REDIS)
    response = app.test_client().get("/healthz")
    app.extensions.pop("ied_redis")  # nothing to flush on a server that is not there
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "failed": ["redis"]}


def test_names_the_database_when_it_does_not_answer(make_app):
    make_app()
    app = make_app(SQLALCHEMY_DATABASE_URI=UNREACHABLE_DATABASE, REDIS_URL=UNREACHABLE_REDIS)
    response = app.test_client().get("/healthz")
    app.extensions.pop("ied_redis")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "failed": ["database", "redis"]}
