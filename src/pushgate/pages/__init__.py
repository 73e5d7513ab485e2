"""The login and account pages (issue 9): view code, Jinja2 templates and static assets. The
Starlette routes that serve them are `pushgate.api.pages`."""
