"""The gunicorn settings file the production commands and the bench load."""

import gc
import importlib.util
from pathlib import Path

from gunicorn.config import Config

CONF = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"


def _load():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", CONF)
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return conf


def test_a_worker_freezes_what_it_loaded_out_of_the_collectors_sight():
    conf = _load()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        conf.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_gunicorn_opens_no_control_socket():
    conf = _load()
    assert "control_socket_disable" in Config().settings  # a setting gunicorn reads
    assert conf.control_socket_disable is True
