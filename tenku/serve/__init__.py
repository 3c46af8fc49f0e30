"""`tenku serve`: a web page and an HTTP API over a persistent job queue.

    app.py     FastAPI routes (create_app(pipe, data_dir, token, limits))
    jobs.py    SQLite job store and the worker thread
    limits.py  request limits and validation
    fake.py    a fast deterministic stand-in pipeline (a test aid)
    cli.py     the `serve` sub-command
    static/    the web page (HTML + vanilla JS, nothing fetched from the internet)
"""

from .app import create_app
from .limits import Limits

__all__ = ["create_app", "Limits"]
