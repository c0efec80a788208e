"""The web UI (Vietnamese, for culture-center staff and commune operators) and the pull API.

``create_app(settings)`` in ``pipeline.web.app`` builds the FastAPI app that ``loa serve`` runs.
"""
