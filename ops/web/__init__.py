"""The node's web side: the admin HTTP API (:mod:`.http`) and the dashboard (:mod:`.dashboard`,
static files in ``static/``)."""
