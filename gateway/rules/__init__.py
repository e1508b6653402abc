"""Rule versions as stored facts: the TOML catalog seeds them, publishing appends them."""
