"""The web UI's files: plain HTML, CSS and ES modules under `static/`, no build step.

Every node serves them at `/ui/` (raftflow/api/ui_routes.py); the pages call the node's public
HTTP API from the browser with the user's bearer token, so the UI can show nothing the API
would not answer to that token (docs/ui.md).
"""
