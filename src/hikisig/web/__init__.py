"""The clinic web app (``hikisig serve``): pages, JSON API, roles, audit trail."""

from hikisig.web.app import WebSettings, create_app

__all__ = ["WebSettings", "create_app"]
