"""WSGI entry point for servers started by hand:
`gunicorn -c python:service.gunicorn_conf service.wsgi:app`.
`simguard api` needs none of this; it builds the app in each worker."""

from __future__ import annotations

from service.app import create_app

app = create_app()
