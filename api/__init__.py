"""The km-search web API and chat page (FastAPI). ``create_app(cfg)`` builds the app."""


def create_app(*args, **kwargs):
    from .app import create_app as _create_app
    return _create_app(*args, **kwargs)


__all__ = ["create_app"]
