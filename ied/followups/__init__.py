"""Follow-ups after delivery: the contract, due states, the pages and the digest."""
