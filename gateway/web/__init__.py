"""HTTP helpers shared by every page the gateway serves (GraphiQL, reports, the portal)."""
