"""What the broadcast rules and the stations' own reports serve.

CAP 1.2 alerts and their import, emergency replays, the policy guard, operators'
decisions, as-run receipts, their collection and reconciliation, and the statistics
the provincial source-information system asks for.
"""
