"""Schema steps, one module each: `m<NNNN>_<what>.py` with VERSION and SQL. Append only."""
