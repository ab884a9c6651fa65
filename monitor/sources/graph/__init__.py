"""Meta's side: the Graph API client, its errors and the parsing of its answers."""
