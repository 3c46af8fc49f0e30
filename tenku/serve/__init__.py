"""`tenku serve`: a web page and an HTTP API over a persistent job queue.

    app.py     FastAPI routes (create_app(pipe, data_dir, token, limits))
    jobs.py    SQLite job store and the worker thread
    limits.py  the server's caps on a job (the request itself is checked by tenku/request.py)
    cli.py     the `serve` sub-command
    static/    the web page (HTML + vanilla JS, nothing fetched from the internet)

The server's packages (fastapi, uvicorn, python-multipart) are an extra, `pip install 'tenku[serve]'`: nothing
here imports them until the server is built, so `tenku` without the extra still loads this package.
"""

# The packages the server needs, by import name, and the install hint every entry point gives without them.
EXTRA_MODULES = ("fastapi", "uvicorn", "multipart")
INSTALL_HINT = "pip install 'tenku[serve]' (or scripts/setup.sh, which installs it)"


def missing_extras() -> list[str]:
    """Import names of the server's packages that are not installed."""
    from importlib.util import find_spec

    return [m for m in EXTRA_MODULES if find_spec(m) is None]
