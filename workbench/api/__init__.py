"""Workbench over HTTP: an OpenAI-compatible server for runs' adapters (`python -m workbench serve`) and the REST
API for runs mounted beside the UI (`/api`). Light at import: torch loads only when a model does."""
