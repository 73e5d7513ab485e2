"""The HTTP faces: the `/v1` relying-party API, the `/json` device endpoint, `/docs`."""
