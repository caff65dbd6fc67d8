"""The demo server: a drawing page and a JSON API over one trained run (``mnist-logreg serve``).

``app.create_app`` wires ``routes`` to a run's ``service.ModelService``; ``schemas`` are what the
API takes and answers, ``bodies`` how a request's images are read.
"""
