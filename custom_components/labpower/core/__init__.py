"""labpower's domain core: tokens, the ledger and the reconcilers. No Home Assistant here."""
