"""Card readers: bytes from hardware in, CardRead events out (imperative shell around pure parsers)."""
