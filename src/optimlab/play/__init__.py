"""``optimlab play``: the lecture you can touch. A local web app (Starlette + uvicorn, a
hand-written canvas page) whose JSON API (:mod:`optimlab.play.api`) runs optimlab itself.

    >>> from optimlab.play import create_app, serve   # serve() blocks until Ctrl-C
"""

from __future__ import annotations

__all__ = ["SCENES", "create_app", "serve"]

#: the page's scenes (``serve(scene=...)`` opens one; the page's ``?scene=`` names them)
SCENES = ("race", "regression", "ewma", "maps")


def create_app(tour_dir=None):
    """The Starlette app (see :func:`optimlab.play.server.create_app`)."""
    from .server import create_app as make

    return make(tour_dir)


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = True,
    scene=None,
    tour_dir="optimlab-tour",
) -> int:
    """Run the app until Ctrl-C (see :func:`optimlab.play.server.serve`)."""
    from .server import serve as run

    return run(host=host, port=port, open_browser=open_browser, scene=scene, tour_dir=tour_dir)
