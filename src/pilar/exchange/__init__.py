"""Federation: node identity and the hub's signed trust list, agreements, signed DCI-shaped
messages between nodes, the exchange services (person search, insurance periods, events), the
hub's pseudonymous person index, and the transparency log with its auditor.

The design and its contracts are in ``docs/federation.md``.
"""
