"""The bundled conformance suite that ``pytest --target-url=...`` runs, one module per role.

It lives inside the package so an installed copy runs from any directory; the plugin
points pytest at it and parametrizes it (``conformance.plugin``).
"""
