"""Writes of the decision log (§8), by job.

* :mod:`.writes`: what people do by hand (create, edit drafts and proposals, change a status,
  supersede, link), called by the decision views.
* :mod:`.hooks`: what the session engine calls when a key question is settled
  (:func:`~.hooks.decision_from_key_question`) or a design gate is approved
  (:func:`~.hooks.decisions_accept_from_validation`). It imports nothing above the engine.
* :mod:`.importing`: ADR collections read by :mod:`sessions_app.decisions.madr`, for the import
  page and the ``import_decisions`` command.
* :mod:`.records`: what all three share: cleaning the MADR fields, numbering, status history.

History is append-only: every status change writes a :class:`StatusChange`, and an accepted
decision is superseded or deprecated, never rewritten.
"""
