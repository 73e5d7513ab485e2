"""Administration: admin keys with scopes and the operators' use cases (issue 10)."""
