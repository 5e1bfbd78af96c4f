"""The INVITE dialog core and its trio-facing session (one dialog, its transactions,
offer/answer)."""
