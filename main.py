"""Entry point for ``uvicorn main:app`` from the repository root."""

from imagerec.app import create_app

app = create_app()
