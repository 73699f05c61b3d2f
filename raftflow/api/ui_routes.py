"""Serves the web UI's static files at `/ui/` (docs/ui.md).

The files are read once when the app is built and held as bytes, keyed by file name: a request
can only name one of them, so no path from a URL ever reaches the file system. They hold no
data (the pages fetch it from the API with the user's token), hence the routes are open. A
strict Content-Security-Policy allows only this node's scripts and styles: a workflow id or a
payload shown by a page can never run as code, even if a page forgot to escape it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Final

from aiohttp import web

from raftflow.api.errors import NotFoundError

UI_PATH: Final = "/ui/"
UI_FILE_PATH: Final = "/ui/{file}"
INDEX: Final = "index.html"
# The UI is a handful of small files; a bigger directory means something went wrong.
UI_FILES_MAX: Final = 64
UI_FILE_BYTES_MAX: Final = 256 * 1024

_CONTENT_TYPES: Final = MappingProxyType({
    ".html": "text/html", ".js": "text/javascript", ".css": "text/css",
    ".txt": "text/plain", ".svg": "image/svg+xml"})
_HEADERS: Final = MappingProxyType({
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A node upgraded in place serves its new files at once.
    "Cache-Control": "no-cache"})


@dataclass(frozen=True, slots=True)
class UiFile:
    body: bytes
    content_type: str


@functools.cache
def load_ui_files() -> MappingProxyType[str, UiFile]:
    """Every file of raftflow/ui/static by name (the package data an install carries), read
    once per process."""
    files: dict[str, UiFile] = {}
    for entry in resources.files("raftflow.ui").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if not entry.is_file() or suffix not in _CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        assert len(body) <= UI_FILE_BYTES_MAX, (entry.name, len(body))
        files[entry.name] = UiFile(body=body, content_type=_CONTENT_TYPES[suffix])
    assert INDEX in files, "raftflow/ui/static/index.html is missing from the package"
    assert len(files) <= UI_FILES_MAX, len(files)
    return MappingProxyType(files)


UI_FILES_KEY: web.AppKey[MappingProxyType[str, UiFile]] = web.AppKey("ui_files")


def _serve(found: UiFile) -> web.Response:
    return web.Response(body=found.body, content_type=found.content_type,
                        headers=dict(_HEADERS))


async def ui_redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(UI_PATH)


async def ui_index(request: web.Request) -> web.StreamResponse:
    return _serve(request.app[UI_FILES_KEY][INDEX])


async def ui_file(request: web.Request) -> web.StreamResponse:
    found = request.app[UI_FILES_KEY].get(request.match_info["file"])
    if found is None:
        raise NotFoundError(f"the UI has no file {request.match_info['file']!r}")
    return _serve(found)
