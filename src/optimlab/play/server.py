"""The ASGI app of ``optimlab play`` (Starlette) and :func:`serve` (uvicorn).

The app only routes: every ``/api`` endpoint is a pure function of :mod:`optimlab.play.api`
(dict in, dict out), run in Starlette's thread pool so that the event loop never computes.
Errors are JSON: a refused request 400 ``{"error": {"field", "message"}}``, a body over
64 KiB 413, an unknown route 404, a wrong method 405; nothing a client sends crashes it (an
unexpected exception is a 500 JSON answer, logged, and the server keeps serving).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import socket
import threading
import webbrowser
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import SCENES, api
from .errors import RequestError
from .jsonable import jsonable

__all__ = ["MAX_BODY", "SCENES", "create_app", "serve"]

#: the largest request body accepted (bytes)
MAX_BODY = 64 * 1024
STATIC = Path(__file__).resolve().parent / "static"

_log = logging.getLogger("optimlab.play")

for _type, _ext in (
    ("text/javascript", ".js"),
    ("text/javascript", ".mjs"),
    ("text/css", ".css"),
    ("image/svg+xml", ".svg"),
    ("application/json", ".json"),
):
    mimetypes.add_type(_type, _ext)


def json_response(payload, status: int = 200) -> Response:
    """Strict JSON (non-finite floats already None), compact."""
    body = json.dumps(jsonable(payload), separators=(",", ":"), allow_nan=False)
    return Response(body, status_code=status, media_type="application/json")


def _error(status: int, field: str, message: str) -> Response:
    return json_response({"error": {"field": field, "message": message}}, status)


async def _read_body(request: Request) -> bytes:
    """The body, refused with a RequestError(413) beyond :data:`MAX_BODY` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise RequestError("body", f"body must be at most {MAX_BODY} bytes", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise RequestError("body", f"body must be at most {MAX_BODY} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON (use null for a missing number)")


def _parse(raw: bytes):
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise RequestError("body", f"body must be a JSON object: {error}") from None


def _endpoint(function, method: str):
    async def handle(request: Request) -> Response:
        try:
            if method == "POST":
                body = _parse(await _read_body(request))
                if not isinstance(body, dict):
                    raise RequestError(
                        "body", f"body must be a JSON object, got {type(body).__name__}"
                    )
                result = await run_in_threadpool(function, body)
            else:
                result = await run_in_threadpool(function)
            return await run_in_threadpool(json_response, result)
        except RequestError as error:
            return json_response(error.to_json(), error.status)
        except Exception:  # never crash: log it, answer 500, keep serving
            _log.exception("optimlab play: %s %s failed", method, request.url.path)
            return _error(500, "body", "internal error while answering this request")

    handle.__name__ = f"{method.lower()}_{function.__name__}"
    return handle


async def _index(request: Request) -> Response:
    page = STATIC / "index.html"
    if not page.is_file():
        return _error(404, "path", "the page is not installed (static/index.html missing)")
    return FileResponse(page, media_type="text/html; charset=utf-8")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    words = {404: "no such route", 405: "method not allowed here"}.get(exc.status_code, exc.detail)
    return _error(exc.status_code, "path", f"{words}: {request.method} {request.url.path}")


_NO_TOUR = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>optimlab play: no tour here</title></head><body style="font-family: sans-serif;
max-width: 40rem; margin: 3rem auto; line-height: 1.5"><h1>No tour here yet</h1>
<p><code>optimlab play</code> serves the report of <code>optimlab tour</code> at this address
when it finds one: run <code>optimlab tour</code> in the folder where you start
<code>optimlab play</code> (it writes <code>optimlab-tour/</code>), or start it with
<code>optimlab play --tour DIR</code>.</p><p><a href="/">Back to the playground</a></p>
</body></html>"""


def _tour_routes(tour_dir) -> list:
    """``/tour/``: the folder of an ``optimlab tour`` report (its index.html and figures, as
    static files), or a page saying how to make one."""
    folder = None if tour_dir is None else Path(tour_dir)
    if folder is not None and (folder / "index.html").is_file():
        return [Mount("/tour", app=StaticFiles(directory=folder, html=True), name="tour")]

    async def no_tour(request: Request) -> Response:
        return Response(_NO_TOUR, media_type="text/html; charset=utf-8")

    return [Route("/tour/", no_tour, methods=["GET"])]


def create_app(tour_dir=None) -> Starlette:
    """The app: ``GET /`` (the page), ``/static/...`` (its assets, from the package),
    ``GET /api`` (the documentation), the endpoints of :data:`optimlab.play.api.ROUTES`, and
    ``/tour/``: the tour report in ``tour_dir`` if it holds one."""
    routes = [Route("/", _index, methods=["GET"])]
    for (method, path), function in api.ROUTES.items():
        routes.append(Route(path, _endpoint(function, method), methods=[method]))
    routes.append(Mount("/static", app=StaticFiles(directory=STATIC, check_dir=False)))
    routes.extend(_tour_routes(tour_dir))
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


def _check_port(host: str, port: int) -> None:
    """Refuse a busy port with one line naming it (OSError)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(f"port {port} on {host} is not available: {error.strerror}") from None


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = True,
    scene: str | None = None,
    tour_dir="optimlab-tour",
) -> int:
    """Run the app under uvicorn at ``http://host:port/`` until Ctrl-C (then return 0).

    Prints ``optimlab play: http://127.0.0.1:8765/  (Ctrl-C stops)``, opens the browser
    (``webbrowser``) unless ``open_browser`` is False, on the scene ``scene`` if given (one of
    :data:`SCENES`); serves the tour report in ``tour_dir`` at ``/tour/`` if there is one. A
    port in use raises OSError naming it; a bad argument ValueError."""
    import uvicorn

    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an integer in [1, 65535], got {port!r}")
    if scene is not None and scene not in SCENES:
        raise ValueError(f"scene must be one of {', '.join(SCENES)}, got {scene!r}")
    _check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?scene={scene}" if scene else "")
    config = uvicorn.Config(create_app(tour_dir), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    print(f"optimlab play: {url}  (Ctrl-C stops)", flush=True)
    if open_browser:
        threading.Timer(0.8, webbrowser.open, args=(url,)).start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0
