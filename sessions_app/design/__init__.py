"""The design a session produces (SPEC §3a): the brief, the versioned proposal, the key
questions, the implementation plan and the integration checklist.

Plain Python and pydantic, no Django imports except in ``models`` and ``services``: the rule-based
designer, the LLM adapters and the engine all speak the types of :mod:`schema`."""
